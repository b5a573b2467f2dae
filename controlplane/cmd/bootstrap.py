"""One start-up for every component process (kube's ``component-base``): logging, the metrics
port, signal handling and leader election, so each ``cmd/`` module only builds its component.

    COMPONENT = Component("scheduler", lease="kube-scheduler")
    bootstrap.add_flags(parser, COMPONENT)          # --metrics-port, --data-dir, --leader-elect...
    return bootstrap.run(COMPONENT, args, main)     # main(ctx) -> exit status

``run`` configures structlog (``--log-format``/``--log-level`` of the CLI, the component's name
bound to every record), runs ``main`` on uvloop (or asyncio) with ``ctx.stop`` set on
SIGINT/SIGTERM, and serves Prometheus metrics on ``127.0.0.1:--metrics-port`` (``0``: a free
port) for as long as ``main`` runs; with ``--data-dir DIR`` the bound port is written to
``DIR/<component>.metrics-port``. The apiserver keeps its metrics on its own serving port
(``/metrics``, as kube-apiserver), so it asks for no metrics port. Components declared
``secure_metrics`` (the controller-manager, the scheduler, the metrics-server, the agent) serve
that port over HTTPS with delegated authentication and authorization when given a serving
certificate (``--tls-cert-file``, ``--tls-private-key-file``, ``--client-ca-file``,
``--authorization-always-allow-paths``), as kube-controller-manager's and kube-scheduler's
secure ports; without one, plain HTTP (``cmd.statusserver``).

Health (``component-base``'s ``/healthz``, ``/livez``, ``/readyz``, answered by
``machinery.healthz`` as Kubernetes answers them: ``?verbose``, ``?exclude=``, ``/readyz/<check>``)
on the same port as the metrics. Every component gets ``ping``, ``event-loop`` (the loop ran
within the last ``LOOP_STALL_S`` seconds: a process whose loop is stuck is not live),
``leaderElection`` (client-go's adaptor: a leader that has not renewed within the lease
duration plus 20 s is unhealthy), and on ``/readyz`` ``informer-sync`` (every started informer
of the process has listed; a standby's informers start with leadership) and ``shutdown`` (fails once the process is stopping). ``ctx.health.add``
registers component-specific checks.

Leader election (components given a ``lease``): ``--leader-elect`` (default true, as in
Kubernetes; ``--leader-elect=false`` turns it off) campaigns for the Lease
``kube-system/<lease>`` (``client.leaderelection``); ``await ctx.run_leading(client, work)``
calls ``work(stop)`` once this process leads, with an event that is set when leadership is lost
or the process is asked to stop, and returns 1 when leadership was lost (the process exits, as
kube-controller-manager and kube-scheduler do, so a supervisor restarts it as a standby).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import uvloop  # ships with sanic: a cheaper event loop for processes that are mostly I/O callbacks
from prometheus_client import REGISTRY, CollectorRegistry

from controlplane import log
from controlplane.client.informer import Informer
from controlplane.client.leaderelection import LeaderElectionConfig, LeaderElector
from controlplane.client.rest import RestClient, discover_apiservers_by_default
from controlplane.cmd import statusserver
from controlplane.machinery.healthz import HealthChecks

logger = log.get_logger(__name__)

LOOP_STALL_S = 10.0  # /livez's event-loop check fails when the loop has not run this long
LEADER_TOLERANCE_S = 20.0  # client-go's leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)


@dataclass(frozen=True)
class Component:
    name: str
    lease: str | None = None  # the Lease in kube-system when the component elects a leader
    metrics_port: bool = True  # False: metrics are served on the component's own port
    uvloop: bool = True
    # the metrics port may be HTTPS with delegated authn/authz (statusserver: --tls-cert-file...)
    secure_metrics: bool = False


def parse_bool(v: str) -> bool:
    """Kubernetes' boolean flag values (``--leader-elect=false``)."""
    low = v.strip().lower()
    if low in ("1", "t", "true", "yes", "y", "on"):
        return True
    if low in ("0", "f", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def add_flags(p: argparse.ArgumentParser, comp: Component) -> None:
    if comp.metrics_port:
        p.add_argument("--metrics-port", type=int, default=0,
                       help="serve Prometheus metrics on 127.0.0.1:PORT (0: a free port)")
        if "--data-dir" not in p._option_string_actions:  # `up` has its own --data-dir
            p.add_argument("--data-dir", type=Path, default=None,
                           help=f"write the bound metrics port to DIR/{comp.name}.metrics-port")
        if comp.secure_metrics:
            statusserver.add_flags(p)
    if comp.lease:
        p.add_argument("--leader-elect", type=parse_bool, nargs="?", const=True, default=True,
                       help="campaign for a Lease in kube-system before acting (default true; --leader-elect=false)")
        p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
        p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
        p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
        p.add_argument("--leader-elect-resource-name", default=comp.lease)
        p.add_argument("--leader-elect-resource-namespace", default="kube-system")
        p.add_argument("--identity", default=None, help="leader election identity (default: HOSTNAME_PID)")


def leader_election_config(args: argparse.Namespace) -> LeaderElectionConfig | None:
    if not getattr(args, "leader_elect", False):
        return None
    return LeaderElectionConfig(
        name=args.leader_elect_resource_name, namespace=args.leader_elect_resource_namespace,
        identity=args.identity or f"{socket.gethostname()}_{os.getpid()}",
        lease_duration=args.leader_elect_lease_duration, renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period)


class _Forward:
    """A collector serving another registry's metrics (the agent keeps its own registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Any:
        yield from self.registry.collect()


@dataclass
class Context:
    component: Component
    args: argparse.Namespace
    stop: asyncio.Event
    metrics_port: int | None = None
    health: HealthChecks = field(default_factory=HealthChecks)
    loop_tick: float = field(default_factory=time.monotonic)
    elector: LeaderElector | None = None
    _served: CollectorRegistry | None = field(default=None, repr=False)

    @property
    def served_metrics(self) -> CollectorRegistry | None:
        """What the metrics port serves (the metrics-server also serves it on its secure port)."""
        return self._served

    def add_metrics(self, registry: CollectorRegistry) -> None:
        """Also serve ``registry`` on the metrics port."""
        if self._served is not None:
            self._served.register(_Forward(registry))

    async def run_leading(self, client: RestClient, work: Callable[[asyncio.Event], Awaitable[Any]]) -> int:
        cfg = leader_election_config(self.args)
        if cfg is None:
            await work(self.stop)
            return 0
        logger.info("leader election", lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
        self.elector = LeaderElector(client, cfg)
        await self.elector.run(self.stop, work)
        if self.stop.is_set():
            return 0
        logger.error("leader election lost", lease=f"{cfg.namespace}/{cfg.name}")
        return 1


def setup_logging(comp: Component, args: argparse.Namespace) -> None:
    log.configure(getattr(args, "log_format", None), getattr(args, "log_level", None))
    structlog.contextvars.bind_contextvars(component=comp.name)


def _leader_check(ctx: Context) -> str | None:
    el = ctx.elector
    if el is None or not el.is_leader:
        return None
    overdue = time.monotonic() - el.last_renew - el.cfg.lease_duration
    if overdue > LEADER_TOLERANCE_S:
        return f"failed election to renew leadership on lease {el.cfg.name}"
    return None


def _informer_check() -> str | None:
    for _ in range(3):  # the loop thread may add an informer while this thread iterates
        try:
            pending = sorted({i.resource.plural for i in list(Informer.live) if i.started and not i.has_synced()})
            break
        except RuntimeError:
            continue
    else:
        return "informers changing"
    return f"informers not synced: {', '.join(pending)}" if pending else None


def default_checks(ctx: Context) -> None:
    """The checks every component serves (see the module docstring)."""
    h = ctx.health
    h.add("ping", lambda: None)
    h.add("event-loop", lambda: None if time.monotonic() - ctx.loop_tick < LOOP_STALL_S
          else f"event loop stalled for {time.monotonic() - ctx.loop_tick:.0f}s")
    if ctx.component.lease:
        h.add("leaderElection", lambda: _leader_check(ctx), ("healthz", "livez"))
    h.add("informer-sync", _informer_check, ("readyz",))
    h.add("shutdown", lambda: "process is shutting down" if ctx.stop.is_set() else None, ("readyz",))
    h.on_failure = lambda ep, failed: logger.info(f"{ep} check failed", failed=dict(failed))


def _serve_metrics(ctx: Context) -> statusserver.StatusServer:
    served = CollectorRegistry(auto_describe=True)
    served.register(_Forward(REGISTRY))
    secure = statusserver.secure_serving(ctx.args, ctx.component.name) if ctx.component.secure_metrics else None
    server = statusserver.StatusServer(ctx.health, served, ctx.args.metrics_port, secure)
    ctx._served = served
    ctx.metrics_port = server.start()
    data_dir = getattr(ctx.args, "data_dir", None)
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        tmp = Path(data_dir) / f".{ctx.component.name}.metrics-port.tmp"
        tmp.write_text(f"{ctx.metrics_port}\n")
        tmp.replace(Path(data_dir) / f"{ctx.component.name}.metrics-port")
    logger.info("serving metrics", port=ctx.metrics_port, scheme=server.scheme,
                delegated_auth=server.auth is not None)
    return server


async def _main(comp: Component, args: argparse.Namespace, main: Callable[[Context], Awaitable[int | None]]) -> int:
    ctx = Context(comp, args, asyncio.Event())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, ctx.stop.set)
    default_checks(ctx)
    ticker = asyncio.ensure_future(_tick(ctx))
    metrics = _serve_metrics(ctx) if comp.metrics_port else None
    try:
        return int(await main(ctx) or 0)
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        if metrics is not None:
            await asyncio.to_thread(metrics.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _tick(ctx: Context) -> None:
    """Keeps ``ctx.loop_tick`` current (the event-loop liveness check reads it)."""
    while True:
        ctx.loop_tick = time.monotonic()
        await asyncio.sleep(1.0)


def run(comp: Component, args: argparse.Namespace, main: Callable[[Context], Awaitable[int | None]]) -> int:
    """Set up logging, then run ``main(ctx)`` to completion; its result is the exit status.
    Every ``RestClient`` of a component discovers the cluster's apiservers and fails over
    between them (``client/balancer.py``)."""
    setup_logging(comp, args)
    discover_apiservers_by_default()
    if comp.uvloop:
        return uvloop.run(_main(comp, args, main))
    return asyncio.run(_main(comp, args, main))
