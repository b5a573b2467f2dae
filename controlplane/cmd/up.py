"""``controlplane up --data-dir DIR --port PORT [--etcd-endpoints URL,...] [--node-name N]``: the
whole control plane in the foreground.

Starts, in order, the entries of ``COMPONENTS`` (embedded etcd unless endpoints are given, the
apiserver as a child process, then whatever else is listed), writes ``DIR/kubeconfig``, prints
one line containing ``ready`` and waits for SIGINT/SIGTERM, then stops everything in reverse
order. Every component is supervised (``controlplane.supervisor``): one that exits is restarted
with backoff, the cause logged and counted (``controlplane_component_restarts_total``); none
outlives ``up`` (parent-death signal, pidfiles under ``DIR/run`` that the next ``up`` or
``controlplane down`` reclaims). One ``up`` per data dir (``DIR/up.lock``).

Stopping ``up`` leaves the node's containers running (the agent runs with
``--keep-containers``); the next ``up`` re-adopts them, ``controlplane down`` removes them.
Host-level names (cgroups, network namespaces) derive from the instance's ``host_id``
(the node name plus a hash of the data dir), written to ``DIR/instance.json`` for ``down``.

Adding a component is one line in ``COMPONENTS``: a factory taking the ``UpContext`` and
returning a ``supervisor.process.Runnable`` (or None to skip). The controller-manager, the
scheduler, the agent and the metrics-server are given ``--data-dir DIR`` and write their
metrics ports to ``DIR/<component>.metrics-port`` (``cmd.bootstrap``); ``up`` itself serves its
metrics and health (a ``component/<name>`` check per component) on ``DIR/up.metrics-port``; the
``ready`` line lists every component's metrics URL. The metrics-server runs as
``system:metrics-server`` with a serving certificate of the cluster CA; ``up`` registers its
APIService (as an operator applies metrics-server's manifests). ``--prometheus`` adds the real
Prometheus (``controlplane.prometheus``) scraping them all as ``system:prometheus``.

Trust (docs/security.md): before anything starts, the cluster PKI under ``DIR/pki`` is created
or renewed (``pki.ClusterPKI.ensure``: certificates expiring within 90 days, or lacking the
hostname, are issued again); etcd runs with TLS and client-certificate authentication; the
apiserver on HTTPS with Node+RBAC, the audit log (``DIR/audit/``) and Secrets encrypted at
rest (``cmd.secure``); each component gets a kubeconfig of its own identity
(``DIR/kubeconfigs/``), the admin ``DIR/kubeconfig`` verifies the server.

Networking (docs/networking.md): ``--cluster-cidr`` and ``--service-cidr`` (10.42.0.0/16,
10.43.0.0/16; ``--pick-cidrs`` chooses free ones in 10.64.0.0/10) go to every component that
needs them; as root, ``up`` refuses to start (exit 2) when another instance or anything else
already routes them. The cluster DNS runs as ``system:coredns``, the agent's service proxy as
``system:kube-proxy``; the network's host objects are named from the data dir and node name and
removed by ``controlplane down`` (``controlplane.network.node`` registers the cleanup).
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
import ssl
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from controlplane import hostcleanup
from controlplane.cmd import bootstrap
from controlplane.cmd import etcd_snapshot
from controlplane.cmd import etcdmembers
from controlplane.cmd import metrics_adapter
from controlplane.cmd import secure
from controlplane.cmd import serverjoin
from controlplane.client.resources import NODES, STORAGECLASSES
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.etcd_process import EtcdProcess, EtcdTLS, free_port
from controlplane.images.registry import LocalRegistry, RegistryTLS
from controlplane.network import node as _network  # noqa: F401 - registers the "network" host cleanup
from controlplane.network.addressing import ClusterNetworks
from controlplane.network.node import NodeNetwork, NodeNetworkConfig
from controlplane.network.routes import CIDRInUse, check_free, cluster_id, pick_free
from controlplane.log import get_logger
from controlplane.metrics import register as apiservice_registration
from controlplane.metrics.register import SERVICE_DNS
from controlplane.pki.cluster import ClusterPKI
from controlplane.pki.kubeconfigs import write_component_kubeconfigs
from controlplane.pki import servertoken
from controlplane.pki.servertoken import Token, TokenError
from controlplane.procutil import PidFiles
from controlplane.machinery.quantity import bytes_
from controlplane.supervisor import logrotate
from controlplane.supervisor.process import ChildProcess, EtcdRunnable, Runnable, wait_pid
from controlplane.supervisor.supervisor import LivenessProbe, Supervisor, run_dir
from controlplane.prometheus import PrometheusProcess, PrometheusTLS

log = get_logger(__name__)


@dataclass
class UpContext:
    data_dir: Path
    port: int
    host: str
    etcd_endpoints: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)  # what components serve, for the ready line
    node_name: str = field(default_factory=lambda: default_node_name())
    disabled: set[str] = field(default_factory=set)  # components not run here (--disable...)
    etcd: EtcdProcess | None = None  # the embedded member, prepared before it starts
    etcd_member_id: int | None = None  # set while it joins as a learner (promoted after start)
    token: Token | None = None  # the server token (DATA_DIR/server/token)
    removed: bool = False  # this server's etcd member was removed from the cluster while it ran
    safety_net: NodeNetwork | None = None  # a server without an agent: its own safety routes

    @property
    def etcd_host(self) -> str:
        """The address the embedded etcd advertises: the apiserver's, unless that is a wildcard."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def host_id(self) -> str:
        """The key of every host-level name this instance makes (cgroup tree, network
        namespaces): the node name plus a hash of the data dir, so two instances never meet."""
        return host_id(self.node_name, self.data_dir)

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


class RegistryRunnable:
    """The seeded local OCI registry under ``DIR/registry``; puts its URL in
    ``ctx.extra["registry_mirror"]`` for the agent's ``--registry-mirror`` (a restart keeps the
    port and the stored images). With the cluster PKI it serves HTTPS and lets only clients
    with a cluster certificate (nodes, admins) pull."""

    name = "registry"

    def __init__(self) -> None:
        self.reg: LocalRegistry | None = None

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        first = self.reg is None
        if self.reg is None:
            tls = None
            pki_dir = ctx.extra.get("pki_dir")
            if pki_dir:
                pki = ClusterPKI(Path(pki_dir))
                pki.serving("registry", "controlplane-registry", ["127.0.0.1", "localhost", "::1"])
                tls = RegistryTLS(pki.crt("registry"), pki.key("registry"), pki.ca_file, pki.crt("admin"),
                                  pki.key("admin"))
            self.reg = LocalRegistry(ctx.data_dir / "registry", tls=tls, tied_to_parent=True)
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


