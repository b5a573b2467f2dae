"""``controlplane ingress-controller``: the ingress controller (``controlplane/ingress``) as its own
process; ``controlplane up`` runs it (as ``system:ingress-controller``) and prints its URLs.

    controlplane ingress-controller [--kubeconfig K] [--host 127.0.0.1] [--http-port 80]
        [--https-port 443] [--ingress-class controlplane] [--no-default-class] [--data-dir DIR]

It serves the Ingresses of its class (``--ingress-class``, created with controller
``controlplane.io/ingress-controller`` and marked the default class unless another class is).
A busy or privileged port falls back to a free one (``--no-port-fallback`` fails instead); the
URLs it serves on are written to ``DATA_DIR/ingress-address`` (``http://…`` and ``https://…``,
one per line); the certificates in use are kept in ``DATA_DIR/ingress-tls`` (0700) while it runs.
"""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

from controlplane.client.rest import RestClient
from controlplane.cmd import bootstrap
from controlplane.ingress.server import IngressController
from controlplane.log import get_logger

log = get_logger(__name__)
COMPONENT = bootstrap.Component("ingress-controller")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingress-controller", help="serve the cluster's Ingresses on the host's loopback")
    p.add_argument("--kubeconfig", type=Path, default=None, help="default DATA_DIR/kubeconfig")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=80, help="0: a free port")
    p.add_argument("--https-port", type=int, default=443, help="0: a free port")
    p.add_argument("--no-port-fallback", action="store_true", help="fail instead of using free ports when busy")
    p.add_argument("--ingress-class", default="controlplane", help="the IngressClass served")
    p.add_argument("--no-default-class", action="store_true", help="do not mark the class as the default one")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    data_dir = (args.data_dir or Path(".data")).resolve()
    client = RestClient.from_kubeconfig(str(args.kubeconfig or data_dir / "kubeconfig"),
                                        user_agent="ingress-controller")
    address = data_dir / "ingress-address"
    serving = {"ok": False}
    ctx.health.add("serving", lambda: None if serving["ok"] else "not listening yet", ("readyz",))

    def ready(http: int, https: int) -> None:
        serving["ok"] = True
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / ".ingress-address.tmp"
        tmp.write_text(f"http://{args.host}:{http}\nhttps://{args.host}:{https}\n")
        tmp.replace(address)

    try:
        ports = (args.http_port, args.https_port)
        for attempt in range(2):
            ctl = IngressController(client, class_name=args.ingress_class, make_default=not args.no_default_class,
                                    host=args.host, status_address=args.host, work_dir=data_dir / "ingress-tls")
            try:
                await ctl.run(ctx.stop, *ports, ready=ready)
                break
            except OSError as e:
                if attempt or e.errno not in (errno.EADDRINUSE, errno.EACCES) or args.no_port_fallback:
                    raise
                log.warning("ingress ports busy or privileged; using free ones", http=ports[0], https=ports[1])
                ports = (0, 0)
    finally:
        address.unlink(missing_ok=True)
        await client.close()
    return 0
