"""``controlplane proxy --kubeconfig F --node-name N --root DIR``: the service proxy of one node
as its own process (``controlplane agent`` runs the same ``Proxier`` in-process unless
``--no-proxy``). ``--root`` is the node agent's root: the node's namespace and table names
derive from it. On start it installs its own unreachable safety routes, waits for the node's
namespace and pod CIDR, then programs; SIGHUP makes the next sync a full one; on SIGTERM it
removes its tables and routes. Logging, signals and the metrics port (kube-proxy's metrics)
come from ``cmd.bootstrap``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from controlplane.client.resources import NODES
from controlplane.client.rest import ApiStatusError, RestClient, kubeconfig_ca_pem
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.network import addressing as A
from controlplane.network import routes
from controlplane.network.hostcmd import netns_exists
from controlplane.proxy.proxier import Proxier, ProxyConfig

log = get_logger(__name__)
COMPONENT = bootstrap.Component("proxy")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proxy", help="run the service proxy (nftables) of one node")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--node-name", required=True)
    p.add_argument("--root", default=".data/agent", help="the node agent's --root (names derive from it)")
    p.add_argument("--cluster-cidr", default=A.DEFAULT_CLUSTER_CIDR)
    p.add_argument("--service-cidr", default=A.DEFAULT_SERVICE_CIDR)
    p.add_argument("--min-sync-interval", type=float, default=0.02)
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


async def _wait_for_node(client: RestClient, node: str, iid: str, stop: asyncio.Event) -> str | None:
    while not stop.is_set():
        try:
            cidr = ((await client.get(NODES, node)).get("spec") or {}).get("podCIDR")
        except ApiStatusError:
            cidr = None
        if cidr and netns_exists(A.netns_name(iid)):
            return cidr
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    return None


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    nets = A.ClusterNetworks.parse(args.cluster_cidr, args.service_cidr)
    iid = A.instance_id(Path(args.root), args.node_name)
    ua = f"kube-proxy/{args.node_name}"
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent=ua) if args.kubeconfig \
        else RestClient(args.server or "http://127.0.0.1:6443", user_agent=ua)
    ca = kubeconfig_ca_pem(args.kubeconfig) if args.kubeconfig else None
    tag, member = nets.cluster_tag(routes.cluster_id(ca, client.base_url)), A.member_id(iid, 1)
    try:
        await routes.check_free(nets, tag)
    except routes.CIDRInUse as e:
        sys.stderr.write(f"controlplane proxy: {e}\n")
        await client.close()
        return 2
    await routes.add_unreachable(nets, tag, member)
    proxier = None
    try:
        cidr = await _wait_for_node(client, args.node_name, iid, ctx.stop)
        if cidr is None:
            return 0
        proxier = Proxier(client, ProxyConfig(node=args.node_name, nets=nets, iid=iid, pod_cidr=cidr,
                                              min_sync_interval=args.min_sync_interval))
        ctx.add_metrics(proxier.metrics.registry)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, proxier.request_full_sync)
        log.info("proxy starting", node=args.node_name, table=proxier.cfg.table)
        await proxier.run(ctx.stop)
    finally:
        if proxier is not None:
            await proxier.cleanup()
        await routes.remove_unreachable(nets, tag, member)
        await client.close()
    return 0
