"""Every component's metrics and health port (``--metrics-port``, ``cmd.bootstrap``): ``/metrics``
(the Prometheus exposition, text or OpenMetrics as the ``Accept`` header asks, gzip when
accepted), ``/healthz``, ``/livez``, ``/readyz`` and ``/<endpoint>/<check>`` (answered by
``machinery.healthz``), on 127.0.0.1.

Two ways to serve, chosen by the component's flags:

- **secure** (what ``controlplane up`` runs for the controller-manager, the scheduler, the
  metrics-server and the agent, as kube-controller-manager and kube-scheduler serve
  10257/10259): HTTPS with the serving certificate of ``--tls-cert-file`` /
  ``--tls-private-key-file`` and Kubernetes' delegated authentication and authorization
  (``client.delegatedauth``): a client certificate of ``--client-ca-file`` or a bearer token
  (TokenReview), then a SubjectAccessReview for ``get`` on the path, both through the
  component's own kubeconfig; ``--authorization-always-allow-paths`` (default
  ``/healthz,/readyz,/livez``) is let through anonymously, so liveness probes need no
  credential. 401 without a credential that the apiserver accepts, 403 with Kubernetes'
  message when RBAC says no (``system:monitoring`` may ``get /metrics``).
- **plain** HTTP without authentication when no serving certificate is given: a component run
  by hand, by a benchmark or by a test without a cluster CA (loopback only).

The server runs in a thread of its own with its own event loop (and its own ``RestClient`` for
the reviews), not on the component's loop: ``/livez``'s ``event-loop`` check must still answer,
with a failure, when the component's loop is stuck.

Neighbours: ``cmd.bootstrap`` (starts and stops it for every component), ``client.delegatedauth``
(who may), ``machinery.healthz`` (the health answers).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from controlplane.client.delegatedauth import ALWAYS_ALLOW_PATHS, RequestAuth
from controlplane.client.rest import RestClient, dumps
from controlplane.log import get_logger
from controlplane.machinery.healthz import ENDPOINTS, HealthChecks

log = get_logger(__name__)


@dataclass(frozen=True)
class SecureServing:
    """The secure port's settings: serving certificate and key, the CA of client certificates,
    the paths anyone may GET, and where the reviews go (``None``: no delegated authentication,
    TLS only -- the metrics-server's ``--delegated-auth=false``)."""

    cert: Path
    key: Path
    client_ca: Path | None
    always_allow: tuple[str, ...]
    client: Callable[[], RestClient] | None

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def add_flags(p: argparse.ArgumentParser) -> None:
    """kube-controller-manager's secure-serving and delegation flags, those the component does
    not already have (the agent and the metrics-server use their own for their main port, and
    the metrics port shares them)."""
    have = p._option_string_actions
    if "--tls-cert-file" not in have:
        p.add_argument("--tls-cert-file", default=None,
                       help="serving certificate of the metrics/health port (HTTPS with delegated authn/authz); "
                            "without one the port is plain HTTP")
        p.add_argument("--tls-private-key-file", default=None, help="its key")
    if "--client-ca-file" not in have:
        p.add_argument("--client-ca-file", default=None,
                       help="CA of client certificates accepted on the metrics/health port (CN = user, O = groups)")
    if "--authorization-always-allow-paths" not in have:
        p.add_argument("--authorization-always-allow-paths", default=",".join(ALWAYS_ALLOW_PATHS),
                       help="paths anyone may GET without authentication or authorization (`*` suffix: a prefix)")


def delegation_client(args: argparse.Namespace, user_agent: str) -> Callable[[], RestClient]:
    """The component's own identity towards the apiserver (``--kubeconfig``, else the
    ``--master``/``--server`` URL); made inside the status server's loop."""
    kubeconfig = getattr(args, "kubeconfig", None)
    url = getattr(args, "master", None) or getattr(args, "server", None)
    if not kubeconfig and not url:
        raise SystemExit("--tls-cert-file: delegated authentication needs --kubeconfig (or the apiserver's URL)")
    if kubeconfig:
        return lambda: RestClient.from_kubeconfig(str(kubeconfig), user_agent=user_agent)
    return lambda: RestClient(str(url), user_agent=user_agent)


def secure_serving(args: argparse.Namespace, component: str) -> SecureServing | None:
    """The secure port's settings from the flags, or None (plain HTTP) without a certificate."""
    cert, key = getattr(args, "tls_cert_file", None), getattr(args, "tls_private_key_file", None)
    if not cert:
        return None
    if not key:
        raise SystemExit("--tls-cert-file needs --tls-private-key-file")
    paths = tuple(p.strip() for p in str(getattr(args, "authorization_always_allow_paths", "") or "").split(",")
                  if p.strip())
    delegated = getattr(args, "delegated_auth", True)
    ca = getattr(args, "client_ca_file", None)
    return SecureServing(Path(cert), Path(key), Path(ca) if ca else None, paths,
                         delegation_client(args, component) if delegated else None)


def status(code: int, reason: str, message: str) -> web.Response:
    """A ``Status`` body, as the generic apiserver answers 401 and 403."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if code == 403:
        body["details"] = {}
    return web.Response(status=code, body=dumps(body), content_type="application/json")


class StatusServer:
    """``start()`` binds 127.0.0.1:``port`` (0: a free port) and returns the port; ``stop()``
    closes it. Both block (the thread's loop does the work)."""

    def __init__(self, health: HealthChecks, registry: CollectorRegistry, port: int,
                 secure: SecureServing | None = None) -> None:
        self.health = health
        self.registry = registry
        self.requested_port = port
        self.secure = secure
        self.port: int | None = None
        self.auth: RequestAuth | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.secure is not None else "http"

    def start(self) -> int:
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()
        self._bound.wait()
        if self._error is not None:
            raise self._error
        assert self.port is not None
        return self.port

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop ended meanwhile
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported to start() (before binding) or logged
            if not self._bound.is_set():
                self._error = e
            else:
                log.error("metrics server failed", error=str(e))
        finally:
            self._bound.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        client: RestClient | None = None
        ssl_ctx: ssl.SSLContext | None = None
        if self.secure is not None:
            ssl_ctx = self.secure.ssl_context()
            if self.secure.client is not None:
                client = self.secure.client()
                ca = self.secure.client_ca.read_bytes() if self.secure.client_ca else None
                self.auth = RequestAuth(client, client_ca=ca, always_allow_paths=self.secure.always_allow)
                self.auth.server_context(ssl_ctx)
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/metrics", self._metrics)
        for ep in ENDPOINTS:
            app.router.add_get(f"/{ep}", self._health)
            app.router.add_get(f"/{ep}/{{check:.*}}", self._health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.requested_port, ssl_context=ssl_ctx)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._bound.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
            if client is not None:
                await client.close()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.auth is not None:
            denied = await self.auth.check(request)
            if denied is not None:
                return status(denied.code, denied.reason, denied.message)
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        endpoint = request.path.strip("/").partition("/")[0]
        query = {k: request.query.getall(k) for k in request.query}
        code, body = await asyncio.to_thread(self.health.answer, endpoint, request.match_info.get("check", ""), query)
        return web.Response(status=code, text=body, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = await asyncio.to_thread(encoder, self.registry)
        resp = web.Response(body=body, headers={"Content-Type": content_type})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.enable_compression(web.ContentCoding.gzip)
        return resp
