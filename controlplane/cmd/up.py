"""``controlplane up --data-dir DIR --port PORT [--etcd-endpoints URL,...]``: the whole control
plane in the foreground.

Starts, in order, the entries of ``COMPONENTS`` (embedded etcd unless endpoints are given, the
apiserver as a child process, then whatever else is listed), writes ``DIR/kubeconfig``, prints
one line containing ``ready`` and waits for SIGINT/SIGTERM (or a component dying), then stops
everything in reverse order. Adding a component is one line in ``COMPONENTS``: a factory taking
the ``UpContext`` and returning a ``Runnable`` (or None to skip). The controller-manager, the
scheduler, the agent and the metrics-server are given ``--data-dir DIR`` and write their
metrics ports to ``DIR/<component>.metrics-port`` (``cmd.bootstrap``); the ``ready`` line lists
every component's metrics URL. ``--prometheus`` adds the real Prometheus
(``controlplane.prometheus``) scraping them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from controlplane.cmd import bootstrap
from controlplane.etcd_process import EtcdProcess
from controlplane.images.registry import RegistryRunnable
from controlplane.kubeconfig import write_kubeconfig
from controlplane.log import get_logger
from controlplane.prometheus import PrometheusProcess

log = get_logger(__name__)


@dataclass
class UpContext:
    data_dir: Path
    port: int
    host: str
    etcd_endpoints: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def agent_token_file(self) -> Path:
        """The bearer token the apiserver's node proxy and the node agents share."""
        return self.data_dir / "agent-token"

    def ensure_agent_token(self) -> None:
        if not self.agent_token_file.exists():
            self.agent_token_file.write_text(secrets.token_hex(16))
            os.chmod(self.agent_token_file, 0o600)


class Runnable(Protocol):
    name: str

    async def start(self, ctx: UpContext) -> None: ...  # returns once ready
    async def stop(self) -> None: ...
    def alive(self) -> bool: ...


class EtcdRunnable:
    name = "etcd"

    def __init__(self) -> None:
        self.proc: EtcdProcess | None = None

    async def start(self, ctx: UpContext) -> None:
        self.proc = EtcdProcess(data_dir=ctx.data_dir / "etcd")
        await self.proc.start()
        ctx.etcd_endpoints = [self.proc.endpoint]

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.proc is not None and self.proc.proc.poll() is None


class ChildProcess:
    """``python -m controlplane <args>`` as a child, its output in ``DIR/logs/<name>.log``."""

    def __init__(self, name: str, args: Callable[[UpContext], list[str]],
                 ready: Callable[[UpContext], bool] | None = None, ready_timeout: float = 60.0) -> None:
        self.name = name
        self._args = args
        self._ready = ready
        self._ready_timeout = ready_timeout
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, ctx: UpContext) -> None:
        logs = ctx.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{self.name}.log", "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "controlplane", *self._args(ctx), stdout=out, stderr=out,
                env={**os.environ, "CONTROLPLANE_LOG_FORMAT": os.environ.get("CONTROLPLANE_LOG_FORMAT", "json"),
                     "CONTROLPLANE_AGENT_TOKEN_FILE": str(ctx.agent_token_file)},
            )
        if self._ready is None:
            return
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {logs / self.name}.log")
            if await asyncio.to_thread(self._ready, ctx):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {self._ready_timeout}s")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _etcd(ctx: UpContext) -> Runnable | None:
    return None if ctx.etcd_endpoints else EtcdRunnable()


def _apiserver(ctx: UpContext) -> Runnable:
    # with several workers /readyz turns 200 only once every worker serves (workers.py's gate)
    return ChildProcess(
        "apiserver",
        lambda c: ["apiserver", "--host", c.host, "--port", str(c.port), "--etcd-endpoints", ",".join(c.etcd_endpoints),
                   "--workers", c.extra.get("apiserver_workers", "1")],
        ready=lambda c: http_ok(c.server + "/readyz"),
    )


