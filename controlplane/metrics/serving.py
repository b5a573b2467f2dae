"""How an aggregated metrics API server (the metrics-server, the custom metrics adapter) serves:
its client towards the apiserver, its serving certificate (given, or self-signed for
``localhost``, the bind address and its Service's DNS name), delegated authentication and
authorization from its flags, and the HTTPS site, whose bound port is written to
``DATA_DIR/<name>.port``."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from controlplane.client.delegatedauth import RequestAuth
from controlplane.client.rest import RestClient
from controlplane.metrics import tls


def client(args: argparse.Namespace, user_agent: str) -> RestClient:
    if args.kubeconfig:
        return RestClient.from_kubeconfig(args.kubeconfig, user_agent=user_agent)
    if args.server:
        return RestClient(args.server, user_agent=user_agent)
    raise SystemExit("--kubeconfig or --server is required")


async def certificate(args: argparse.Namespace, name: str, service_dns: str) -> tuple[Path, Path]:
    """``--tls-cert-file``/``--tls-private-key-file``, else a self-signed pair in ``--cert-dir``
    (a temporary directory without it)."""
    if args.tls_cert_file and args.tls_private_key_file:
        return Path(args.tls_cert_file), Path(args.tls_private_key_file)
    cert_dir = Path(args.cert_dir) if args.cert_dir else Path(tempfile.mkdtemp(prefix=f"{name}-certs-"))
    return await asyncio.to_thread(tls.self_signed, cert_dir, ("localhost", args.bind_address, service_dns))


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def request_auth(rest: RestClient, args: argparse.Namespace) -> RequestAuth | None:
    """Delegated authn/authz from the requestheader, client CA and always-allowed-path flags;
    None with ``--delegated-auth=false``."""
    if not args.delegated_auth:
        return None
    return RequestAuth(rest, requestheader_ca=_read(args.requestheader_client_ca_file),
                       allowed_names=tuple(n for n in args.requestheader_allowed_names.split(",") if n),
                       client_ca=_read(args.client_ca_file),
                       always_allow_paths=tuple(p for p in args.authorization_always_allow_paths.split(",") if p))


async def serve(app: web.Application, args: argparse.Namespace, cert: Path, key: Path, auth: RequestAuth | None,
                name: str) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``--bind-address``:``--secure-port`` over HTTPS; (its runner, the bound
    port), the port also written to ``DATA_DIR/<name>.port`` when a data dir is given."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server_ssl = tls.server_context(cert, key)
    if auth is not None:
        auth.server_context(server_ssl)
    site = web.TCPSite(runner, args.bind_address, args.secure_port, ssl_context=server_ssl)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if getattr(args, "data_dir", None):
        d = Path(args.data_dir)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{name}.port.tmp"
        tmp.write_text(f"{port}\n")
        tmp.replace(d / f"{name}.port")
    return runner, port
