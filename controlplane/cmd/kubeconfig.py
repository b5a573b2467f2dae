"""``controlplane kubeconfig --user NAME [--group G ...] [-o FILE]``: make a user.

Signs a client certificate for ``NAME`` (CN) in the groups ``G`` (O) with the cluster CA under
``DATA_DIR/pki`` and writes a kubeconfig that verifies the apiserver and presents it. What the
user may do is then up to RBAC (``kubectl create rolebinding ... --user NAME``). Without
``-o`` the kubeconfig goes to standard output. ``--days`` sets the lifetime (default 365).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kubeconfig", help="write a kubeconfig for a new user (client certificate from the cluster CA)")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--user", required=True, help="user name (the certificate's CN)")
    p.add_argument("--group", action="append", default=[], help="group (the certificate's O); repeatable")
    p.add_argument("--server", default=None, help="apiserver URL (default: the admin kubeconfig's)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("-o", "--output", type=Path, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from controlplane.pki.cluster import ClusterPKI
    from controlplane.pki.kubeconfigs import user_kubeconfig

    pki_dir = args.data_dir / "pki"
    if not (pki_dir / "ca.key").exists():
        print(f"no cluster CA under {pki_dir}: run `controlplane up --data-dir {args.data_dir}` first", file=sys.stderr)
        return 1
    server = args.server
    if server is None:
        admin = yaml.safe_load((args.data_dir / "kubeconfig").read_text())
        server = admin["clusters"][0]["cluster"]["server"]
    pki = ClusterPKI(pki_dir)
    if args.output is not None:
        user_kubeconfig(pki, server, args.output, args.user, args.group, days=args.days)
        return 0
    with tempfile.TemporaryDirectory() as d:
        path = user_kubeconfig(pki, server, Path(d) / "kubeconfig", args.user, args.group, days=args.days)
        sys.stdout.write(path.read_text())
    return 0
