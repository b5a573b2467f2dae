"""``controlplane up --data-dir DIR --port PORT [--etcd-endpoints URL,...] [--node-name N]``: the
whole control plane in the foreground.

Starts, in order, the entries of ``COMPONENTS`` (embedded etcd unless endpoints are given, the
apiserver as a child process, then whatever else is listed), writes ``DIR/kubeconfig``, prints
one line containing ``ready`` and waits for SIGINT/SIGTERM, then stops everything in reverse
order. Every component is supervised (``controlplane.supervisor``): one that exits is restarted with
backoff, the cause logged and counted (``controlplane_component_restarts_total``); none
outlives ``up`` (parent-death signal, pidfiles under ``DIR/run`` that the next ``up`` or
``controlplane down`` reclaims). One ``up`` per data dir (``DIR/up.lock``).

Stopping ``up`` leaves the node's containers running (the agent runs with
``--keep-containers``); the next ``up`` re-adopts them, ``controlplane down`` removes them.
Host-level names (cgroups, network namespaces) derive from the instance's ``host_id``
(the node name plus a hash of the data dir), written to ``DIR/instance.json`` for ``down``.

Adding a component is one line in ``COMPONENTS``: a factory taking the ``UpContext`` and
returning a ``supervisor.process.Runnable`` (or None to skip). The controller-manager, the scheduler and
the agent are given ``--data-dir DIR`` and write their metrics ports to
``DIR/<component>.metrics-port`` (``cmd.bootstrap``); ``up`` itself serves its metrics and
health (a ``component/<name>`` check per component) on ``DIR/up.metrics-port``.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import secrets
import socket
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from controlplane.cmd import bootstrap
from controlplane.images.registry import LocalRegistry
from controlplane.kubeconfig import write_kubeconfig
from controlplane.log import get_logger
from controlplane.procutil import PidFiles
from controlplane.supervisor.process import ChildProcess, EtcdRunnable, Runnable, wait_pid
from controlplane.supervisor.supervisor import Supervisor, run_dir

log = get_logger(__name__)


@dataclass
class UpContext:
    data_dir: Path
    port: int
    host: str
    etcd_endpoints: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    node_name: str = field(default_factory=lambda: default_node_name())

    @property
    def host_id(self) -> str:
        """The key of every host-level name this instance makes (cgroup tree, network
        namespaces): the node name plus a hash of the data dir, so two instances never meet."""
        return host_id(self.node_name, self.data_dir)

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


class RegistryRunnable:
    """The seeded local OCI registry under ``DIR/registry``; puts its URL in
    ``ctx.extra["registry_mirror"]`` for the agent's ``--registry-mirror`` (a restart keeps the
    port and the stored images)."""

    name = "registry"

    def __init__(self) -> None:
        self.reg: LocalRegistry | None = None

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        first = self.reg is None
        if self.reg is None:
            self.reg = LocalRegistry(ctx.data_dir / "registry", tied_to_parent=True)
        self.reg.spawn()
        if wait_ready:
            await asyncio.to_thread(self.reg.wait_serving, first)
        ctx.extra["registry_mirror"] = self.reg.url

    async def wait(self) -> int:
        assert self.reg is not None and self.reg.proc is not None
        return await wait_pid(self.reg.proc)

    async def stop(self) -> None:
        if self.reg is not None:
            await asyncio.to_thread(self.reg.stop)

    def pid(self) -> int | None:
        p = self.reg.proc if self.reg is not None else None
        return p.pid if p is not None and p.poll() is None else None


def default_node_name() -> str:
    """The machine's hostname, as the kubelet's default node name."""
    return socket.gethostname().lower()


def host_id(node_name: str, data_dir: Path) -> str:
    return f"{node_name}-{hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]}"


def instance_file(data_dir: Path) -> Path:
    return data_dir / "instance.json"


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def component_ready(name: str) -> Callable[[UpContext], bool]:
    """Ready when the component's own /readyz (on its metrics port, ``cmd.bootstrap``) says so."""
    def ready(ctx: UpContext) -> bool:
        try:
            port = int((ctx.data_dir / f"{name}.metrics-port").read_text().strip())
        except (OSError, ValueError):
            return False
        return http_ok(f"http://127.0.0.1:{port}/readyz")
    return ready


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
        "agent", "--kubeconfig", str(c.kubeconfig), "--node-name", c.node_name, "--host-id", c.host_id,
        "--root", str(c.data_dir / "agent"), "--registry-mirror", c.extra["registry_mirror"],
        "--token-file", str(c.agent_token_file), "--data-dir", str(c.data_dir), "--keep-containers"],
        ready=component_ready("agent"))


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
                                                              "--data-dir", str(c.data_dir)],
                             ready=component_ready("controller-manager")),
    lambda ctx: ChildProcess("scheduler", lambda c: ["scheduler", "--kubeconfig", str(c.kubeconfig),
                                                     "--data-dir", str(c.data_dir)], ready=component_ready("scheduler")),
    _registry,
    _agent,
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
    p.add_argument("--gitops-webhook-port", type=int, default=9292,
                   help="the GitOps webhook receiver's port (0: a free one; see DATA_DIR/gitops/webhook-address)")
    p.add_argument("--node-name", default=None, help="this machine's Node (default: the hostname)")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=run)