def _registry(ctx: UpContext) -> Runnable:
    return RegistryRunnable()


def _agent(ctx: UpContext) -> Runnable | None:
    """The node agent for this machine (runc needs root; without it `up` runs no node)."""
    if os.geteuid() != 0:
        log.warning("not root: no node agent started (runc containers need root)")
        return None
    return ChildProcess("agent", lambda c: [
        "agent", "--kubeconfig", str(c.kubeconfig), "--node-name", c.extra.get("node_name") or socket.gethostname().lower(),
        "--root", str(c.data_dir / "agent"), "--registry-mirror", c.extra["registry_mirror"],
        "--token-file", str(c.agent_token_file), "--data-dir", str(c.data_dir)])


def _metrics_server(ctx: UpContext) -> Runnable:
    """The resource metrics component (metrics.k8s.io behind its APIService), ready once it
    wrote its serving port."""
    (ctx.data_dir / "metrics-server.port").unlink(missing_ok=True)
    return ChildProcess("metrics-server", lambda c: [
        "metrics-server", "--kubeconfig", str(c.kubeconfig), "--data-dir", str(c.data_dir),
        "--cert-dir", str(c.data_dir / "metrics-server"), "--kubelet-token-file", str(c.agent_token_file),
        "--register-apiservice"],
        ready=lambda c: (c.data_dir / "metrics-server.port").exists())


class _Prometheus:
    """``--prometheus``: the real Prometheus on manifests/prometheus (``controlplane.prometheus``)."""

    name = "prometheus"

    def __init__(self) -> None:
        self.proc: PrometheusProcess | None = None

    async def start(self, ctx: UpContext) -> None:
        rules = ctx.extra.get("prometheus_rules")
        self.proc = PrometheusProcess(ctx.data_dir, apiserver=ctx.server, etcd_endpoints=ctx.etcd_endpoints,
                                      token_file=ctx.agent_token_file, port=int(ctx.extra.get("prometheus_port") or 0),
                                      scrape_interval=ctx.extra.get("prometheus_scrape_interval") or None,
                                      rules_dir=Path(rules) if rules else None)
        await self.proc.start()
        ctx.extra["prometheus_url"] = self.proc.url

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()


def metrics_endpoints(ctx: UpContext) -> dict[str, str]:
    """Every component's metrics URL (the ``ready`` line prints them)."""
    out = {"apiserver": ctx.server + "/metrics"}
    if ctx.etcd_endpoints:
        out["etcd"] = ctx.etcd_endpoints[0] + "/metrics"
    for comp in ("controller-manager", "scheduler", "metrics-server", "agent"):
        try:
            out[comp] = f"http://127.0.0.1:{int((ctx.data_dir / f'{comp}.metrics-port').read_text())}/metrics"
        except (OSError, ValueError):
            pass
    return out


def _gitops(ctx: UpContext) -> Runnable:
    """The GitOps controller (controlplane/gitops): installs its CRDs, serves webhooks on
    --gitops-webhook-port (a free port if that one is busy), applies DATA_DIR/manifests."""
    addr = ctx.data_dir / "gitops" / "webhook-address"
    addr.unlink(missing_ok=True)

    def ready(c: UpContext) -> bool:
        return addr.exists() and http_ok(addr.read_text().strip() + "/healthz")
    return ChildProcess("gitops-controller", lambda c: [
        "gitops-controller", "--kubeconfig", str(c.kubeconfig), "--data-dir", str(c.data_dir),
        "--webhook-port", c.extra.get("gitops_webhook_port", "9292")], ready=ready)


