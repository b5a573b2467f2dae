"""``controlplane up --data-dir DIR --port PORT [--etcd-endpoints URL,...]``: the whole control
plane in the foreground.

Starts, in order, the entries of ``COMPONENTS`` (embedded etcd unless endpoints are given, the
apiserver as a child process, then whatever else is listed), writes ``DIR/kubeconfig``, prints
one line containing ``ready`` and waits for SIGINT/SIGTERM (or a component dying), then stops
everything in reverse order. Adding a component is one line in ``COMPONENTS``: a factory taking
the ``UpContext`` and returning a ``Runnable`` (or None to skip). The controller-manager, the
scheduler and the agent are given ``--data-dir DIR`` and write their metrics ports to
``DIR/<component>.metrics-port`` (``cmd.bootstrap``).

Trust (docs/security.md): before anything starts, the cluster PKI under ``DIR/pki`` is created
or renewed (``pki.ClusterPKI.ensure``: certificates expiring within 90 days, or lacking the
hostname, are issued again); etcd runs with TLS and client-certificate authentication; the
apiserver on HTTPS with Node+RBAC, the audit log (``DIR/audit/``) and Secrets encrypted at
rest (``cmd.secure``); each component gets a kubeconfig of its own identity
(``DIR/kubeconfigs/``), the admin ``DIR/kubeconfig`` verifies the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from controlplane.cmd import bootstrap
from controlplane.cmd import secure
from controlplane.etcd_process import EtcdProcess, EtcdTLS
from controlplane.images.registry import RegistryRunnable
from controlplane.pki.cluster import ClusterPKI
from controlplane.pki.kubeconfigs import write_component_kubeconfigs
from controlplane.log import get_logger

log = get_logger(__name__)


@dataclass
class UpContext:
    data_dir: Path
    port: int
    host: str
    etcd_endpoints: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)  # what components serve, for the ready line

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def pki(self) -> ClusterPKI:
        return ClusterPKI(self.data_dir / "pki")

    def component_kubeconfig(self, name: str) -> Path:
        return self.data_dir / "kubeconfigs" / f"{name}.kubeconfig"

    @property
    def node_name(self) -> str:
        return socket.gethostname().lower()


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
        self.proc = EtcdProcess(data_dir=ctx.data_dir / "etcd", tls=EtcdTLS.from_pki(ctx.pki.dir))
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
                env={**os.environ, "CONTROLPLANE_LOG_FORMAT": os.environ.get("CONTROLPLANE_LOG_FORMAT", "json")},
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


def http_ok(url: str, cafile: Path | None = None) -> bool:
    """GET ``url`` answers 200 (https verified against ``cafile``; anonymous, as health checks are)."""
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
    try:
        with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
            return r.status == 200
    except OSError:
        return False


def _etcd(ctx: UpContext) -> Runnable | None:
    return None if ctx.etcd_endpoints else EtcdRunnable()


def _apiserver(ctx: UpContext) -> Runnable:
    # with several workers /readyz turns 200 only once every worker serves (workers.py's gate)
    def args(c: UpContext) -> list[str]:
        sec = secure.apiserver_args(c.pki, c.data_dir)
        if c.extra.get("external_etcd"):  # an etcd we did not start: no client certificate of ours
            sec = [a for i, a in enumerate(sec) if not (a.startswith("--etcd-") or sec[i - 1].startswith("--etcd-"))]
        return ["apiserver", "--host", c.host, "--port", str(c.port), "--etcd-endpoints", ",".join(c.etcd_endpoints),
                "--workers", c.extra.get("apiserver_workers", "1"), *sec]

    return ChildProcess("apiserver", args, ready=lambda c: http_ok(c.server + "/readyz", c.pki.ca_file))


def _controller_manager(ctx: UpContext) -> Runnable:
    return ChildProcess("controller-manager", lambda c: [
        "controller-manager", "--kubeconfig", str(c.component_kubeconfig("controller-manager")),
        "--data-dir", str(c.data_dir), "--root-ca-file", str(c.pki.ca_file),
        "--cluster-signing-cert-file", str(c.pki.ca_file), "--cluster-signing-key-file", str(c.pki.key("ca"))])


def _scheduler(ctx: UpContext) -> Runnable:
    return ChildProcess("scheduler", lambda c: [
        "scheduler", "--kubeconfig", str(c.component_kubeconfig("scheduler")), "--data-dir", str(c.data_dir)])


def _registry(ctx: UpContext) -> Runnable:
    return RegistryRunnable()


def _agent(ctx: UpContext) -> Runnable | None:
    """The node agent for this machine (runc needs root; without it `up` runs no node)."""
    if os.geteuid() != 0:
        log.warning("not root: no node agent started (runc containers need root)")
        return None
    node = ctx.node_name
    serving = f"node-{node}-serving"
    ctx.pki.node_serving(node, ["127.0.0.1"])
    return ChildProcess("agent", lambda c: [
        "agent", "--kubeconfig", str(c.component_kubeconfig(f"node-{node}")), "--node-name", node,
        "--root", str(c.data_dir / "agent"), "--registry-mirror", c.extra["registry_mirror"],
        "--tls-cert-file", str(c.pki.crt(serving)), "--tls-private-key-file", str(c.pki.key(serving)),
        "--client-ca-file", str(c.pki.ca_file), "--data-dir", str(c.data_dir)])


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


def _dashboard(ctx: UpContext) -> Runnable:
    """The web dashboard (controlplane/dashboard) on --dashboard-port (a free port if busy); its
    URL, written to DATA_DIR/dashboard-address, goes into the ready line."""
    addr = ctx.data_dir / "dashboard-address"
    addr.unlink(missing_ok=True)

    def ready(c: UpContext) -> bool:
        if addr.exists() and http_ok(addr.read_text().strip() + "/healthz"):
            c.urls["dashboard"] = addr.read_text().strip()
            return True
        return False
    return ChildProcess("dashboard", lambda c: [
        "dashboard", "--kubeconfig", str(c.kubeconfig), "--data-dir", str(c.data_dir),
        "--port", c.extra.get("dashboard_port", "8080")], ready=ready)


# The components `up` runs, in start order (stopped in reverse). One line per component.
COMPONENTS: list[Callable[[UpContext], Runnable | None]] = [
    _etcd,
    _apiserver,
    _controller_manager,
    _scheduler,
    _registry,
    _agent,
    _gitops,
    _dashboard,
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run etcd, the apiserver and the other components in the foreground")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", default="", help="use this etcd instead of an embedded one")
    p.add_argument("--apiserver-workers", type=int, default=2,
                   help="apiserver processes sharing the port (controlplane apiserver --workers)")
    p.add_argument("--gitops-webhook-port", type=int, default=9292,
                   help="the GitOps webhook receiver's port (0: a free one; see DATA_DIR/gitops/webhook-address)")
    p.add_argument("--dashboard-port", type=int, default=8080,
                   help="the web dashboard's port (0: a free one; the URL is in the ready line)")
    p.set_defaults(func=run)


COMPONENT = bootstrap.Component("up", metrics_port=False, uvloop=False)


async def main(bctx: bootstrap.Context) -> int:
    args, stop = bctx.args, bctx.stop
    ctx = UpContext(data_dir=args.data_dir.resolve(), port=args.port, host=args.host,
                    etcd_endpoints=[e for e in args.etcd_endpoints.split(",") if e],
                    extra={"apiserver_workers": str(args.apiserver_workers),
                           "gitops_webhook_port": str(args.gitops_webhook_port),
                           "dashboard_port": str(args.dashboard_port)})
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    if ctx.etcd_endpoints:
        ctx.extra["external_etcd"] = "1"
    ctx.extra["pki_dir"] = str(ctx.pki.dir)
    # create or renew the PKI (as k3s does at start) before anything uses it
    await asyncio.to_thread(ctx.pki.ensure, hostname=ctx.node_name)
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
                await asyncio.to_thread(write_component_kubeconfigs, ctx.pki, ctx.server, ctx.data_dir,
                                        [ctx.node_name] if os.geteuid() == 0 else [])
        if not stop.is_set():
            sys.stdout.write(json.dumps({"status": "ready", "server": ctx.server,
                                         "kubeconfig": str(ctx.kubeconfig), **ctx.urls}) + "\n")
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