COMPONENT = bootstrap.Component("up", uvloop=False)


class InstanceLock:
    """``DIR/up.lock``, held (flock) for the life of ``up``; the kernel drops it when the process
    dies however it dies. ``DIR/up.pid`` names the holder (for ``controlplane down``)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "up.lock"
        self.pid_path = data_dir / "up.pid"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self.pid_path.write_text(f"{os.getpid()}\n")
        return True

    def release(self) -> None:
        if self._fd is not None:
            self.pid_path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


async def main(bctx: bootstrap.Context) -> int:
    args, stop = bctx.args, bctx.stop
    ctx = UpContext(data_dir=args.data_dir.resolve(), port=args.port, host=args.host,
                    etcd_endpoints=[e for e in args.etcd_endpoints.split(",") if e],
                    extra={"apiserver_workers": str(args.apiserver_workers),
                           "gitops_webhook_port": str(args.gitops_webhook_port)},
                    node_name=args.node_name or default_node_name())
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    lock = InstanceLock(ctx.data_dir)
    if not lock.acquire():
        log.error("another controlplane up runs on this data dir", data_dir=str(ctx.data_dir),
                  pid=lock.pid_path.read_text().strip() if lock.pid_path.exists() else None)
        return 1
    pidfiles = PidFiles(run_dir(ctx.data_dir))
    for stale in ctx.data_dir.glob("*.metrics-port"):  # the previous run's ports (not ours: already bound)
        if stale.name != f"{COMPONENT.name}.metrics-port":
            stale.unlink(missing_ok=True)
    left = pidfiles.reclaim()
    if left:
        log.warning("stopped processes a previous up left running", processes=left)
    ctx.ensure_agent_token()
    instance_file(ctx.data_dir).write_text(json.dumps(
        {"nodeName": ctx.node_name, "hostID": ctx.host_id, "dataDir": str(ctx.data_dir), "port": ctx.port}) + "\n")
    sup = Supervisor(ctx, pidfiles)
    rc = 0

    def started(r: Runnable) -> None:
        log.info("component started", component=r.name)
        bctx.health.add(f"component/{r.name}", sup.health_check(r.name), ("healthz", "readyz"))
        if r.name == "apiserver":
            write_kubeconfig(ctx.kubeconfig, ctx.server)

    try:
        for factory in COMPONENTS:
            if stop.is_set():
                break
            r = factory(ctx)
            if r is not None:
                await sup.start(r, started)
        if not stop.is_set():
            sys.stdout.write(json.dumps({"status": "ready", "server": ctx.server,
                                         "kubeconfig": str(ctx.kubeconfig)}) + "\n")
            sys.stdout.flush()
        await stop.wait()
    except Exception as e:  # noqa: BLE001 - report, then stop what was started
        log.error("start-up failed", error=str(e))
        rc = 1
    finally:
        await sup.stop_all()
        lock.release()
    return rc


def run(args: argparse.Namespace) -> int:
    return bootstrap.run(COMPONENT, args, main)
