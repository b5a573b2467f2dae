"""``controlplane scheduler --kubeconfig F [--config profiles.yaml ...] [--metrics-port P]
[--leader-elect[=false]]``: the scheduler as its own process
(``schedulers.framework.scheduler.Scheduler``). Without ``--config`` every profile in
``schedulers/profiles/*.yaml`` is served (``schedulerName`` picks the profile).

Logging, signals, the metrics port and leader election come from ``cmd.bootstrap``. Leader
election is on by default, as in kube-scheduler: only the holder of the
``kube-system/kube-scheduler`` Lease schedules, and a scheduler that loses it exits with status 1.

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
from pathlib import Path

from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from schedulers.framework.decisionlog import DecisionLog
from schedulers.framework.scheduler import Scheduler
from schedulers.profiles.loader import load_profile_configs

log = get_logger(__name__)


GC_THRESHOLDS = (20000, 20, 20)  # CPython's default is (700, 10, 10)


def build(client: RestClient, configs: list[str] | None = None, seed: int | None = None,
          scheduled_events: bool = True, decision_log: Path | None = None,
          decision_records: bool = True, profiles: dict | None = None) -> Scheduler:
    """The scheduler with its profiles (``profiles``: loaded by ``load_profile_configs``;
    otherwise loaded here from ``configs``)."""
    if profiles is None:
        profiles = load_profile_configs(configs or None)
    return Scheduler(client, profiles, seed=seed, scheduled_events=scheduled_events,
                     decision_log=DecisionLog(decision_log) if decision_log else None,
                     decision_records=decision_records)


async def run(client: RestClient, stop: asyncio.Event, configs: list[str] | None = None,
              seed: int | None = None, scheduled_events: bool = True, tune_gc: bool = False,
              decision_log: Path | None = None, decision_records: bool = True,
              sched: Scheduler | None = None) -> None:
    """Run the scheduler until ``stop`` (``sched``: one made by ``build``; otherwise built here
    from the other arguments). ``tune_gc`` (for a process of its own): see the module
    docstring; it changes process-wide settings, so in-process hosts leave it off.
    ``decision_log``: the ``scheduling.log`` path (None: none); ``decision_records``: store
    ``SchedulingDecision`` objects in the API."""
    if sched is None:
        sched = build(client, configs, seed, scheduled_events, decision_log, decision_records)
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


COMPONENT = bootstrap.Component("scheduler", lease="kube-scheduler", secure_metrics=True)


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    if args.kubeconfig:
        client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="scheduler", lite_http=True)
    elif args.master:
        client = RestClient(args.master, user_agent="scheduler", lite_http=True)
    else:
        raise SystemExit("--kubeconfig or --master is required")

    decision_log = args.decision_log
    if decision_log is None and args.data_dir is not None:
        decision_log = Path(args.data_dir) / "logs" / "scheduling.log"

    # the profiles (plugin imports, torch, the DDQN models: seconds of CPU) are loaded before
    # the campaign, in a thread so the loop keeps serving health checks, as kube-scheduler
    # builds its profiles before leader election: loaded while leading, they held the event
    # loop past the renew deadline on a busy machine and the new leader lost its Lease before
    # its first renewal (the process exited and `up` restarted it)
    profiles = await asyncio.to_thread(load_profile_configs, args.config or None)
    sched = build(client, seed=args.seed, scheduled_events=not args.no_scheduled_events,
                  decision_log=decision_log, decision_records=not args.no_decision_records, profiles=profiles)

    async def schedule(stop: asyncio.Event) -> None:
        await run(client, stop, tune_gc=True, sched=sched)

    try:
        return await ctx.run_leading(client, schedule)
    finally:
        await client.close()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--master", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--config", action="append", default=[], help="profile YAML file or directory (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="seed for tie-breaking")
    p.add_argument("--no-scheduled-events", action="store_true",
                   help="do not record a Normal/Scheduled Event per bound pod (FailedScheduling is always recorded)")
    p.add_argument("--decision-log", type=Path, default=None,
                   help="JSON lines of every scheduling decision (default with --data-dir: DIR/logs/scheduling.log)")
    p.add_argument("--no-decision-records", action="store_true",
                   help="do not store SchedulingDecision objects in the API (the log file is still written)")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))
