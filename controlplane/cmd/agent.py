"""``controlplane agent --kubeconfig F --node-name N --root DIR [--registry-mirror URL] …``:
one node agent running real runc containers (``controlplane.agent.agent.Agent``).

``--simulated`` hands the parsed arguments to ``controlplane.agent.simulated.main(args)``
(process-less nodes for scheduling experiments: ``--nodes N --prefix P --cpu --memory --pods
--gpus``). ``controlplane agent cleanup --root DIR --node-name N`` removes what a killed agent
left on the host (containers, mounts, netns, cgroups).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from controlplane.log import get_logger

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run a node agent (real runc containers, or --simulated nodes)")
    p.add_argument("action", nargs="?", choices=["run", "cleanup"], default="run")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME") or os.uname().nodename)
    p.add_argument("--root", default=".data/agent", help="state directory (images, bundles, logs)")
    p.add_argument("--registry-mirror", action="append", default=[],
                   help="endpoint for docker.io images (repeatable; default: CONTROLPLANE_REGISTRY_MIRROR)")
    p.add_argument("--address", default="127.0.0.1", help="address of the agent's log/exec endpoint")
    p.add_argument("--port", type=int, default=0, help="port of the log/exec endpoint (0: free port)")
    p.add_argument("--token", default=None, help="bearer token for the log/exec endpoint")
    p.add_argument("--token-file", default=None, help="read (or create) the endpoint token here")
    p.add_argument("--host-path-root", default=None, help="hostPath volumes must lie under this directory")
    p.add_argument("--pod-cidr", "--pod-subnet", dest="pod_cidr", default=None,
                   help="register the node with this spec.podCIDR (standalone; default: the node IPAM controller's)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="the cluster's pod CIDR (routes, safety)")
    p.add_argument("--service-cidr", default="10.43.0.0/16", help="the Service cluster IP range")
    p.add_argument("--cluster-dns", default=None, help="nameserver(s) for pods, comma list (default: service CIDR .10)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", default="/etc/resolv.conf", help="host resolv.conf for dnsPolicy Default ('' none)")
    p.add_argument("--no-proxy", action="store_true", help="do not run the service proxy with this agent")
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
    p.add_argument("--image-backoff-initial", type=float, default=10.0)
    p.add_argument("--keep-containers", action="store_true", help="leave containers running on exit")
    p.add_argument("--volume-refresh", type=float, default=30.0, help="seconds between ConfigMap/Secret volume syncs")
    p.add_argument("--shutdown-grace", type=float, default=10.0, help="graceful node shutdown: seconds pods get")
    p.add_argument("--simulated", action="store_true", help="run simulated nodes (controlplane.agent.simulated)")
    p.add_argument("--nodes", type=int, default=1, help="simulated: number of nodes")
    p.add_argument("--prefix", default="sim-node", help="simulated: node name prefix")
    p.set_defaults(func=run)


def _token(args: argparse.Namespace) -> str:
    import secrets

    if args.token:
        return args.token
    if os.environ.get("CONTROLPLANE_AGENT_TOKEN"):
        return os.environ["CONTROLPLANE_AGENT_TOKEN"]
    if args.token_file:
        f = Path(args.token_file)
        if f.exists():
            return f.read_text().strip()
        f.parent.mkdir(parents=True, exist_ok=True)
        tok = secrets.token_hex(16)
        f.write_text(tok + "\n")
        os.chmod(f, 0o600)
        return tok
    return secrets.token_hex(16)


def build_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from controlplane.agent.agent import AgentConfig

    mirrors = list(args.registry_mirror) or [m for m in os.environ.get("CONTROLPLANE_REGISTRY_MIRROR", "").split(",") if m]
    labels = dict(kv.split("=", 1) for kv in args.labels.split(",") if "=" in kv)
    cap = {"cpu": args.cpu, "memory": args.memory, "pods": args.pods}
    return AgentConfig(
        node=args.node_name, root=Path(args.root), address=args.address, port=args.port, token=_token(args),
        registry_mirrors=mirrors, host_path_root=Path(args.host_path_root).resolve() if args.host_path_root else None,
        capacity={k: str(v) for k, v in cap.items() if v}, labels=labels, pod_cidr=args.pod_cidr,
        cluster_cidr=args.cluster_cidr, service_cidr=args.service_cidr,
        cluster_dns=[d for d in args.cluster_dns.split(",") if d] if args.cluster_dns else None,
        cluster_domain=args.cluster_domain, resolv_conf=args.resolv_conf, proxy=not args.no_proxy,
        lease_duration=args.lease_duration, lease_interval=args.lease_interval, status_interval=args.status_interval,
        backoff_initial=args.crashloop_initial, backoff_cap=args.crashloop_cap,
        image_backoff_initial=args.image_backoff_initial, cleanup_on_exit=not args.keep_containers,
        shutdown_grace=args.shutdown_grace, volume_refresh=args.volume_refresh)


async def _run(args: argparse.Namespace) -> int:
    from controlplane.agent.agent import Agent
    from controlplane.client.rest import RestClient

    cfg = build_config(args)
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent=f"agent/{cfg.node}") if args.kubeconfig \
        else RestClient(args.server or "http://127.0.0.1:6443", user_agent=f"agent/{cfg.node}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from controlplane.network.routes import CIDRInUse

    agent = Agent(cfg, client)
    # SIGHUP: the service proxy replaces its whole table on its next sync
    loop.add_signal_handler(signal.SIGHUP, lambda: agent.proxier.request_full_sync() if agent.proxier else None)
    try:
        await agent.run(stop)
    except CIDRInUse as e:
        log.error("refusing to start", error=str(e))
        sys.stderr.write(f"controlplane agent: {e}\n")
        return 2
    finally:
        await client.close()
    return 0


async def _cleanup(args: argparse.Namespace) -> int:
    from controlplane.network import addressing
    from controlplane.network.hostcmd import delete_table
    from controlplane.network.node import cleanup as network_cleanup
    from controlplane.runtime.runc import RuncRuntime

    await RuncRuntime(Path(args.root).resolve() / "runtime", args.node_name).cleanup_all()
    await network_cleanup(Path(args.root), args.node_name)
    await delete_table("ip", addressing.proxy_table_name(addressing.instance_id(Path(args.root), args.node_name)))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.simulated:
        from controlplane.agent import simulated

        return int(simulated.main(args) or 0)
    if args.action == "cleanup":
        return asyncio.run(_cleanup(args))
    return asyncio.run(_run(args))