def instance(data_dir: Path) -> hostcleanup.Instance:
    """The instance ``DIR/instance.json`` describes (what ``down`` and a restarted ``up`` clean)."""
    try:
        d = json.loads(instance_file(data_dir).read_text())
        return hostcleanup.Instance(data_dir, d["hostID"], d.get("nodeName", ""))
    except (OSError, ValueError, KeyError):
        # never started by this version of `up`: the default node name's host id
        return hostcleanup.Instance(data_dir, host_id(default_node_name(), data_dir), default_node_name())


async def _clear_own_stale_network(ctx: "UpContext") -> bool:
    """With this data dir's lock held and no process of a previous run left: remove the node
    networks (routes, links, namespaces, nftables tables) its agents recorded, as ``down`` does.
    Returns whether there was such a previous run to clear."""
    if not instance_file(ctx.data_dir).exists():
        return False
    if await asyncio.to_thread(hostcleanup.processes_mentioning, ctx.data_dir, hostcleanup.own_pids()):
        return False  # something of the previous run still runs: not ours to clear
    network = next(c for c in hostcleanup.cleanups() if c.name == "network")
    inst = instance(ctx.data_dir)
    if not await asyncio.to_thread(network.leftovers, inst):
        return False
    log.info("removing the node network a previous run of this data dir left", data_dir=str(ctx.data_dir))
    await network.remove(inst)
    return True


def http_ok(url: str, cafile: Path | None = None, timeout: float = 1.0) -> bool:
    """GET ``url`` answers 200 (https verified against ``cafile``; anonymous, as health checks are)."""
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return r.status == 200
    except (OSError, ValueError):  # ValueError: a URL read from a file being written (not ready yet)
        return False


# the components whose metrics/health port `up` serves over HTTPS with delegated authn/authz
# (a serving certificate of the cluster CA, ``cmd.statusserver``), as kube-controller-manager's
# and kube-scheduler's secure ports; the others' ports are plain HTTP on loopback
SECURE_METRICS = ("controller-manager", "scheduler", "metrics-server", "agent", "metrics-adapter")


def component_url(data_dir: Path, name: str, path: str = "") -> str | None:
    """``https://127.0.0.1:PORT/path`` (``http://`` for the plain ones) of a component's
    metrics/health port, from ``DATA_DIR/<name>.metrics-port``; None while it has none."""
    try:
        port = int((Path(data_dir) / f"{name}.metrics-port").read_text().strip())
    except (OSError, ValueError):
        return None
    return f"{'https' if name in SECURE_METRICS else 'http'}://127.0.0.1:{port}{path}"


def component_ready(name: str) -> Callable[[UpContext], bool]:
    """Ready when the component's own /readyz (on its metrics port, ``cmd.bootstrap``) says so
    (anonymously: an always-allowed path; the server verified against the cluster CA)."""
    def ready(ctx: UpContext) -> bool:
        url = component_url(ctx.data_dir, name, "/readyz")
        return url is not None and http_ok(url, ctx.pki.ca_file if url.startswith("https") else None)
    return ready


def component_live(name: str) -> Callable[[UpContext, float], bool]:
    """The supervisor's liveness probe: the component's own /livez (event loop, leader Lease),
    anonymous as the kubelet's probes of kube-controller-manager's /healthz are."""
    def live(ctx: UpContext, timeout: float) -> bool:
        url = component_url(ctx.data_dir, name, "/livez")
        return url is not None and http_ok(url, ctx.pki.ca_file if url.startswith("https") else None, timeout)
    return live


def _metrics_serving(ctx: UpContext, name: str, cn: str) -> None:
    """Issue (or renew: ``ClusterPKI.leaf``) the serving certificate of a component's secure
    metrics/health port (cluster CA; 127.0.0.1, localhost, ::1), at each start of ``up``."""
    ctx.pki.serving(f"{name}-serving", cn, ["127.0.0.1", "localhost", "::1"])


def _secure_metrics_args(c: UpContext, name: str) -> list[str]:
    """The flags of that port: its certificate and the CA of client certificates."""
    return ["--tls-cert-file", str(c.pki.crt(f"{name}-serving")),
            "--tls-private-key-file", str(c.pki.key(f"{name}-serving")), "--client-ca-file", str(c.pki.ca_file)]


def _etcd(ctx: UpContext) -> Runnable | None:
    if ctx.etcd is None:
        return None  # --etcd-endpoints: an etcd we did not start
    # a member of a cluster needs its quorum to report healthy: the others may still be starting
    cluster = ctx.etcd_member_id is not None or ctx.extra.get("cluster") == "1"
    return EtcdRunnable(tls=ctx.etcd.tls, proc=ctx.etcd, ready_timeout=300.0 if cluster else 15.0)


def _apiserver(ctx: UpContext) -> Runnable:
    # with several workers /readyz turns 200 only once every worker serves (workers.py's gate)
    def args(c: UpContext) -> list[str]:
        sec = secure.apiserver_args(c.pki, c.data_dir)
        if c.extra.get("external_etcd"):  # an etcd we did not start: no client certificate of ours
            sec = [a for i, a in enumerate(sec) if not (a.startswith("--etcd-") or sec[i - 1].startswith("--etcd-"))]
        if c.token is not None:
            sec += ["--token-auth-file", str(serverjoin.token_auth_file(c.data_dir))]
        return ["apiserver", "--host", c.host, "--port", str(c.port), "--etcd-endpoints", ",".join(c.etcd_endpoints),
                "--workers", c.extra.get("apiserver_workers", "1"), *sec, "--service-cidr", c.extra["service_cidr"],
                "--advertise-address", str(_nets(c).host_address),
                # `kubectl get componentstatuses`: the ports those components write once they serve
                *(a for comp in ("controller-manager", "scheduler")
                  for a in ("--component-status", f"{comp}={c.data_dir / f'{comp}.metrics-port'}"))]

    return ChildProcess("apiserver", args, ready=lambda c: http_ok(c.server + "/readyz", c.pki.ca_file),
                        live=lambda c, timeout: http_ok(c.server + "/livez", c.pki.ca_file, timeout))


# Lease timings `up` gives its leader-elected components (Kubernetes' flag names; its defaults
# are 15 s / 10 s / 2 s): lease 10 s, renew deadline 7 s, retry 2 s keep client-go's invariants
# (renewDeadline < leaseDuration, retryPeriod * 1.2 < renewDeadline) with a 3 s margin between a
# leader giving up and a standby taking over, and put a SIGKILLed leader's takeover at about
# 10-12 s instead of 15-17 s (docs/reliability.md, "Leader election").
LEADER_ELECTION = {"lease_duration": 10.0, "renew_deadline": 7.0, "retry_period": 2.0}


def _leader_elect_args(c: UpContext) -> list[str]:
    return ["--leader-elect-lease-duration", c.extra.get("le_lease_duration", str(LEADER_ELECTION["lease_duration"])),
            "--leader-elect-renew-deadline", c.extra.get("le_renew_deadline", str(LEADER_ELECTION["renew_deadline"])),
            "--leader-elect-retry-period", c.extra.get("le_retry_period", str(LEADER_ELECTION["retry_period"]))]


