"""``controlplane agent --kubeconfig F --node-name N --root DIR [--registry-mirror URL] …``:
one node agent running real runc containers (``controlplane.agent.agent.Agent``).

``--simulated`` runs ``controlplane.agent.simulated.SimulatedNodes`` instead (process-less
nodes for scheduling experiments: ``--nodes N --prefix P --cpu --memory --pods --gpus``; their
synthetic ``/metrics/resource`` is served on ``--address``:``--port`` behind the token).
``controlplane agent cleanup --root DIR --node-name N`` removes what a killed agent left on the
host (containers, mounts, namespaces, links, routes, nftables tables, cgroups). The agent runs
the node's service proxy too (``--no-proxy`` not to); SIGHUP makes the proxy's next sync a full
one. It refuses to start (exit 2) when its CIDRs are routed on the host by someone else. Logging, signals and the metrics port
(``--metrics-port``: the process's metrics and the agent's kubelet metrics) come from
``cmd.bootstrap``; the kubelet metrics are also on the authenticated endpoint (``--port``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

import yaml

from controlplane.agent import bootstrap as join
from controlplane.agent.agent import Agent
from controlplane.agent.context import AgentConfig
from controlplane.agent.eviction import DEFAULT_EVICTION_HARD, parse_thresholds, reserved
from controlplane.agent.security import SysctlAllowlist
from controlplane.agent.simulated import SimulatedNodes, parse_gpus, parse_labels, read_node_list
from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.network import addressing
from controlplane.network.node import cleanup as network_cleanup
from controlplane.network.routes import CIDRInUse
from controlplane.pki import servertoken
from controlplane.pki.certs import write_file
from controlplane.runtime.runc import RuncRuntime

log = get_logger(__name__)

COMPONENT = bootstrap.Component("agent", uvloop=False, secure_metrics=True)
CLEANUP = bootstrap.Component("agent-cleanup", metrics_port=False, uvloop=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run a node agent (real runc containers, or --simulated nodes)")
    p.add_argument("action", nargs="?", choices=["run", "cleanup"], default="run")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME") or os.uname().nodename)
    p.add_argument("--host-id", default=None,
                   help="key of the host-level names (cgroup tree, network namespaces); default: the node name")
    p.add_argument("--root", default=".data/agent", help="state directory (images, bundles, logs)")
    p.add_argument("--registry-mirror", action="append", default=[],
                   help="endpoint for docker.io images (repeatable; default: CONTROLPLANE_REGISTRY_MIRROR)")
    p.add_argument("--address", default="127.0.0.1", help="address of the agent's log/exec endpoint")
    p.add_argument("--port", type=int, default=0, help="port of the log/exec endpoint (0: free port)")
    p.add_argument("--token", default=os.environ.get("CONTROLPLANE_TOKEN") or None,
                   help="join token for --server: K10<ca hash>::<id>.<secret> (controlplane token create) or the "
                        "server token K10<ca hash>::server:<password> (DATA_DIR/server/token)")
    p.add_argument("--ca-cert-hash", default=None, help="sha256:<hex> pin of the cluster CA's public key (join)")
    p.add_argument("--tls-cert-file", default=None, help="serving certificate of the log/exec endpoint")
    p.add_argument("--tls-private-key-file", default=None, help="its key")
    p.add_argument("--client-ca-file", default=None,
                   help="CA of client certificates at the endpoint (default: the kubeconfig's CA)")
    p.add_argument("--host-path-root", default=None, help="hostPath volumes must lie under this directory")
    p.add_argument("--pod-cidr", "--pod-subnet", dest="pod_cidr", default=None,
                   help="register the node with this spec.podCIDR (standalone; default: the node IPAM controller's)")
    p.add_argument("--cluster-cidr", default=addressing.DEFAULT_CLUSTER_CIDR, help="the cluster's pod CIDR")
    p.add_argument("--service-cidr", default=addressing.DEFAULT_SERVICE_CIDR, help="the Service cluster IP range")
    p.add_argument("--cluster-dns", default=None, help="nameserver(s) for pods, comma list (default: service CIDR .10)")
    p.add_argument("--cluster-domain", default=addressing.DEFAULT_DOMAIN)
    p.add_argument("--resolv-conf", default="/etc/resolv.conf", help="host resolv.conf for dnsPolicy Default ('' none)")
    p.add_argument("--no-proxy", action="store_true", help="do not run the service proxy with this agent")
    p.add_argument("--proxy-kubeconfig", default=None,
                   help="kubeconfig of the service proxy's identity (system:kube-proxy; default: the node's)")
    p.add_argument("--cpu", default=None, help="cpu capacity (default: the machine's)")
    p.add_argument("--memory", default=None, help="memory capacity (default: the machine's)")
    p.add_argument("--pods", default=None, help="pod capacity (default 110)")
    p.add_argument("--gpus", default=None, help="GPUs per node (simulated nodes)")
    p.add_argument("--labels", default="", help="extra node labels k=v,k2=v2")
    p.add_argument("--lease-duration", type=float, default=40.0)
    p.add_argument("--lease-interval", type=float, default=10.0)
    p.add_argument("--status-interval", type=float, default=10.0)
    p.add_argument("--crashloop-initial", type=float, default=10.0, help="first CrashLoopBackOff delay (s)")
    p.add_argument("--crashloop-cap", type=float, default=300.0, help="CrashLoopBackOff cap (s)")
    p.add_argument("--pod-max-pids", type=int, default=-1,
                   help="the most processes a pod may run (the pod cgroup's pids.max, the kubelet's "
                        "podPidsLimit); -1: unlimited")
    p.add_argument("--image-backoff-initial", type=float, default=10.0)
    p.add_argument("--keep-containers", action="store_true", help="leave containers running on exit")
    p.add_argument("--volume-refresh", type=float, default=30.0, help="seconds between ConfigMap/Secret volume syncs")
    p.add_argument("--shutdown-grace", type=float, default=10.0, help="graceful node shutdown: seconds pods get")
    p.add_argument("--eviction-hard", default=DEFAULT_EVICTION_HARD,
                   help="hard eviction thresholds, e.g. memory.available<100Mi,nodefs.available<10%%")
    p.add_argument("--eviction-pressure-transition-period", type=float, default=300.0,
                   help="seconds a pressure condition stays True after the threshold was last met")
    p.add_argument("--eviction-monitoring-period", type=float, default=10.0, help="seconds between eviction checks")
    p.add_argument("--kube-reserved", default="", help="resources reserved for the agent: cpu=100m,memory=100Mi")
    p.add_argument("--system-reserved", default="", help="resources reserved for the system: cpu=100m,memory=100Mi")
    p.add_argument("--seccomp-default", action="store_true",
                   help="RuntimeDefault seccomp for containers whose pod and container set no seccompProfile")
    p.add_argument("--seccomp-profile-root", default=None,
                   help="directory of Localhost seccomp profiles (default: <root>/seccomp)")
    p.add_argument("--allowed-unsafe-sysctls", default="",
                   help="comma list of unsafe sysctls or patterns (kernel.msg*, net.core.somaxconn) pods may set")
    p.add_argument("--simulated", action="store_true", help="run simulated nodes (controlplane.agent.simulated)")
    p.add_argument("--nodes", type=int, default=1, help="simulated: number of nodes")
    p.add_argument("--prefix", default="sim-node", help="simulated: node name prefix")
    p.add_argument("--node-list", default=None,
                   help="simulated: one node per row of an openb node list CSV (sn,cpu_milli,memory_mib,gpu,model)")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> AgentConfig:
    try:
        parse_thresholds(args.eviction_hard)
        reserved(args.kube_reserved)
        reserved(args.system_reserved)
        unsafe = [x.strip() for x in args.allowed_unsafe_sysctls.split(",") if x.strip()]
        SysctlAllowlist(unsafe)
    except ValueError as e:
        raise SystemExit(f"invalid flag: {e}") from None
    mirrors = list(args.registry_mirror) or [m for m in os.environ.get("CONTROLPLANE_REGISTRY_MIRROR", "").split(",") if m]
    labels = dict(kv.split("=", 1) for kv in args.labels.split(",") if "=" in kv)
    cap = {"cpu": args.cpu, "memory": args.memory, "pods": args.pods}
    return AgentConfig(
        node=args.node_name, host_id=args.host_id or args.node_name, root=Path(args.root), address=args.address, port=args.port,
        tls_cert_file=Path(args.tls_cert_file) if args.tls_cert_file else None,
        tls_key_file=Path(args.tls_private_key_file) if args.tls_private_key_file else None,
        client_ca_file=Path(args.client_ca_file) if args.client_ca_file else None,
        registry_mirrors=mirrors, host_path_root=Path(args.host_path_root).resolve() if args.host_path_root else None,
        capacity={k: str(v) for k, v in cap.items() if v}, labels=labels, pod_cidr=args.pod_cidr,
        cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr,
        cluster_dns=[d for d in args.cluster_dns.split(",") if d] if args.cluster_dns else None,
        cluster_domain=args.cluster_domain, resolv_conf=args.resolv_conf, proxy=not args.no_proxy,
        proxy_kubeconfig=Path(args.proxy_kubeconfig) if args.proxy_kubeconfig else None,
        lease_duration=args.lease_duration, lease_interval=args.lease_interval, status_interval=args.status_interval,
        backoff_initial=args.crashloop_initial, backoff_cap=args.crashloop_cap,
        image_backoff_initial=args.image_backoff_initial, cleanup_on_exit=not args.keep_containers,
        shutdown_grace=args.shutdown_grace, volume_refresh=args.volume_refresh, eviction_hard=args.eviction_hard,
        eviction_pressure_transition=args.eviction_pressure_transition_period,
        eviction_interval=args.eviction_monitoring_period, kube_reserved=args.kube_reserved,
        system_reserved=args.system_reserved, seccomp_default=args.seccomp_default,
        seccomp_profile_root=Path(args.seccomp_profile_root).resolve() if args.seccomp_profile_root else None,
        allowed_unsafe_sysctls=unsafe, pod_pids_limit=args.pod_max_pids if args.pod_max_pids > 0 else None)


def _client(args: argparse.Namespace, user_agent: str, **kw: Any) -> RestClient:
    if args.kubeconfig:
        return RestClient.from_kubeconfig(args.kubeconfig, user_agent=user_agent, **kw)
    return RestClient(args.server or "https://127.0.0.1:6443", user_agent=user_agent, **kw)


async def _node_client(args: argparse.Namespace, cfg: AgentConfig) -> RestClient:
    """The node's identity: ``--kubeconfig``, else join with ``--server`` and a bootstrap
    ``--token`` (TLS bootstrap: a node client certificate through a CSR, kept under the root)."""
    if args.kubeconfig or not (args.server and args.server.startswith("https")):
        return _client(args, f"agent/{cfg.node}")
    # K10<ca hash>::<id>.<secret> (a bootstrap token) or K10<ca hash>::server:<password> (the
    # server token, as k3s agents accept it); a short token needs --ca-cert-hash or trusts on first use
    tok = servertoken.parse(args.token) if args.token else None
    pin = args.ca_cert_hash or (tok.ca_hash if tok else None)
    path = await join.node_kubeconfig(cfg.root.resolve(), args.server, cfg.node, tok.password if tok else None, pin)
    args.kubeconfig = str(path)
    return RestClient.from_kubeconfig(path, user_agent=f"agent/{cfg.node}")


async def _tls(args: argparse.Namespace, cfg: AgentConfig, client: RestClient) -> None:
    """The endpoint's serving certificate (given, or asked for with a CSR) and client CA (given,
    or the kubeconfig's); the node's TLS context for https registry mirrors."""
    ssl_ctx = client._ssl if isinstance(client._ssl, ssl.SSLContext) else None
    cfg.registry_ssl = ssl_ctx
    if ssl_ctx is None:
        return  # a plain-http apiserver (development): plain-http endpoint
    if cfg.client_ca_file is None and args.kubeconfig:
        ca = kubeconfig_ca(Path(args.kubeconfig))
        if ca:
            cfg.client_ca_file = cfg.root.resolve() / "pki" / "ca.crt"
            write_file(cfg.client_ca_file, ca, 0o644)
    if cfg.tls_cert_file is None:
        cfg.tls_cert_file, cfg.tls_key_file = await join.serving_certificate(
            client, cfg.root.resolve(), cfg.node, [cfg.address])


async def _run(ctx: bootstrap.Context) -> int:
    cfg = build_config(ctx.args)
    client = await _node_client(ctx.args, cfg)
    try:
        await _tls(ctx.args, cfg, client)
        agent = Agent(cfg, client)
        ctx.add_metrics(agent.metrics.registry)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP,
                                       lambda: agent.proxier.request_full_sync() if agent.proxier else None)
        await agent.run(ctx.stop)
    except CIDRInUse as e:
        log.error("refusing to start", error=str(e))
        sys.stderr.write(f"controlplane agent: {e}\n")
        return 2
    finally:
        await client.close()
    return 0


def kubeconfig_ca(path: Path) -> bytes | None:
    cfg = yaml.safe_load(path.read_text()) or {}
    for c in cfg.get("clusters") or []:
        data = (c.get("cluster") or {}).get("certificate-authority-data")
        if data:
            return base64.b64decode(data)
        if (c.get("cluster") or {}).get("certificate-authority"):
            return Path(c["cluster"]["certificate-authority"]).read_bytes()
    return None


def _sim_ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    """HTTPS for the simulated nodes' stats server when a serving certificate is given; client
    certificates verified against ``--client-ca-file`` (else the kubeconfig's CA)."""
    if not (args.tls_cert_file and args.tls_private_key_file):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    ca = Path(args.client_ca_file).read_bytes() if args.client_ca_file else ((kubeconfig_ca(Path(args.kubeconfig)) if args.kubeconfig else None) or b"")
    if ca:
        ctx.load_verify_locations(cadata=ca.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def _run_simulated(ctx: bootstrap.Context) -> int:
    args = ctx.args
    if not (args.kubeconfig or args.server):
        raise SystemExit("--kubeconfig or --server is required")
    # the lean keep-alive client: thousands of nodes' lease renewals and pod status writes
    # are nearly all this process does (aiohttp's per-request CPU was most of it)
    client = _client(args, "simulated-agent", lite_http=True)
    gpus, model = parse_gpus(args.gpus)
    sim = SimulatedNodes(client, count=args.nodes, prefix=args.prefix, cpu=args.cpu or "4",
                         memory=args.memory or "32Gi", pods=args.pods or "110", gpus=gpus, model=model,
                         labels=parse_labels(args.labels), lease_duration=args.lease_duration,
                         lease_interval=args.lease_interval, stats_address=args.address, stats_port=args.port,
                         stats_ssl=_sim_ssl(args),
                         node_specs=read_node_list(args.node_list) if args.node_list else None)
    try:
        await sim.start(ctx.stop)
    finally:
        await client.close()
    return 0


async def _cleanup(ctx: bootstrap.Context) -> int:
    root = Path(ctx.args.root)
    await RuncRuntime(root.resolve() / "runtime", ctx.args.host_id or ctx.args.node_name).cleanup_all()
    await network_cleanup(root, ctx.args.node_name)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.simulated:
        return bootstrap.run(COMPONENT, args, _run_simulated)
    if args.action == "cleanup":
        return bootstrap.run(CLEANUP, args, _cleanup)
    return bootstrap.run(COMPONENT, args, _run)
