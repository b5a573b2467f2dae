"""``controlplane token create [--ttl 24h] [--group system:bootstrappers:...]``: a bootstrap
token for an agent joining from another machine (``kubeadm token create``'s counterpart).

Creates the ``bootstrap-token-<id>`` Secret in ``kube-system`` through the apiserver (admin
kubeconfig) and prints the join token in k3s's form, ``K10<ca hash>::<id>.<secret>``
(``pki.servertoken``: the hash pins the cluster CA, as ``--ca-cert-hash`` does), and the agent
command line that uses it: ``controlplane agent --server URL --token K10…::<id>.<secret>``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import re
from pathlib import Path

from controlplane.agent.bootstrap import ca_hash
from controlplane.pki import servertoken


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="bootstrap tokens for agents joining from other machines")
    p.add_argument("action", choices=["create"])
    p.add_argument("--kubeconfig", type=Path, default=Path(".data/kubeconfig"))
    p.add_argument("--ttl", default="24h", help="lifetime: 30m, 24h, 7d; 0 = never expires")
    p.add_argument("--group", action="append", default=[], help="extra group system:bootstrappers:<x>; repeatable")
    p.add_argument("--description", default="controlplane agent join")
    p.set_defaults(func=run)


def parse_ttl(text: str) -> _dt.timedelta | None:
    m = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not m:
        raise SystemExit(f"--ttl {text!r}: want a number with s, m, h or d")
    n, unit = int(m.group(1)), m.group(2) or "s"
    if n == 0:
        return None
    return _dt.timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's ``sha256:<hex>`` pin of the CA's public key (what ``--ca-cert-hash`` checks)."""
    return ca_hash(ca_pem)


async def _create(args: argparse.Namespace) -> int:
    import base64

    import yaml

    from controlplane.apiserver.authentication.bootstrap import NAMESPACE, new_token, new_token_secret
    from controlplane.client.rest import RestClient
    from controlplane.client.resources import SECRETS

    token = new_token()
    secret = new_token_secret(token, ttl=parse_ttl(args.ttl), extra_groups=args.group, description=args.description)
    async with RestClient.from_kubeconfig(args.kubeconfig) as client:
        await client.create(SECRETS, secret, NAMESPACE)
    cfg = yaml.safe_load(args.kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster.get("certificate-authority-data", "")) if cluster.get("certificate-authority-data") else b""
    full = servertoken.format_token(ca_cert_hash(ca) if ca else None, token)
    print(full)
    print(f"# join: controlplane agent --server {cluster['server']} --token {full} --node-name NAME --root DIR")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_create(args))