def _controller_manager(ctx: UpContext) -> Runnable:
    _metrics_serving(ctx, "controller-manager", "kube-controller-manager")
    return ChildProcess("controller-manager", lambda c: [
        "controller-manager", "--kubeconfig", str(c.component_kubeconfig("controller-manager")),
        "--data-dir", str(c.data_dir), "--root-ca-file", str(c.pki.ca_file),
        "--cluster-signing-cert-file", str(c.pki.ca_file), "--cluster-signing-key-file", str(c.pki.key("ca")),
        "--cluster-cidr", c.extra["cluster_cidr"], *_leader_elect_args(c),
        # every controller under its own ServiceAccount, as k3s and kubeadm run it
        "--use-service-account-credentials",
        *_secure_metrics_args(c, "controller-manager")],
        ready=component_ready("controller-manager"), live=component_live("controller-manager"))


def _scheduler(ctx: UpContext) -> Runnable:
    _metrics_serving(ctx, "scheduler", "kube-scheduler")
    return ChildProcess("scheduler", lambda c: [
        "scheduler", "--kubeconfig", str(c.component_kubeconfig("scheduler")), "--data-dir", str(c.data_dir),
        *_leader_elect_args(c), *_secure_metrics_args(c, "scheduler")],
        ready=component_ready("scheduler"), live=component_live("scheduler"))


def _registry(ctx: UpContext) -> Runnable:
    return RegistryRunnable()


def _nets(c: UpContext) -> ClusterNetworks:
    return ClusterNetworks.parse(c.extra["cluster_cidr"], c.extra["service_cidr"])


def _token_text(args: argparse.Namespace) -> str:
    """``--token-file``'s content, else ``--token``."""
    return args.token_file.read_text().strip() if args.token_file else args.token


def _route_cluster_id(c: UpContext, token_text: str | None) -> str:
    """The cluster's name in route tags (``routes.cluster_id``) as far as it is known before
    anything starts: this data dir's CA, else a ``K10`` join token's CA hash, else this
    server's URL (a new cluster: no route on the host is its own yet). Blocking reads."""
    if c.pki.ca_file.exists():
        return cluster_id(c.pki.ca_pem, c.server)
    try:
        tok = servertoken.parse(token_text) if token_text else None
    except TokenError:
        tok = None
    return tok.ca_hash if tok is not None and tok.ca_hash else c.server


async def start_safety_routes(c: UpContext) -> None:
    """The apiserver allocates Service addresses from its first seconds (the ``kubernetes``
    Service), before the local agent installs its safety routes, and a server without an agent
    never would: so before the apiserver starts the server installs the ``unreachable`` safety
    routes for both CIDRs itself, as a node network of its own that has nothing but them
    (``DATA_DIR/server-network``; ``down`` and a later ``up`` find it like an agent's). Tagged
    with the cluster's CA, so the agents and the other servers of the cluster on this host
    add their own copies instead of refusing each other; each removes only its own."""
    if os.geteuid() != 0:
        return
    c.safety_net = NodeNetwork(NodeNetworkConfig(
        root=c.data_dir / "server-network", node=f"server-{c.host_id}", nets=_nets(c), api_url=c.server,
        cluster_id=await asyncio.to_thread(cluster_id, c.pki.ca_pem, c.server)))
    await c.safety_net.start()


def _net_args(c: UpContext) -> list[str]:
    return ["--cluster-cidr", c.extra["cluster_cidr"], "--service-cidr", c.extra["service_cidr"]]


def _dns(ctx: UpContext) -> Runnable:
    """The cluster DNS (kube-system/kube-dns at the service CIDR's 10th address)."""
    port_file = ctx.data_dir / "dns-port"
    port_file.unlink(missing_ok=True)
    ups = [a for u in ctx.extra.get("dns_upstreams", "").split(",") if u for a in ("--upstream", u)]
    ready = component_ready("dns")
    return ChildProcess("dns", lambda c: ["dns", "--kubeconfig", str(c.component_kubeconfig("coredns")),
                                          "--port-file", str(port_file), "--data-dir", str(c.data_dir),
                                          *_net_args(c), *ups],
                        ready=lambda c: port_file.exists() and ready(c), live=component_live("dns"))


def _agent(ctx: UpContext) -> Runnable | None:
    """The node agent for this machine (runc needs root; without it `up` runs no node)."""
    if os.geteuid() != 0:
        log.warning("not root: no node agent started (runc containers need root)")
        return None
    node = ctx.node_name
    serving = f"node-{node}-serving"
    ctx.pki.node_serving(node, ["127.0.0.1", *([ctx.host] if ctx.etcd_host != "127.0.0.1" else [])])
    return ChildProcess("agent", lambda c: [
        "agent", "--kubeconfig", str(c.component_kubeconfig(f"node-{node}")), "--node-name", node,
        "--host-id", c.host_id, "--root", str(c.data_dir / "agent"),
        *(["--registry-mirror", c.extra["registry_mirror"]] if c.extra.get("registry_mirror") else []),
        *(["--address", c.etcd_host] if c.etcd_host != "127.0.0.1" else []),
        "--tls-cert-file", str(c.pki.crt(serving)), "--tls-private-key-file", str(c.pki.key(serving)),
        "--client-ca-file", str(c.pki.ca_file), "--data-dir", str(c.data_dir), "--keep-containers",
        "--proxy-kubeconfig", str(c.component_kubeconfig("kube-proxy")), *_net_args(c)],
        ready=component_ready("agent"), live=component_live("agent"))


def _metrics_server(ctx: UpContext) -> Runnable:
    """The resource metrics component (metrics.k8s.io behind its APIService) as
    ``system:metrics-server``: its serving certificate from the cluster CA (the APIService's
    caBundle), the front-proxy CA for the aggregation layer's X-Remote-User, its client
    certificate for the agents; one port for the life of ``up`` (the Endpoints name it)."""
    pki = ctx.pki
    pki.serving("metrics-server-serving", "metrics-server", ["127.0.0.1", "localhost", SERVICE_DNS])
    if not ctx.extra.get("metrics_server_port"):
        ctx.extra["metrics_server_port"] = str(free_port())
    return ChildProcess("metrics-server", lambda c: [
        "metrics-server", "--kubeconfig", str(c.component_kubeconfig("metrics-server")), "--data-dir", str(c.data_dir),
        "--secure-port", c.extra["metrics_server_port"],
        "--tls-cert-file", str(c.pki.crt("metrics-server-serving")),
        "--tls-private-key-file", str(c.pki.key("metrics-server-serving")),
        "--requestheader-client-ca-file", str(c.pki.crt("front-proxy-ca")),
        "--requestheader-allowed-names", "front-proxy-client", "--client-ca-file", str(c.pki.ca_file),
        "--kubelet-certificate-authority", str(c.pki.ca_file),
        "--kubelet-client-certificate", str(c.pki.crt("metrics-server")),
        "--kubelet-client-key", str(c.pki.key("metrics-server"))],
        ready=component_ready("metrics-server"), live=component_live("metrics-server"))


