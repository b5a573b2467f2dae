"""``controlplane scheduler --kubeconfig F [--config profiles.yaml ...] [--metrics-port P]``:
the scheduler as its own process (``schedulers.framework.scheduler.Scheduler``). Without
``--config`` every profile in ``schedulers/profiles/*.yaml`` is served (``schedulerName``
picks the profile). ``run(client, stop, configs)`` is also used by ``controlplane up``.

The process runs on uvloop (ships with sanic) and sends its requests through the lean
keep-alive client (``RestClient(lite_http=True)``): binding and Event POSTs are most of the
scheduler's CPU after the scheduling cycle itself. Its garbage collector is tuned for a big,
long-lived heap (``tune_gc``): the informer caches of thousands of nodes are frozen out of
the cyclic collector once synced, and young collections run less often, so full collections
no longer rescan hundreds of thousands of live objects every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal

from controlplane.client.rest import RestClient
from controlplane.log import get_logger

log = get_logger(__name__)


GC_THRESHOLDS = (20000, 20, 20)  # CPython's default is (700, 10, 10)


async def run(client: RestClient, stop: asyncio.Event, configs: list[str] | None = None,
              seed: int | None = None, scheduled_events: bool = True, tune_gc: bool = False) -> None:
    """Run the scheduler until ``stop``. ``tune_gc`` (for a process of its own): see the
    module docstring; it changes process-wide settings, so in-process hosts leave it off."""
    from schedulers.profiles.loader import load_profile_configs
    from schedulers.framework.scheduler import Scheduler

    sched = Scheduler(client, load_profile_configs(configs or None), seed=seed, scheduled_events=scheduled_events)
    tuner = asyncio.ensure_future(_freeze_after_sync(sched)) if tune_gc else None
    if tune_gc:
        gc.set_threshold(*GC_THRESHOLDS)
    try:
        await sched.start(stop)
    finally:
        if tuner is not None:
            tuner.cancel()
            await asyncio.gather(tuner, return_exceptions=True)


async def _freeze_after_sync(sched) -> None:
    for inf in (sched.priority_classes, sched.nodes, sched.pods):
        await inf.wait_for_sync()
    gc.collect()
    gc.freeze()  # the synced caches: still freed by reference counting, never rescanned
    log.info("garbage collector tuned", frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())


async def _main(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="scheduler", lite_http=True)
    elif args.master:
        client = RestClient(args.master, user_agent="scheduler", lite_http=True)
    else:
        raise SystemExit("--kubeconfig or --master is required")
    if args.metrics_port:
        from prometheus_client import start_http_server
        start_http_server(args.metrics_port, addr="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(client, stop, args.config, args.seed, not args.no_scheduled_events, tune_gc=True)
    finally:
        await client.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--master", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--config", action="append", default=[], help="profile YAML file or directory (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="seed for tie-breaking")
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--no-scheduled-events", action="store_true",
                   help="do not record a Normal/Scheduled Event per bound pod (FailedScheduling is always recorded)")
    p.set_defaults(func=_run_main)


def _run_main(args: argparse.Namespace) -> int:
    try:
        import uvloop  # ships with sanic; a cheaper event loop for a process that is mostly I/O callbacks
    except ImportError:  # pragma: no cover - sanic always brings it
        return asyncio.run(_main(args))
    return uvloop.run(_main(args))
