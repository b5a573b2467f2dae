"""``controlplane proxy --kubeconfig F --node-name N --root DIR``: the service proxy of one node
as its own process (``controlplane agent`` runs the same ``Proxier`` in-process unless
``--no-proxy``). ``--root`` is the node agent's root: the node's namespace and table names
derive from it. On start it installs its own unreachable safety routes, waits for the node's
namespace and pod CIDR, then programs; SIGHUP makes the next sync a full one; on SIGTERM it
removes its tables and routes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proxy", help="run the service proxy (nftables) of one node")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--node-name", required=True)
    p.add_argument("--root", default=".data/agent", help="the node agent's --root (names derive from it)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--service-cidr", default="10.43.0.0/16")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--min-sync-interval", type=float, default=0.02)
    p.set_defaults(func=lambda a: asyncio.run(_main(a)))


async def _main(args: argparse.Namespace) -> int:
    from controlplane.client.resources import NODES
    from controlplane.client.rest import ApiStatusError, RestClient
    from controlplane.log import get_logger
    from controlplane.network import addressing as A
    from controlplane.network import routes
    from controlplane.network.hostcmd import netns_exists
    from controlplane.proxy.proxier import Proxier, ProxyConfig

    log = get_logger("controlplane.cmd.proxy")
    nets = A.ClusterNetworks.parse(args.cluster_cidr, args.service_cidr)
    iid = A.instance_id(Path(args.root), args.node_name)
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent=f"kube-proxy/{args.node_name}") \
        if args.kubeconfig else RestClient(args.server or "http://127.0.0.1:6443",
                                           user_agent=f"kube-proxy/{args.node_name}")
    tag, member = nets.cluster_tag(client.base_url), A.member_id(iid, 1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await routes.check_free(nets, tag)
    except routes.CIDRInUse as e:
        sys.stderr.write(f"controlplane proxy: {e}\n")
        await client.close()
        return 2
    await routes.add_unreachable(nets, tag, member)
    proxier = None
    try:
        cidr = None
        while not stop.is_set():
            try:
                cidr = ((await client.get(NODES, args.node_name)).get("spec") or {}).get("podCIDR")
            except ApiStatusError:
                cidr = None
            if cidr and netns_exists(A.netns_name(iid)):
                break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        if stop.is_set() or not cidr:
            return 0
        proxier = Proxier(client, ProxyConfig(node=args.node_name, nets=nets, iid=iid, pod_cidr=cidr,
                                              min_sync_interval=args.min_sync_interval))
        if args.metrics_port:
            from prometheus_client import start_http_server
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=proxier.metrics.registry)
        loop.add_signal_handler(signal.SIGHUP, proxier.request_full_sync)
        log.info("proxy starting", node=args.node_name, table=proxier.cfg.table)
        await proxier.run(stop)
    finally:
        if proxier is not None:
            await proxier.cleanup()
        await routes.remove_unreachable(nets, tag, member)
        await client.close()
    return 0
