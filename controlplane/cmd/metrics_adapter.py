"""``controlplane metrics-adapter``: the custom and external metrics component
(``controlplane.metrics.adapter``), our prometheus-adapter: serves ``custom.metrics.k8s.io``
and ``external.metrics.k8s.io`` over HTTPS on ``--bind-address``:``--secure-port`` for the
apiserver's aggregation layer, answering from Prometheus (``--prometheus-url``) with the rules
of ``--config`` (prometheus-adapter's format; ``manifests/prometheus-adapter/config.yaml`` by
default). ``controlplane up --prometheus`` runs it as ``system:prometheus-adapter`` and
registers its APIServices.

    controlplane metrics-adapter --kubeconfig F --prometheus-url URL [--config F]
        [--metrics-relist-interval 1m] [--metrics-max-age DURATION] [--secure-port 0]
        [--cert-dir DIR | --tls-cert-file F --tls-private-key-file F]
        [--requestheader-client-ca-file F] [--requestheader-allowed-names front-proxy-client]
        [--client-ca-file F] [--delegated-auth=false] [--register-apiservice]

Requests are authenticated and authorized through the apiserver as the metrics-server's are
(``controlplane.client.delegatedauth``). A configuration that cannot be used (a bad regex, a
template action other than ``<<.Series>>``, ``<<.LabelMatchers>>``, ``<<.GroupBy>>``) stops
the start with its location (exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from pathlib import Path

import yaml

from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_duration
from controlplane.metrics import serving
from controlplane.metrics.adapter import rules as rl
from controlplane.metrics.adapter.api import CUSTOM, CUSTOM_VERSIONS, EXTERNAL, AdapterApi
from controlplane.metrics.adapter.prom import Prometheus
from controlplane.metrics.register import apply_objects

log = get_logger(__name__)
COMPONENT = bootstrap.Component("metrics-adapter", secure_metrics=True)
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "manifests" / "prometheus-adapter" / "config.yaml"
NAMESPACE, NAME = "kube-system", "metrics-adapter"
SERVICE_DNS = f"{NAME}.{NAMESPACE}.svc"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics-adapter", help="serve custom.metrics.k8s.io and external.metrics.k8s.io from Prometheus")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver")
    p.add_argument("--server", help="apiserver URL (instead of --kubeconfig)")
    p.add_argument("--prometheus-url", required=True, help="Prometheus' base URL (http://127.0.0.1:9090)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="rules (prometheus-adapter's config.yaml format)")
    p.add_argument("--metrics-relist-interval", type=_duration, default=60.0,
                   help="how often the series are listed again (default 1m)")
    p.add_argument("--metrics-max-age", type=_duration, default=None,
                   help="series with samples this recent are listed (default: the relist interval, at least 1m)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--secure-port", type=int, default=0, help="HTTPS port (0: a free port)")
    p.add_argument("--cert-dir", default=None, help="where a self-signed certificate is written when none is given")
    p.add_argument("--tls-cert-file", default=None)
    p.add_argument("--tls-private-key-file", default=None)
    p.add_argument("--requestheader-client-ca-file", default=None,
                   help="CA of the front proxy's client certificate (X-Remote-User headers are believed only with it)")
    p.add_argument("--requestheader-allowed-names", default="",
                   help="CommonNames the front proxy's certificate may have (empty: any of that CA)")
    p.add_argument("--client-ca-file", default=None, help="CA of client certificates (CN = user, O = groups)")
    p.add_argument("--authorization-always-allow-paths", default="/healthz,/livez,/readyz")
    p.add_argument("--delegated-auth", type=bootstrap.parse_bool, nargs="?", const=True, default=True,
                   help="authenticate and authorize requests through the apiserver (default true)")
    p.add_argument("--register-apiservice", action="store_true",
                   help="create the Service, Endpoints and the APIServices of both groups pointing here")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


def load_rules(path: str) -> tuple[list[rl.Rule], list[rl.Rule]]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise rl.ConfigError(f"{path}: {e}") from None
    try:
        return rl.load_config(doc)
    except rl.ConfigError as e:
        raise rl.ConfigError(f"{path}: {e}") from None


def apiservice_objects(address: str, port: int, ca_cert: Path | None) -> list[tuple[R.Resource, dict]]:
    """The Service, its Endpoints (loopback: not mirrored) and one APIService per group version."""
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}},
           "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}
    eps = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": NAME, "namespace": NAMESPACE,
                        "labels": {"k8s-app": NAME, "endpointslice.kubernetes.io/skip-mirror": "true"}},
           "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    out: list[tuple[R.Resource, dict]] = [(R.SERVICES, svc), (R.ENDPOINTS, eps)]
    for group, version, prio in [*((CUSTOM, v, 100 - i) for i, v in enumerate(CUSTOM_VERSIONS)), (EXTERNAL, "v1beta1", 100)]:
        spec: dict = {"service": {"name": NAME, "namespace": NAMESPACE, "port": 443}, "group": group,
                      "version": version, "groupPriorityMinimum": 100, "versionPriority": prio}
        if ca_cert is not None:
            spec["caBundle"] = base64.b64encode(ca_cert.read_bytes()).decode()
        else:
            spec["insecureSkipTLSVerify"] = True
        out.append((R.APISERVICES, {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                                    "metadata": {"name": f"{version}.{group}", "labels": {"k8s-app": NAME}},
                                    "spec": spec}))
    return out


async def register_apiservices(client: RestClient, address: str, port: int, ca_cert: Path | None) -> None:
    await apply_objects(client, apiservice_objects(address, port, ca_cert))




async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    try:
        custom_rules, external_rules = load_rules(args.config)
    except rl.ConfigError as e:
        log.error("unusable configuration", error=str(e))
        return 2
    client = serving.client(args, "metrics-adapter")
    cert, key = await serving.certificate(args, "metrics-adapter", SERVICE_DNS)
    auth = serving.request_auth(client, args)
    prom = Prometheus(args.prometheus_url)
    api = AdapterApi(client, prom, custom_rules, external_rules, relist_interval=args.metrics_relist_interval,
                     series_window=args.metrics_max_age, auth=auth)
    runner, port = await serving.serve(api.app, args, cert, key, auth, "metrics-adapter")
    log.info("serving custom and external metrics", address=args.bind_address, port=port,
             prometheus=args.prometheus_url, rules=len(custom_rules), external_rules=len(external_rules))
    if args.register_apiservice:
        own_cert = None if (args.tls_cert_file and args.tls_private_key_file) else cert
        await register_apiservices(client, args.bind_address, port, own_cert)
        log.info("registered the custom and external metrics APIServices")
    task = asyncio.create_task(api.run(ctx.stop))
    try:
        await ctx.stop.wait()
    finally:
        ctx.stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
        await prom.close()
        await client.close()
    return 0
