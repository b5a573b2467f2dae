"""The dashboard's HTTP server (Sanic): sign-in, the API proxy, the WebSockets, the front end.

Routes:

- ``POST /auth/login`` ``{"token": ...}`` or ``{"kubeconfig": ..., "context"?: ...}``: checks
  the credentials against the API (``upstream.Upstream.who_am_i``), creates a session and sets
  its cookie; a refused credential is 401 with the API's message. ``GET /auth/session`` (who
  is signed in; 401 when nobody), ``POST /auth/logout``.
- ``/k8s/<path>``: the Kubernetes API as the signed-in user (any method; ``/api``, ``/apis``,
  ``/version``, ``/openapi``, ``/healthz``, ``/livez``, ``/readyz``), answers passed through
  unchanged (Status bodies, ``Warning`` headers).
- ``GET /ws``: the page's stream multiplexer (``mux``); ``GET /exec?path=...&command=...``:
  the exec terminal (``execrelay``).
- anything else: the built front end (``web/dist``), ``index.html`` for the views' URLs.

Requests that change something (and every WebSocket) must come from the dashboard's own
origin (the ``Origin`` header, checked against ``Host``), on top of the ``SameSite=Strict``
cookie. See docs/dashboard.md.
"""

from __future__ import annotations

import asyncio
import gzip
import mimetypes
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json as json_response, raw

from controlplane.dashboard import credentials, execrelay
from controlplane.dashboard.cluster import ClusterInfo
from controlplane.dashboard.mux import Mux
from controlplane.dashboard.sessions import COOKIE, Session, SessionStore
from controlplane.dashboard.upstream import SignInError, Upstream
from controlplane.log import get_logger

log = get_logger(__name__)
REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATIC = REPO / "web" / "dist"
API_PREFIXES = ("api", "apis", "version", "openapi", "healthz", "livez", "readyz")
PASS_REQUEST_HEADERS = ("accept", "content-type")
PASS_RESPONSE_HEADERS = ("content-type", "warning", "audit-id")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_APP_SEQ = iter(range(1, 1 << 30))


@dataclass
class Config:
    cluster: ClusterInfo
    static_dir: Path = DEFAULT_STATIC
    secure_cookie: bool = False
    idle_timeout: float = 1800.0
    max_age: float = 12 * 3600.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def status_response(code: int, reason: str, message: str) -> HTTPResponse:
    return json_response(status_body(code, reason, message), status=code)


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin:  # not a browser's cross-site request (browsers send Origin on those)
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


