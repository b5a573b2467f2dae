"""``controlplane dns --kubeconfig F [--listen 127.0.0.1:0] [--upstream HOST:PORT …]``: the
cluster DNS (``controlplane.dns.component.ClusterDNS``) as its own process. It answers cluster
names from its informers, forwards the rest to the upstreams (default: the host's
``/etc/resolv.conf`` nameservers) and registers as ``kube-system/kube-dns`` (``--no-register``
to skip). ``--port-file`` receives the bound port; one JSON line with ``"status": "ready"`` is
printed when serving. Logging, signals and the metrics port come from ``cmd.bootstrap``.
Started by ``controlplane up``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.dns.component import ClusterDNS, DNSConfig, host_upstreams
from controlplane.network.addressing import DEFAULT_CLUSTER_CIDR, DEFAULT_DOMAIN, DEFAULT_SERVICE_CIDR, ClusterNetworks

COMPONENT = bootstrap.Component("dns")


def _hostport(s: str, default_port: int) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep:
        return s or "127.0.0.1", default_port
    return host or "127.0.0.1", int(port or default_port)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dns", help="run the cluster DNS server")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--listen", default="127.0.0.1:0", help="address:port for UDP and TCP (0: a free port)")
    p.add_argument("--upstream", action="append", default=[], help="upstream resolver host[:port] (repeatable)")
    p.add_argument("--upstream-timeout", type=float, default=2.0)
    p.add_argument("--domain", default=DEFAULT_DOMAIN)
    p.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR)
    p.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    p.add_argument("--no-register", action="store_true", help="do not create kube-system/kube-dns")
    p.add_argument("--port-file", default=None, help="write the bound port here")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    host, port = _hostport(args.listen, 0)
    ups = [_hostport(u, 53) for u in args.upstream] or host_upstreams()
    cfg = DNSConfig(nets=ClusterNetworks.parse(args.cluster_cidr, args.service_cidr), domain=args.domain,
                    host=host, port=port, upstreams=ups, timeout=args.upstream_timeout, register=not args.no_register)
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="cluster-dns") if args.kubeconfig \
        else RestClient(args.server or "http://127.0.0.1:6443", user_agent="cluster-dns")

    def ready(bound: int) -> None:
        if args.port_file:
            tmp = Path(args.port_file + ".tmp")
            tmp.write_text(str(bound))
            tmp.replace(args.port_file)
        sys.stdout.write(json.dumps({"status": "ready", "port": bound}) + "\n")
        sys.stdout.flush()

    try:
        await ClusterDNS(client, cfg).run(ctx.stop, ready)
    finally:
        await client.close()
    return 0
