"""``controlplane metrics-server``: the resource metrics component (``controlplane.metrics``),
our metrics-server: scrapes every node's ``/metrics/resource`` each ``--metric-resolution``
and serves ``metrics.k8s.io/v1beta1`` over HTTPS on ``--bind-address``:``--secure-port``
(``0``: a free port, written to ``DATA_DIR/metrics-server.port``) for the apiserver's
aggregation layer; cluster-state series (kube-state-metrics names) and its own metrics are on
the bootstrap metrics port, and on the secure port's ``/metrics`` too (as metrics-server serves
them). Given ``--tls-cert-file``, the bootstrap metrics port is HTTPS with the same certificate
and the same delegated authentication (``cmd.statusserver``).

    controlplane metrics-server --kubeconfig F [--metric-resolution 15s] [--secure-port 0]
        [--cert-dir DIR | --tls-cert-file F --tls-private-key-file F]
        [--kubelet-client-certificate F --kubelet-client-key F] [--kubelet-scheme http|https]
        [--kubelet-certificate-authority F | --kubelet-insecure-tls]
        [--kubelet-preferred-address-types InternalIP] [--kubelet-allowed-cidrs 127.0.0.0/8,::1/128]
        [--requestheader-client-ca-file F] [--requestheader-allowed-names front-proxy-client]
        [--client-ca-file F] [--delegated-auth=false]

Requests to the Metrics API are authenticated and authorized through the apiserver as
metrics-server's are (``controlplane.client.delegatedauth``): the aggregation layer's front-proxy
certificate with ``X-Remote-User``, a cluster client certificate or a bearer token, then a
SubjectAccessReview. ``--delegated-auth=false`` lets everyone read (only for an apiserver
running without authentication, as the benchmarks' plain ones do).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import ssl

from prometheus_client import CollectorRegistry

from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_duration
from controlplane.metrics import register as apiservice_registration
from controlplane.metrics import serving
from controlplane.metrics.api import MetricsApi
from controlplane.metrics.cache import node_informer, pod_informer
from controlplane.metrics.scraper import ScrapeConfig, Scraper
from controlplane.metrics.state import StateCollector
from controlplane.metrics.storage import Storage

log = get_logger(__name__)
COMPONENT = bootstrap.Component("metrics-server", secure_metrics=True)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics-server", help="run the resource metrics component (metrics.k8s.io)")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--metric-resolution", type=_duration, default=15.0, help="scrape period (default 15s)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=0, help="HTTPS port of the Metrics API (0: a free port)")
    p.add_argument("--cert-dir", default=None, help="where a self-signed certificate is written when none is given")
    p.add_argument("--tls-cert-file", default=None)
    p.add_argument("--tls-private-key-file", default=None)
    p.add_argument("--kubelet-client-certificate", default=None, help="client certificate for the agents")
    p.add_argument("--kubelet-client-key", default=None)
    p.add_argument("--kubelet-scheme", choices=["http", "https"], default="https")
    p.add_argument("--kubelet-insecure-tls", action="store_true", help="do not verify the agents' certificates")
    p.add_argument("--kubelet-certificate-authority", default=None)
    p.add_argument("--kubelet-preferred-address-types", default="InternalIP")
    p.add_argument("--kubelet-allowed-cidrs", default="127.0.0.0/8,::1/128",
                   help="only nodes with an address in these networks are scraped")
    p.add_argument("--scrape-concurrency", type=int, default=64)
    p.add_argument("--kube-state-metrics", type=bootstrap.parse_bool, nargs="?", const=True, default=True,
                   help="also export kube_node_*/kube_pod_* series on the metrics port (default true)")
    p.add_argument("--requestheader-client-ca-file", default=None,
                   help="CA of the front proxy's client certificate (X-Remote-User headers are believed only with it)")
    p.add_argument("--requestheader-allowed-names", default="",
                   help="CommonNames the front proxy's certificate may have (empty: any of that CA)")
    p.add_argument("--client-ca-file", default=None, help="CA of client certificates (CN = user, O = groups)")
    p.add_argument("--authorization-always-allow-paths", default="/healthz,/livez,/readyz")
    p.add_argument("--delegated-auth", type=bootstrap.parse_bool, nargs="?", const=True, default=True,
                   help="authenticate and authorize requests through the apiserver (default true)")
    p.add_argument("--register-apiservice", action="store_true",
                   help="create the Service, Endpoints and APIService v1beta1.metrics.k8s.io pointing here")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


def scrape_config(args: argparse.Namespace) -> ScrapeConfig:
    ctx: ssl.SSLContext | bool | None = None
    if args.kubelet_scheme == "https":
        if args.kubelet_insecure_tls:
            ctx = False
        else:
            ctx = ssl.create_default_context(cafile=args.kubelet_certificate_authority)
        if args.kubelet_client_certificate and args.kubelet_client_key:
            if ctx is False:
                ctx = ssl.create_default_context()
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.load_cert_chain(args.kubelet_client_certificate, args.kubelet_client_key)
    return ScrapeConfig(scheme=args.kubelet_scheme, ssl_ctx=ctx,
                        address_types=tuple(t.strip() for t in args.kubelet_preferred_address_types.split(",") if t.strip()),
                        allowed=tuple(ipaddress.ip_network(c.strip()) for c in args.kubelet_allowed_cidrs.split(",") if c.strip()),
                        concurrency=args.scrape_concurrency)




# CPython's default is (700, 10, 10); the apiserver and the scheduler use the same
GC_THRESHOLDS = (20000, 20, 20)


def _tune_gc() -> None:
    """This process of its own only: the synced caches (150,000 slim pods: millions of objects)
    frozen out of the cyclic collector, and fewer young collections, which every scrape cycle
    (a point per container) and rendering would otherwise trigger by the hundred, each full one
    rescanning the caches (measured: a third of the time of storing and rendering a cycle)."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()  # still freed by reference counting, never rescanned
    log.info("garbage collector tuned", frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    client = serving.client(args, "metrics-server")
    cert, key = await serving.certificate(args, "metrics-server", apiservice_registration.SERVICE_DNS)
    storage = Storage(args.metric_resolution)
    nodes, pods = node_informer(client), pod_informer(client)
    if args.kube_state_metrics:
        state = CollectorRegistry(auto_describe=False)
        state.register(StateCollector(nodes, pods))
        ctx.add_metrics(state)
    auth = serving.request_auth(client, args)
    api = MetricsApi(storage, nodes, pods, auth, ctx.served_metrics)
    scraper = Scraper(nodes.list, storage, scrape_config(args), args.metric_resolution,
                      render=api.render, publish=api.publish)
    runner, port = await serving.serve(api.app, args, cert, key, auth, "metrics-server")
    log.info("serving metrics.k8s.io", address=args.bind_address, port=port, resolution=args.metric_resolution)
    if args.register_apiservice:
        own_cert = None if (args.tls_cert_file and args.tls_private_key_file) else cert
        await apiservice_registration.register(client, args.bind_address, port, own_cert)
        log.info("registered APIService v1beta1.metrics.k8s.io")
    tasks = [asyncio.create_task(nodes.start(ctx.stop)), asyncio.create_task(pods.start(ctx.stop))]
    try:
        await asyncio.gather(nodes.wait_for_sync(), pods.wait_for_sync())
        _tune_gc()
        tasks.append(asyncio.create_task(scraper.run(ctx.stop)))
        await ctx.stop.wait()
    finally:
        ctx.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await client.close()
    return 0