class Dashboard:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.sessions = SessionStore(idle_timeout=cfg.idle_timeout, max_age=cfg.max_age)
        self._gz: dict[Path, tuple[float, bytes]] = {}
        self.app = self._build()

    # -- sessions -----------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _set_cookie(self, resp: HTTPResponse, value: str, max_age: int) -> None:
        resp.add_cookie(COOKIE, value, path="/", httponly=True, samesite="Strict", secure=self.cfg.secure_cookie,
                        max_age=max_age)

    async def login(self, request: Request) -> HTTPResponse:
        if not same_origin(request):
            return status_response(403, "Forbidden", "cross-origin sign-in refused")
        try:
            body = request.json or {}
        except Exception:  # noqa: BLE001 - Sanic raises its own error for a bad body
            body = None
        if not isinstance(body, dict):
            return status_response(400, "BadRequest", "a JSON object with a token or a kubeconfig is required")
        try:
            if body.get("kubeconfig"):
                creds = credentials.from_kubeconfig(body["kubeconfig"], body.get("context") or None)
            else:
                creds = credentials.from_token(body.get("token"))
            upstream = await Upstream(self.cfg.cluster, creds).open()
        except credentials.CredentialError as e:
            return status_response(400, "BadRequest", str(e))
        try:
            identity = await upstream.who_am_i()
        except SignInError as e:
            await upstream.close()
            log.info("sign-in refused", code=e.code, credential=creds.kind)
            return status_response(e.code if e.code in (401, 403) else 502,
                                   "Unauthorized" if e.code == 401 else "Forbidden" if e.code == 403 else "BadGateway",
                                   e.message)
        except aiohttp.ClientError as e:
            await upstream.close()
            return status_response(502, "BadGateway", f"the apiserver cannot be reached: {e}")
        old = request.cookies.get(COOKIE)
        if old:
            await self.sessions.drop(old)
        s = await self.sessions.create(creds, upstream, identity)
        log.info("signed in", user=identity.username, credential=creds.kind)
        resp = json_response({**identity.as_json(), "credential": creds.kind})
        self._set_cookie(resp, s.id, int(self.cfg.max_age))
        return resp

    async def whoami(self, request: Request) -> HTTPResponse:
        s = self.session(request)
        if s is None:
            return status_response(401, "Unauthorized", "not signed in")
        return json_response({**s.identity.as_json(), "credential": s.creds.kind})

    async def logout(self, request: Request) -> HTTPResponse:
        if not same_origin(request):
            return status_response(403, "Forbidden", "cross-origin request refused")
        sid = request.cookies.get(COOKIE)
        if sid:
            await self.sessions.drop(sid)
        resp = json_response({"signedOut": True})
        self._set_cookie(resp, "", 0)
        return resp

    # -- the API proxy ------------------------------------------------------------------

    async def proxy(self, request: Request, path: str) -> HTTPResponse | None:
        s = self.session(request)
        if s is None:
            return status_response(401, "Unauthorized", "not signed in to the dashboard")
        if path.split("/", 1)[0] not in API_PREFIXES or ".." in path.split("/"):
            return status_response(404, "NotFound", f"the dashboard does not proxy /{path}")
        if request.method not in SAFE_METHODS and not same_origin(request):
            return status_response(403, "Forbidden", "cross-origin request refused")
        headers = {k: request.headers[k] for k in PASS_REQUEST_HEADERS if k in request.headers}
        query = request.query_string
        url = s.upstream.url("/" + path, query)
        streaming = "watch=true" in query or "watch=1" in query or "follow=true" in query
        try:
            async with s.upstream.session.request(request.method, url, data=request.body or None,
                                                  headers=headers) as r:
                out = {k: r.headers[k] for k in PASS_RESPONSE_HEADERS if k in r.headers}
                out["Cache-Control"] = "no-store"
                if not streaming:
                    body = await r.read()
                    return raw(body, status=r.status, headers=out, content_type=r.headers.get("content-type"))
                resp = await request.respond(status=r.status, headers=out,
                                             content_type=r.headers.get("content-type", "application/json"))
                async for chunk in r.content.iter_any():
                    await resp.send(chunk)
                await resp.eof()
                return None
        except aiohttp.ClientError as e:
            return status_response(502, "BadGateway", f"the apiserver cannot be reached: {e}")

    # -- WebSockets ---------------------------------------------------------------------

    async def _socket(self, request: Request, ws: Any, run: Any) -> None:
        s = self.session(request)
        if s is None or not same_origin(request):
            await ws.close(code=4401 if s is None else 4403, reason="not signed in" if s is None else "cross-origin")
            return

        def close() -> None:
            asyncio.ensure_future(ws.close(code=4401, reason="session ended"))
        self.sessions.attach(s, close)
        try:
            await run(s)
        finally:
            self.sessions.detach(s, close)

    async def ws_mux(self, request: Request, ws: Any) -> None:
        async def run(s: Session) -> None:
            mux = Mux(ws, s.upstream)
            await mux.run()
        await self._socket(request, ws, run)

    async def ws_exec(self, request: Request, ws: Any) -> None:
        path = request.args.get("path") or ""
        query = "&".join(part for part in request.query_string.split("&") if not part.startswith("path="))

        async def run(s: Session) -> None:
            await execrelay.relay(ws, s.upstream, path, query)
        await self._socket(request, ws, run)

    # -- the front end ------------------------------------------------------------------

    def _file(self, rel: str) -> Path | None:
        root = self.cfg.static_dir.resolve()
        p = (root / rel).resolve()
        if p != root and root in p.parents and p.is_file():
            return p
        return None

    async def _gzipped(self, p: Path) -> bytes:
        mtime = p.stat().st_mtime
        hit = self._gz.get(p)
        if hit is None or hit[0] != mtime:
            data = await asyncio.to_thread(lambda: gzip.compress(p.read_bytes(), 6, mtime=0))
            self._gz[p] = hit = (mtime, data)
        return hit[1]

    async def static(self, request: Request, path: str = "") -> HTTPResponse:
        p = self._file(path) if path else None
        if p is None:
            if re.match(r"^(assets|k8s|auth|ws|exec)/", path) or Path(path).suffix in (".js", ".css", ".map"):
                return status_response(404, "NotFound", f"/{path} not found")
            p = self._file("index.html")
            if p is None:
                return raw(b"The dashboard's front end is not built: run `make install` (npm ci && npm run build in web/).",
                           status=503, content_type="text/plain; charset=utf-8")
        ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        immutable = path.startswith("assets/")
        headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache",
                   "Vary": "Accept-Encoding"}
        if p.suffix in (".js", ".css", ".html", ".svg", ".json", ".map") and "gzip" in request.headers.get(
                "accept-encoding", ""):
            return raw(await self._gzipped(p), headers={**headers, "Content-Encoding": "gzip"}, content_type=ctype)
        data = await asyncio.to_thread(p.read_bytes)
        return raw(data, headers=headers, content_type=ctype)

    async def healthz(self, request: Request) -> HTTPResponse:
        return raw(b"ok", content_type="text/plain")

    # -- wiring -------------------------------------------------------------------------

    def _build(self) -> Sanic:
        app = Sanic(f"controlplane_dashboard_{next(_APP_SEQ)}", configure_logging=False)
        app.config.WEBSOCKET_MAX_SIZE = 1 << 20
        app.config.REQUEST_MAX_SIZE = 4 << 20
        app.config.RESPONSE_TIMEOUT = 24 * 3600
        app.config.REQUEST_TIMEOUT = 60
        app.config.KEEP_ALIVE_TIMEOUT = 75
        app.add_route(self.healthz, "/healthz", methods=["GET"], name="healthz")
        app.add_route(self.login, "/auth/login", methods=["POST"], name="login")
        app.add_route(self.whoami, "/auth/session", methods=["GET"], name="session")
        app.add_route(self.logout, "/auth/logout", methods=["POST"], name="logout")
        app.add_route(self.proxy, "/k8s/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                      name="proxy", stream=False)
        app.add_websocket_route(self.ws_mux, "/ws", name="ws")
        app.add_websocket_route(self.ws_exec, "/exec", subprotocols=execrelay.SUBPROTOCOLS, name="exec")
        app.add_route(self.static, "/", methods=["GET"], name="index")
        app.add_route(self.static, "/<path:path>", methods=["GET"], name="static")

        @app.on_request
        async def socket_gate(request: Request) -> HTTPResponse | None:
            """Refuse a WebSocket before the upgrade: no session (401) or another origin (403)."""
            if request.path not in ("/ws", "/exec"):
                return None
            if not same_origin(request):
                return status_response(403, "Forbidden", "cross-origin WebSocket refused")
            if self.session(request) is None:
                return status_response(401, "Unauthorized", "not signed in to the dashboard")
            return None

        @app.on_response
        async def security_headers(request: Request, response: HTTPResponse) -> None:
            host = request.headers.get("host", "")
            response.headers.setdefault(
                "Content-Security-Policy",
                f"default-src 'self'; connect-src 'self' ws://{host} wss://{host}; img-src 'self' data:; "
                "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return app

    async def serve(self, host: str, port: int, ready: Any = None, ssl: Any = None) -> None:
        """Serve until ``cfg.stop`` is set; ``ready(url)`` is called once listening."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(512)
        sock.setblocking(False)
        server = await self.app.create_server(sock=sock, return_asyncio_server=True, access_log=False, ssl=ssl)
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.after_start()
        bound = sock.getsockname()[1]
        scheme = "https" if ssl is not None else "http"
        url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{bound}"
        log.info("dashboard serving", url=url, cluster=self.cfg.cluster.server)
        sweeper = asyncio.ensure_future(self.sessions.sweep_forever(self.cfg.stop))
        try:
            if ready is not None:
                ready(url)
            await self.cfg.stop.wait()
        finally:
            started = time.monotonic()
            await self.sessions.close_all()  # closes every open socket
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await server.before_stop()
            server.close()
            await server.wait_closed()
            await server.after_stop()
            log.info("dashboard stopped", seconds=round(time.monotonic() - started, 3))
