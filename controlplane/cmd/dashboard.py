"""``controlplane dashboard``: the web dashboard (``controlplane/dashboard``) as its own process;
``controlplane up`` runs it too and prints its URL with the ``ready`` line.

    controlplane dashboard [--kubeconfig K | --server URL [--certificate-authority CA]]
        [--host 127.0.0.1] [--port 8080] [--data-dir DIR] [--static-dir web/dist]
        [--tls-cert-file F --tls-private-key-file F] [--session-idle-timeout S] [--metrics-port P]

Only the cluster entry of the kubeconfig is read (server and CA): the dashboard holds no
credentials of its own and makes every request as the signed-in user. A busy ``--port`` falls
back to a free one (``--no-port-fallback`` fails instead); the URL it serves on is written to
``DATA_DIR/dashboard-address``.
"""

from __future__ import annotations

import argparse
import errno
import ssl
from pathlib import Path

from controlplane.cmd import bootstrap
from controlplane.dashboard.cluster import ClusterInfo
from controlplane.dashboard.server import DEFAULT_STATIC, Config, Dashboard
from controlplane.log import get_logger

log = get_logger(__name__)
COMPONENT = bootstrap.Component("dashboard")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the web dashboard (signs users in to the Kubernetes API)")
    p.add_argument("--kubeconfig", type=Path, default=None,
                   help="read the cluster (server, CA) from it (default DATA_DIR/kubeconfig); its user is not used")
    p.add_argument("--server", default="", help="the apiserver URL (instead of --kubeconfig)")
    p.add_argument("--certificate-authority", type=Path, default=None, help="CA file verifying --server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0: a free port")
    p.add_argument("--no-port-fallback", action="store_true", help="fail instead of using a free port when busy")
    p.add_argument("--static-dir", type=Path, default=DEFAULT_STATIC, help="the built front end (web/dist)")
    p.add_argument("--tls-cert-file", type=Path, default=None)
    p.add_argument("--tls-private-key-file", type=Path, default=None)
    p.add_argument("--session-idle-timeout", type=float, default=1800.0, help="seconds without a request")
    bootstrap.add_flags(p, COMPONENT)
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    data_dir = (args.data_dir or Path(".data")).resolve()
    if args.server:
        cluster = ClusterInfo.from_flags(args.server, args.certificate_authority)
    else:
        cluster = ClusterInfo.from_kubeconfig(args.kubeconfig or data_dir / "kubeconfig")
    tls = None
    if args.tls_cert_file:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    cfg = Config(cluster=cluster, static_dir=args.static_dir, secure_cookie=tls is not None,
                 idle_timeout=args.session_idle_timeout, stop=ctx.stop)
    address = data_dir / "dashboard-address"

    def ready(url: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / ".dashboard-address.tmp"
        tmp.write_text(url + "\n")
        tmp.replace(address)

    dash = Dashboard(cfg)
    try:
        try:
            await dash.serve(args.host, args.port, ready=ready, ssl=tls)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or args.no_port_fallback or args.port == 0:
                raise
            log.warning("dashboard port busy; using a free one", port=args.port)
            await dash.serve(args.host, 0, ready=ready, ssl=tls)
    finally:
        address.unlink(missing_ok=True)
    return 0