# The components `up` runs, in start order (stopped in reverse). One line per component.
COMPONENTS: list[Callable[[UpContext], Runnable | None]] = [
    _etcd,
    _apiserver,
    lambda ctx: ChildProcess("controller-manager", lambda c: ["controller-manager", "--master", c.server,
                                                              "--data-dir", str(c.data_dir)]),
    lambda ctx: ChildProcess("scheduler", lambda c: ["scheduler", "--kubeconfig", str(c.kubeconfig),
                                                     "--data-dir", str(c.data_dir)]),
    _registry,
    _agent,
    _metrics_server,
    lambda ctx: _Prometheus() if ctx.extra.get("prometheus") else None,
    _gitops,
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run etcd, the apiserver and the other components in the foreground")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", default="", help="use this etcd instead of an embedded one")
    p.add_argument("--apiserver-workers", type=int, default=2,
                   help="apiserver processes sharing the port (controlplane apiserver --workers)")
    p.add_argument("--node-name", default="", help="name of this machine's node (default: the hostname)")
    p.add_argument("--prometheus", action="store_true",
                   help="also run /usr/bin/prometheus on manifests/prometheus (data under DIR/prometheus)")
    p.add_argument("--prometheus-port", type=int, default=0, help="Prometheus' web port (0: a free port)")
    p.add_argument("--prometheus-scrape-interval", default="", help="replace the scrape/evaluation interval (15s)")
    p.add_argument("--prometheus-rules", default="", help="rule files directory (default manifests/prometheus/rules)")
    p.add_argument("--gitops-webhook-port", type=int, default=9292,
                   help="the GitOps webhook receiver's port (0: a free one; see DATA_DIR/gitops/webhook-address)")
    p.set_defaults(func=run)


COMPONENT = bootstrap.Component("up", metrics_port=False, uvloop=False)


async def main(bctx: bootstrap.Context) -> int:
    args, stop = bctx.args, bctx.stop
    ctx = UpContext(data_dir=args.data_dir.resolve(), port=args.port, host=args.host,
                    etcd_endpoints=[e for e in args.etcd_endpoints.split(",") if e],
                    extra={"apiserver_workers": str(args.apiserver_workers),
                           "prometheus": "1" if args.prometheus else "", "prometheus_port": str(args.prometheus_port),
                           "prometheus_scrape_interval": args.prometheus_scrape_interval,
                           "prometheus_rules": args.prometheus_rules, "node_name": args.node_name,
                           "gitops_webhook_port": str(args.gitops_webhook_port)})
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    for stale in ctx.data_dir.glob("*.metrics-port"):  # a previous run's ports must not be printed
        stale.unlink(missing_ok=True)
    ctx.ensure_agent_token()
    started: list[Runnable] = []
    rc = 0
    try:
        for factory in COMPONENTS:
            if stop.is_set():
                break
            r = factory(ctx)
            if r is None:
                continue
            started.append(r)
            await r.start(ctx)
            log.info("component started", component=r.name)
            if r.name == "apiserver":
                write_kubeconfig(ctx.kubeconfig, ctx.server)
        if not stop.is_set():
            ready = {"status": "ready", "server": ctx.server, "kubeconfig": str(ctx.kubeconfig),
                     "metrics": metrics_endpoints(ctx)}
            if ctx.extra.get("prometheus_url"):
                ready["prometheus"] = ctx.extra["prometheus_url"]
            sys.stdout.write(json.dumps(ready) + "\n")
            sys.stdout.flush()
        while not stop.is_set():
            dead = [r.name for r in started if not r.alive()]
            if dead:
                log.error("component exited; stopping", components=dead)
                rc = 1
                break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
    except Exception as e:  # noqa: BLE001 - report, then stop what was started
        log.error("start-up failed", error=str(e))
        rc = 1
    finally:
        for r in reversed(started):
            try:
                await r.stop()
                log.info("component stopped", component=r.name)
            except Exception as e:  # noqa: BLE001
                log.warning("component stop failed", component=r.name, error=str(e))
    return rc


def run(args: argparse.Namespace) -> int:
    return bootstrap.run(COMPONENT, args, main)