LOCAL_PATH_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete",
}


async def ensure_local_path_class(ctx: UpContext) -> None:
    """k3s's ``local-storage`` manifest: the ``local-path`` StorageClass, the default class,
    created when missing (an administrator's later changes, such as another default, are kept)."""
    try:
        client = RestClient.from_kubeconfig(str(ctx.kubeconfig), user_agent="controlplane-up")
    except OSError as e:
        log.warning("could not create the local-path storage class", error=str(e))
        return
    try:
        await client.create(STORAGECLASSES, LOCAL_PATH_CLASS)
        log.info("storage class created", name="local-path")
    except ApiStatusError as e:
        if not e.already_exists:
            log.warning("could not create the local-path storage class", error=str(e))
    finally:
        await client.close()


def server_node_roles(ctx: UpContext) -> dict[str, str]:
    """The role labels k3s gives a server's own Node (the kubelet may not set
    ``node-role.kubernetes.io/*`` itself: NodeRestriction): control-plane and master where an
    apiserver runs, etcd where the server runs an etcd member."""
    labels = {}
    if "apiserver" not in ctx.disabled:
        labels |= {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}
    if ctx.etcd is not None:
        labels["node-role.kubernetes.io/etcd"] = "true"
    return labels


async def label_server_node(ctx: UpContext, timeout: float = 120.0) -> None:
    """Once the agent has registered this server's Node, add the role labels (a merge patch,
    so labels an administrator set stay)."""
    labels = server_node_roles(ctx)
    if not labels:
        return
    deadline = asyncio.get_running_loop().time() + timeout
    client = RestClient.from_kubeconfig(str(ctx.kubeconfig), user_agent="controlplane-up")
    try:
        while True:
            try:
                await client.patch(NODES, ctx.node_name, {"metadata": {"labels": labels}})
                log.info("server node labelled", node=ctx.node_name, labels=sorted(labels))
                return
            except (ApiStatusError, OSError) as e:
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("could not label the server's node", node=ctx.node_name, error=str(e))
                    return
            await asyncio.sleep(1.0)
    finally:
        await client.close()


async def _as_admin(ctx: UpContext, write: Callable[[RestClient], Awaitable[None]]) -> None:
    client = RestClient.from_kubeconfig(str(ctx.kubeconfig), user_agent="controlplane-up")
    try:
        await write(client)
    finally:
        await client.close()


async def register_metrics_api(ctx: UpContext) -> None:
    """Service, Endpoints and APIService ``v1beta1.metrics.k8s.io`` (caBundle: the cluster CA),
    written with the admin's credentials."""
    await _as_admin(ctx, lambda client: apiservice_registration.register(
        client, "127.0.0.1", int(ctx.extra["metrics_server_port"]), ctx.pki.ca_file))


class PrometheusRunnable:
    """``--prometheus``: the real Prometheus on manifests/prometheus (``controlplane.prometheus``),
    with the ``system:prometheus`` client certificate (group ``system:monitoring``)."""

    name = "prometheus"

    def __init__(self) -> None:
        self.proc: PrometheusProcess | None = None

    async def start(self, ctx: UpContext, wait_ready: bool = True) -> None:
        if self.proc is None:
            rules = ctx.extra.get("prometheus_rules")
            pki = ctx.pki
            self.proc = PrometheusProcess(
                ctx.data_dir, apiserver=ctx.server, etcd_metrics=ctx.extra.get("etcd_metrics", ""),
                tls=PrometheusTLS(pki.ca_file, pki.crt("prometheus"), pki.key("prometheus")),
                port=int(ctx.extra.get("prometheus_port") or 0),
                scrape_interval=ctx.extra.get("prometheus_scrape_interval") or None,
                rules_dir=Path(rules) if rules else None)
        await self.proc.start(wait_ready=wait_ready)
        ctx.extra["prometheus_url"] = self.proc.url

    async def wait(self) -> int:
        assert self.proc is not None and self.proc.proc is not None
        return await wait_pid(self.proc.proc)

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.stop()

    def pid(self) -> int | None:
        p = self.proc.proc if self.proc is not None else None
        return p.pid if p is not None and p.poll() is None else None


def _metrics_adapter(ctx: UpContext) -> Runnable | None:
    """With ``--prometheus``: the custom and external metrics component
    (``controlplane metrics-adapter``, prometheus-adapter's role) on that Prometheus, as
    ``system:prometheus-adapter``, with a serving certificate of the cluster CA (its
    APIServices' caBundle) and the front-proxy CA for the aggregation layer."""
    if not ctx.extra.get("prometheus"):
        return None
    pki = ctx.pki
    pki.serving("metrics-adapter-serving", "metrics-adapter", ["127.0.0.1", "localhost", metrics_adapter.SERVICE_DNS])
    if not ctx.extra.get("metrics_adapter_port"):
        ctx.extra["metrics_adapter_port"] = str(free_port())
    config = ctx.extra.get("metrics_adapter_config") or ""
    relist = ctx.extra.get("metrics_adapter_relist_interval") or ""
    return ChildProcess("metrics-adapter", lambda c: [
        "metrics-adapter", "--kubeconfig", str(c.component_kubeconfig("metrics-adapter")), "--data-dir", str(c.data_dir),
        "--prometheus-url", c.extra["prometheus_url"], "--secure-port", c.extra["metrics_adapter_port"],
        "--tls-cert-file", str(c.pki.crt("metrics-adapter-serving")),
        "--tls-private-key-file", str(c.pki.key("metrics-adapter-serving")),
        "--requestheader-client-ca-file", str(c.pki.crt("front-proxy-ca")),
        "--requestheader-allowed-names", "front-proxy-client", "--client-ca-file", str(c.pki.ca_file),
        *(["--config", config] if config else []), *(["--metrics-relist-interval", relist] if relist else [])],
        ready=component_ready("metrics-adapter"), live=component_live("metrics-adapter"))


async def register_metrics_adapter(ctx: UpContext) -> None:
    """Service, Endpoints and the APIServices of custom.metrics.k8s.io (v1beta2, v1beta1) and
    external.metrics.k8s.io (v1beta1) for the adapter, written with the admin's credentials."""
    await _as_admin(ctx, lambda client: metrics_adapter.register_apiservices(
        client, "127.0.0.1", int(ctx.extra["metrics_adapter_port"]), ctx.pki.ca_file))


def metrics_endpoints(ctx: UpContext) -> dict[str, str]:
    """Every component's metrics URL (the ``ready`` line prints them)."""
    out = {"apiserver": ctx.server + "/metrics"}
    if ctx.extra.get("etcd_metrics"):
        out["etcd"] = ctx.extra["etcd_metrics"] + "/metrics"
    for comp in ("controller-manager", "scheduler", "metrics-server", "metrics-adapter"):
        url = component_url(ctx.data_dir, comp, "/metrics")
        if url is not None:
            out[comp] = url
    if os.geteuid() == 0:  # the agent's endpoint (authenticated: nodes/metrics)
        out["agent"] = f"{ctx.server}/api/v1/nodes/{ctx.node_name}/proxy/metrics"
    return out


def _gitops(ctx: UpContext) -> Runnable:
    """The GitOps controller (controlplane/gitops): installs its CRDs, serves webhooks on
    --gitops-webhook-port (a free port if that one is busy), applies DATA_DIR/manifests."""
    addr = ctx.data_dir / "gitops" / "webhook-address"
    addr.unlink(missing_ok=True)

    def ready(c: UpContext) -> bool:
        return addr.exists() and http_ok(addr.read_text().strip() + "/healthz")
    return ChildProcess("gitops-controller", lambda c: [
        "gitops-controller", "--kubeconfig", str(c.kubeconfig), "--data-dir", str(c.data_dir), *_leader_elect_args(c),
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


def _ingress(ctx: UpContext) -> Runnable:
    """The ingress controller (controlplane/ingress) as ``system:ingress-controller`` on
    --ingress-http-port / --ingress-https-port (80/443 as k3s's Traefik; free ports if busy);
    its URLs, written to DATA_DIR/ingress-address, go into the ready line."""
    addr = ctx.data_dir / "ingress-address"
    addr.unlink(missing_ok=True)

    def ready(c: UpContext) -> bool:
        if not addr.exists() or not component_ready("ingress-controller")(c):
            return False
        urls = addr.read_text().split()
        if not urls:
            return False
        c.urls["ingress"] = urls[0]
        if len(urls) > 1:
            c.urls["ingress_https"] = urls[1]
        return True
    return ChildProcess("ingress-controller", lambda c: [
        "ingress-controller", "--kubeconfig", str(c.component_kubeconfig("ingress-controller")),
        "--data-dir", str(c.data_dir), "--http-port", c.extra.get("ingress_http_port", "80"),
        "--https-port", c.extra.get("ingress_https_port", "443")], ready=ready, live=component_live("ingress-controller"))


# The components `up` runs, in start order (stopped in reverse). One line per component.
COMPONENTS: list[Callable[[UpContext], Runnable | None]] = [
    _etcd,
    _apiserver,
    _controller_manager,
    _scheduler,
    _dns,
    _registry,
    _agent,
    _metrics_server,
    lambda ctx: PrometheusRunnable() if ctx.extra.get("prometheus") else None,
    _metrics_adapter,
    _gitops,
    _dashboard,
    _ingress,
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run etcd, the apiserver and the other components in the foreground")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--port", type=int, default=6443,
                   help="the apiserver's port (0: a free one, kept in DATA_DIR/apiserver-port for the next start)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--etcd-endpoints", default="", help="use this etcd instead of an embedded one")
    p.add_argument("--apiserver-workers", type=int, default=2,
                   help="apiserver processes sharing the port (controlplane apiserver --workers)")
    p.add_argument("--leader-elect-lease-duration", type=float, default=LEADER_ELECTION["lease_duration"],
                   help="seconds a leader's Lease lasts, for the controller-manager, scheduler and gitops-controller")
    p.add_argument("--leader-elect-renew-deadline", type=float, default=LEADER_ELECTION["renew_deadline"],
                   help="seconds a leader keeps trying to renew before it gives up (< lease duration)")
    p.add_argument("--leader-elect-retry-period", type=float, default=LEADER_ELECTION["retry_period"],
                   help="seconds between Lease acquire/renew attempts (* 1.2 < renew deadline)")
    p.add_argument("--prometheus", action="store_true",
                   help="also run /usr/bin/prometheus on manifests/prometheus (data under DIR/prometheus)")
    p.add_argument("--prometheus-port", type=int, default=0, help="Prometheus' web port (0: a free port)")
    p.add_argument("--prometheus-scrape-interval", default="", help="replace the scrape/evaluation interval (15s)")
    p.add_argument("--prometheus-rules", default="", help="rule files directory (default manifests/prometheus/rules)")
    p.add_argument("--metrics-adapter-config", default="",
                   help="with --prometheus: the custom/external metrics rules (default manifests/prometheus-adapter/config.yaml)")
    p.add_argument("--metrics-adapter-relist-interval", default="",
                   help="with --prometheus: how often the metrics adapter lists Prometheus' series again (1m)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="pod addresses (a /24 per node)")
    p.add_argument("--service-cidr", default="10.43.0.0/16", help="Service cluster IPs")
    p.add_argument("--pick-cidrs", action="store_true",
                   help="choose free cluster and service /16s inside 10.64.0.0/10 (kept in DATA_DIR/cidrs.json)")
    p.add_argument("--dns-upstream", action="append", default=[],
                   help="resolver for non-cluster names, host[:port] (default: the host's /etc/resolv.conf)")
    p.add_argument("--gitops-webhook-port", type=int, default=9292,
                   help="the GitOps webhook receiver's port (0: a free one; see DATA_DIR/gitops/webhook-address)")
    p.add_argument("--dashboard-port", type=int, default=8080,
                   help="the web dashboard's port (0: a free one; the URL is in the ready line)")
    p.add_argument("--ingress-http-port", type=int, default=80,
                   help="the ingress controller's HTTP port on 127.0.0.1 (busy or 0: a free one; see the ready line)")
    p.add_argument("--ingress-https-port", type=int, default=443,
                   help="the ingress controller's HTTPS port on 127.0.0.1 (busy or 0: a free one)")
    p.add_argument("--node-name", default=None, help="this machine's Node (default: the hostname)")
    # several servers (k3s's flags; docs/reliability.md "HA")
    p.add_argument("--cluster-init", action="store_true",
                   help="start a new cluster (embedded etcd) that further servers may join")
    p.add_argument("--server", default="", help="join the cluster of the server at this URL (needs --token)")
    p.add_argument("--token", default=os.environ.get("CONTROLPLANE_TOKEN", ""),
                   help="the server token (K10<ca hash>::server:<password>; a first server may choose its password)")
    p.add_argument("--token-file", type=Path, default=None, help="read --token from this file")
    p.add_argument("--disable-apiserver", action="store_true",
                   help="an etcd-only server: no apiserver, controller-manager, scheduler, dns, registry, agent, gitops or "
                        "dashboard")
    p.add_argument("--disable-agent", action="store_true", help="run no node agent on this server")
    p.add_argument("--disable", action="append", default=[],
                   help="components not to run: registry, gitops-controller, dashboard, ingress-controller, dns, scheduler, "
                        "controller-manager "
                        "(comma list)")
    p.add_argument("--log-max-size", default="100Mi",
                   help="a component's log file (DIR/logs/*.log, DIR/etcd.log) is rotated at this size "
                        "(a quantity: 100Mi; 0: never)")
    p.add_argument("--log-max-files", type=int, default=5,
                   help="log files kept per component, the live one included (>= 2, as the kubelet's "
                        "--container-log-max-files)")
    probe = LivenessProbe()
    p.add_argument("--liveness-period", type=float, default=probe.period,
                   help="seconds between liveness probes of each component's /livez (0: none); a component failing "
                        "--liveness-failure-threshold in a row is killed and restarted")
    p.add_argument("--liveness-failure-threshold", type=int, default=probe.failure_threshold)
    p.add_argument("--liveness-timeout", type=float, default=probe.timeout, help="seconds a probe may take")
    p.add_argument("--liveness-initial-delay", type=float, default=probe.initial_delay,
                   help="seconds after a (re)start before the first probe")
    p.add_argument("--cluster-reset", action="store_true",
                   help="reset etcd to a single member (this one), keeping its data, then exit (k3s's flag)")
    p.add_argument("--cluster-reset-restore-path", type=Path, default=None,
                   help="with --cluster-reset: restore this snapshot into the single-member cluster")
    etcd_snapshot.add_schedule_flags(p)
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


def _liveness(args: argparse.Namespace) -> LivenessProbe | None:
    if args.liveness_period <= 0:
        return None
    return LivenessProbe(period=args.liveness_period, timeout=min(args.liveness_timeout, args.liveness_period),
                         failure_threshold=max(1, args.liveness_failure_threshold),
                         initial_delay=args.liveness_initial_delay)


def _disabled(args: argparse.Namespace) -> set[str]:
    out = {d.strip() for v in args.disable for d in v.split(",") if d.strip()}
    if args.disable_apiserver:
        out |= {"apiserver", "controller-manager", "scheduler", "dns", "registry", "agent", "gitops-controller",
                "dashboard", "metrics-server", "ingress-controller", "metrics-adapter"}
    if args.disable_agent:
        out.add("agent")
    return out


class MemberRemoved(Exception):
    """This server's etcd member is no longer in the cluster's member list."""


def removed_message(ctx: UpContext) -> str:
    return (f"this server's etcd member ({ctx.etcd.name if ctx.etcd else '?'}) was removed from the cluster (its Node "
            f"was deleted or annotated {etcdmembers.REMOVE_ANNOTATION}); it must be wiped and joined again: "
            f"controlplane down --data-dir {ctx.data_dir}, remove {ctx.data_dir}, then controlplane up --server URL "
            "--token TOKEN")


async def prepare_server(ctx: UpContext, args: argparse.Namespace) -> None:
    """Before anything starts: join (``--server``: the bootstrap data opened with the token),
    the PKI, the server token, and the embedded etcd member (its stable ports; a learner added
    through the member add API when joining)."""
    token_text = _token_text(args)
    payload: dict[str, Any] | None = None
    joined = (ctx.data_dir / "etcd" / "member").exists() and ctx.pki.ca_file.exists()
    if args.server and not joined:
        if not token_text:
            raise serverjoin.JoinError("--server needs --token (DATA_DIR/server/token of a server of the cluster)")
        _, payload = await serverjoin.fetch(args.server.rstrip("/"), serverjoin.servertoken.parse(token_text))
        written = serverjoin.write_bootstrap(ctx.data_dir, payload)
        log.info("joined: bootstrap data written", server=args.server, files=written)
    elif args.server and not serverjoin.load_peers(ctx.data_dir) and token_text:
        # joined before the other members were recorded: learn them again (best effort)
        try:
            _, old = await serverjoin.fetch(args.server.rstrip("/"), serverjoin.servertoken.parse(token_text))
            serverjoin.save_peers(ctx.data_dir, list(old.get("etcdEndpoints") or []))
        except Exception as e:  # noqa: BLE001 - the server may be down; the member list tells us later
            log.info("could not read the cluster's etcd endpoints from --server", error=str(e))
    # create or renew the PKI (as k3s does at start) before anything uses it (its SANs hold the
    # kubernetes Service IP and the host address pods reach it at, and a non-loopback --host)
    sans = [ctx.host] if ctx.etcd_host != "127.0.0.1" else []
    nets = _nets(ctx)
    await asyncio.to_thread(ctx.pki.ensure, hostname=ctx.node_name, service_ip=str(nets.kubernetes_service_ip),
                            extra_sans=[*sans, str(nets.host_address)], etcd_sans=sans)
    ctx.token = serverjoin.ensure_token(ctx.data_dir, ctx.pki.ca_pem, token_text or None)
    if ctx.etcd_endpoints:
        return  # an external etcd
    # a new member's name: the host id plus a random suffix (k3s's <hostname>-<8 hex>), so a server
    # wiped and joined again is a new member to the Nodes' etcd annotations
    settings = serverjoin.EtcdSettings.load_or_new(ctx.data_dir, f"{ctx.host_id}-{secrets.token_hex(4)}",
                                                   ctx.etcd_host)
    ctx.etcd = EtcdProcess(data_dir=ctx.data_dir / "etcd", client_port=settings.client_port,
                           peer_port=settings.peer_port, name=settings.name, tls=EtcdTLS.from_pki(ctx.pki.dir),
                           tied_to_parent=True, host=ctx.etcd_host,
                           metrics_port=free_port())  # /metrics on plain loopback as kubeadm sets etcd up
    ctx.extra["etcd_metrics"] = ctx.etcd.metrics_url
    if args.server or args.cluster_init or serverjoin.load_peers(ctx.data_dir):
        ctx.extra["cluster"] = "1"
    if payload is not None:
        peers = list(payload.get("etcdEndpoints") or [])
        ctx.etcd_member_id = await serverjoin.join_etcd(ctx.etcd, peers)
        serverjoin.save_peers(ctx.data_dir, peers)
    elif (ctx.etcd.data_dir / "member").exists() and await etcdmembers.removed_from_cluster(
            serverjoin.load_peers(ctx.data_dir), serverjoin.etcd_tls_tuple(ctx.etcd.tls), ctx.etcd.peer_url,
            ctx.etcd.name):
        raise MemberRemoved(removed_message(ctx))


async def cluster_reset(ctx: UpContext, args: argparse.Namespace) -> int:
    """``--cluster-reset [--cluster-reset-restore-path P]``: this server's etcd becomes a new
    single-member cluster (from the snapshot, or its own data with ``--force-new-cluster``)."""
    if not (ctx.data_dir / "server" / "etcd.json").exists():
        log.error("--cluster-reset: no embedded etcd member in this data dir", data_dir=str(ctx.data_dir))
        return 1
    proc = etcd_snapshot.member_of(ctx.data_dir)
    proc.tied_to_parent = True
    if args.cluster_reset_restore_path:
        old = await asyncio.to_thread(etcd_snapshot.restore, proc, args.cluster_reset_restore_path)
        msg = f"etcd restored from {args.cluster_reset_restore_path} (old data kept in {old})"
    else:
        await etcd_snapshot.force_new_cluster(proc)
        msg = "etcd membership reset to this member"
    sys.stdout.write(json.dumps({"status": "reset", "message": msg + "; start up again without --cluster-reset; "
                                 "other servers must be wiped and joined again"}) + "\n")
    return 0


async def refresh_etcd_endpoints(ctx: UpContext) -> bool:
    """The apiserver's ``--etcd-endpoints`` (read at each of its starts): this member on
    loopback, then every other started voting member. True when the list changed."""
    if ctx.etcd is None:
        return False
    tls = serverjoin.etcd_tls_tuple(ctx.etcd.tls)
    try:
        urls = await serverjoin.client_urls([ctx.etcd.local_endpoint], tls, ctx.etcd.local_endpoint, ctx.etcd.endpoint)
    except serverjoin.etcd_admin.EtcdAdminError as e:
        log.info("etcd member list failed; keeping the endpoints", error=str(e))
        return False
    if urls != ctx.etcd_endpoints:
        ctx.etcd_endpoints = urls
        serverjoin.save_peers(ctx.data_dir, urls[1:])
        return True
    return False


async def publish_bootstrap(ctx: UpContext) -> None:
    if ctx.token is None or "apiserver" in ctx.disabled or ctx.etcd is None:
        return
    try:
        advertised = [u for u in ctx.etcd_endpoints if u != ctx.etcd.local_endpoint] + [ctx.etcd.endpoint]
        if await serverjoin.publish(ctx.kubeconfig, ctx.data_dir, ctx.token, advertised):
            log.info("server bootstrap data published", etcd_endpoints=advertised)
    except Exception as e:  # noqa: BLE001 - transient (the apiserver restarting): the next round retries
        log.warning("publishing the server bootstrap data failed", error=str(e))


async def maintain_cluster(ctx: UpContext, stop: asyncio.Event, interval: float = 10.0) -> None:
    """Every ``interval``: the etcd endpoints follow the member list, the bootstrap Secret
    follows them; this server's Node carries its etcd metadata (``etcdmembers``); when the
    local member stops answering and the others no longer list it (removed), ``up`` stops."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except asyncio.TimeoutError:
            pass
        if await refresh_etcd_endpoints(ctx):
            await publish_bootstrap(ctx)
        if await local_member_removed(ctx):
            log.error("this server's etcd member was removed from the cluster; stopping", message=removed_message(ctx))
            ctx.removed = True
            stop.set()
            return
        await mark_server_node(ctx)


async def local_member_removed(ctx: UpContext) -> bool:
    """The local member does not answer and the other members no longer list it."""
    if ctx.etcd is None or ctx.extra.get("cluster") != "1":
        return False
    tls = serverjoin.etcd_tls_tuple(ctx.etcd.tls)
    try:
        await serverjoin.etcd_admin.status(ctx.etcd.local_endpoint, tls)
        return False
    except serverjoin.etcd_admin.EtcdAdminError:
        pass
    return await etcdmembers.removed_from_cluster(serverjoin.load_peers(ctx.data_dir), tls, ctx.etcd.peer_url,
                                                  ctx.etcd.name)


def runs_member_controller(ctx: UpContext) -> bool:
    """A server of an HA cluster (embedded etcd) with an apiserver: it marks its Node and may
    lead the etcd member controller."""
    return ctx.etcd is not None and ctx.extra.get("cluster") == "1" and "apiserver" not in ctx.disabled


async def mark_server_node(ctx: UpContext) -> None:
    if not runs_member_controller(ctx) or ctx.etcd is None:
        return
    try:
        await etcdmembers.ensure_node_metadata(ctx.kubeconfig, ctx.node_name, ctx.etcd.name, ctx.etcd_host)
    except Exception as e:  # noqa: BLE001 - transient (the apiserver restarting): the next round retries
        log.info("marking this server's node as an etcd member failed", error=str(e))


async def _unless_stopped(coro: Any, stop: asyncio.Event) -> bool:
    """Run ``coro`` until it finishes (True) or ``stop`` is set first (it is cancelled: False)."""
    work = asyncio.ensure_future(coro)
    halt = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.cancel()
    if work.done():
        work.result()
        return True
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    return False


def _picked_cidrs(args: argparse.Namespace) -> None:
    """``--pick-cidrs``: reuse the data dir's choice (its Services keep their IPs), else pick."""
    f = args.data_dir / "cidrs.json"
    if f.exists():
        saved = json.loads(f.read_text())
    else:
        cluster, service = pick_free(2)
        saved = {"cluster_cidr": cluster, "service_cidr": service}
        args.data_dir.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(saved))
    args.cluster_cidr, args.service_cidr = saved["cluster_cidr"], saved["service_cidr"]


def _port_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _chosen_port(args: argparse.Namespace) -> int:
    """``--port 0``: the port this data directory's apiserver had before (kept in
    ``DATA_DIR/apiserver-port``, so kubeconfigs and agents keep working across restarts) when it
    is still free, else a free one, written there. The apiserver's workers each bind the port
    (SO_REUSEPORT), so it must be a fixed number before they start."""
    f = args.data_dir / "apiserver-port"
    host = "127.0.0.1" if args.host in ("0.0.0.0", "") else ("::1" if args.host == "::" else args.host)
    try:
        port = int(f.read_text().strip())
    except (OSError, ValueError):
        port = 0
    if not (0 < port < 65536 and _port_free(port, host)):
        port = free_port()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    f.write_text(f"{port}\n")
    log.info("apiserver port chosen", port=port)
    return port


async def main(bctx: bootstrap.Context) -> int:
    args, stop = bctx.args, bctx.stop
    if not (args.leader_elect_retry_period * 1.2 < args.leader_elect_renew_deadline < args.leader_elect_lease_duration):
        log.error("leader election timings need retry period * 1.2 < renew deadline < lease duration")
        return 2
    try:
        if bytes_(args.log_max_size) < 0 or args.log_max_files < 2:
            raise ValueError("negative")
    except ValueError:
        log.error("--log-max-size must be a quantity >= 0 (100Mi) and --log-max-files >= 2",
                  log_max_size=args.log_max_size, log_max_files=args.log_max_files)
        return 2
    if args.pick_cidrs:
        _picked_cidrs(args)
    if args.port == 0:
        args.port = _chosen_port(args)
    ctx = UpContext(data_dir=args.data_dir.resolve(), port=args.port, host=args.host,
                    etcd_endpoints=[e for e in args.etcd_endpoints.split(",") if e],
                    extra={"apiserver_workers": str(args.apiserver_workers), "cluster_cidr": args.cluster_cidr,
                           "service_cidr": args.service_cidr, "dns_upstreams": ",".join(args.dns_upstream),
                           "prometheus": "1" if args.prometheus else "", "prometheus_port": str(args.prometheus_port),
                           "prometheus_scrape_interval": args.prometheus_scrape_interval,
                           "prometheus_rules": args.prometheus_rules,
                           "metrics_adapter_config": str(Path(args.metrics_adapter_config).resolve())
                           if args.metrics_adapter_config else "",
                           "metrics_adapter_relist_interval": args.metrics_adapter_relist_interval,
                           "gitops_webhook_port": str(args.gitops_webhook_port),
                           "dashboard_port": str(args.dashboard_port),
                           "ingress_http_port": str(args.ingress_http_port),
                           "ingress_https_port": str(args.ingress_https_port),
                           "le_lease_duration": str(args.leader_elect_lease_duration),
                           "le_renew_deadline": str(args.leader_elect_renew_deadline),
                           "le_retry_period": str(args.leader_elect_retry_period)},
                    node_name=args.node_name or default_node_name(), disabled=_disabled(args))
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    lock = InstanceLock(ctx.data_dir)
    if not lock.acquire():
        log.error("another controlplane up runs on this data dir", data_dir=str(ctx.data_dir),
                  pid=lock.pid_path.read_text().strip() if lock.pid_path.exists() else None)
        return 1
    if os.geteuid() == 0:
        try:  # refuse before starting anything when another instance routes our CIDRs
            nets = _nets(ctx)
            token_text = _token_text(args)
            tag = nets.cluster_tag(await asyncio.to_thread(_route_cluster_id, ctx, token_text))
            try:
                await check_free(nets, tag)
            except CIDRInUse:
                # the routes may be this data dir's own, left by a run that was stopped without
                # `down` under another route tag (an older version's): clear them, then check again
                if not await _clear_own_stale_network(ctx):
                    raise
                await check_free(nets, tag)
        except (CIDRInUse, ValueError) as e:
            lock.release()
            sys.stderr.write(f"controlplane up: {e}\n")
            return 2
    pidfiles = PidFiles(run_dir(ctx.data_dir))
    for stale in ctx.data_dir.glob("*.metrics-port"):  # the previous run's ports (not ours: already bound)
        if stale.name != f"{COMPONENT.name}.metrics-port":
            stale.unlink(missing_ok=True)
    left = pidfiles.reclaim()
    if left:
        log.warning("stopped processes a previous up left running", processes=left)
    instance_file(ctx.data_dir).write_text(json.dumps(
        {"nodeName": ctx.node_name, "hostID": ctx.host_id, "dataDir": str(ctx.data_dir), "port": ctx.port}) + "\n")
    if ctx.etcd_endpoints:
        ctx.extra["external_etcd"] = "1"
    ctx.extra["pki_dir"] = str(ctx.pki.dir)
    sup = Supervisor(ctx, pidfiles, liveness=_liveness(args))
    background: list[asyncio.Task[Any]] = []
    rc = 0

    async def started(r: Runnable) -> None:
        log.info("component started", component=r.name)
        bctx.health.add(f"component/{r.name}", sup.health_check(r.name), ("healthz", "readyz"))
        if r.name == "etcd":
            if ctx.etcd is not None and ctx.extra.get("cluster") == "1":  # a learner until its log caught up
                await asyncio.wait_for(serverjoin.ensure_voter(
                    ctx.etcd, serverjoin.load_peers(ctx.data_dir), stop), 300.0)
            await refresh_etcd_endpoints(ctx)
        if r.name == "apiserver":
            await asyncio.to_thread(write_component_kubeconfigs, ctx.pki, ctx.server, ctx.data_dir,
                                    [ctx.node_name] if os.geteuid() == 0 and "agent" not in ctx.disabled else [])
            await publish_bootstrap(ctx)
            await ensure_local_path_class(ctx)
        elif r.name == "agent":
            background.append(asyncio.ensure_future(label_server_node(ctx)))
        elif r.name == "metrics-server":
            await register_metrics_api(ctx)
        elif r.name == "metrics-adapter":
            await register_metrics_adapter(ctx)

    try:
        if args.cluster_reset:
            return await cluster_reset(ctx, args)
        async def bring_up() -> None:
            await prepare_server(ctx, args)
            await start_safety_routes(ctx)  # before any Service address exists
            for factory in COMPONENTS:
                if stop.is_set():
                    break
                r = factory(ctx)
                if r is not None and r.name not in ctx.disabled:
                    await sup.start(r)
                    await started(r)

        # joining and starting wait on the cluster (member add, quorum): a stop request ends them
        if not await _unless_stopped(bring_up(), stop):
            return 0
        background.append(asyncio.ensure_future(logrotate.rotate_logs(
            ctx.data_dir, bytes_(args.log_max_size), args.log_max_files, stop)))
        if ctx.etcd is not None and not stop.is_set():
            background.append(asyncio.ensure_future(maintain_cluster(ctx, stop)))
            if runs_member_controller(ctx):
                members = etcdmembers.MemberController(
                    ctx.kubeconfig, ctx.etcd.local_endpoint, serverjoin.etcd_tls_tuple(ctx.etcd.tls), ctx.etcd.name,
                    lease_duration=args.leader_elect_lease_duration, renew_deadline=args.leader_elect_renew_deadline,
                    retry_period=args.leader_elect_retry_period)
                background.append(asyncio.ensure_future(members.run(stop)))
            if not args.etcd_disable_snapshots:
                background.append(asyncio.ensure_future(etcd_snapshot.scheduled(
                    ctx.etcd, etcd_snapshot.snapshot_dir(ctx.data_dir, args.etcd_snapshot_dir), ctx.host_id,
                    args.etcd_snapshot_schedule_cron, args.etcd_snapshot_retention, stop)))
        if not stop.is_set():
            line: dict[str, Any] = {"status": "ready", "server": ctx.server, "kubeconfig": str(ctx.kubeconfig),
                                    **ctx.urls, "cluster_cidr": args.cluster_cidr, "service_cidr": args.service_cidr,
                                    "metrics": metrics_endpoints(ctx)}
            if ctx.extra.get("prometheus_url"):
                line["prometheus"] = ctx.extra["prometheus_url"]
            if "apiserver" in ctx.disabled:
                line = {"status": "ready", "etcd": ctx.etcd.endpoint if ctx.etcd else None}
            if ctx.token is not None:
                line["token"] = str(serverjoin.token_path(ctx.data_dir))
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        await stop.wait()
        if ctx.removed:
            sys.stderr.write(f"controlplane up: {removed_message(ctx)}\n")
            rc = 1
    except MemberRemoved as e:
        log.error("this server's etcd member was removed from the cluster", error=str(e))
        sys.stderr.write(f"controlplane up: {e}\n")
        rc = 1
    except (serverjoin.JoinError, TokenError) as e:
        log.error("joining the cluster failed", error=str(e))
        rc = 1
    except CIDRInUse as e:
        sys.stderr.write(f"controlplane up: {e}\n")
        rc = 2
    except Exception as e:  # noqa: BLE001 - report, then stop what was started
        log.error("start-up failed", error=str(e), error_type=type(e).__name__)
        rc = 1
    finally:
        for t in background:
            t.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await sup.stop_all()
        if ctx.safety_net is not None:  # after everything that could hold an address stopped
            await ctx.safety_net.teardown()
        lock.release()
    return rc


def run(args: argparse.Namespace) -> int:
    return bootstrap.run(COMPONENT, args, main)
