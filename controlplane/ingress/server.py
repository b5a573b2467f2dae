"""The ingress controller's data path and bookkeeping (what k3s gets from Traefik): an HTTP
listener and an HTTPS listener on the host's loopback, each request routed by ``routes.Table``
to a Service's cluster IP and port (the service proxy then picks a ready endpoint, so Services'
load balancing, affinity and traffic policies apply), the IngressClass it serves (created as the
default class unless one exists), and each served Ingress's ``status.loadBalancer``.

Proxying: the request line, headers (hop-by-hop ones dropped, ``X-Forwarded-For`` /
``-Host`` / ``-Proto`` / ``X-Real-IP`` added) and body are streamed to
``http://<cluster IP>:<port>``; the answer is streamed back. No rule and no default backend:
404 ``default backend - 404``; a Service that does not exist, has no cluster IP or no such
port: 503; the backend refusing or timing out: 502 / 504. HTTPS picks the certificate by SNI
from the ``kubernetes.io/tls`` Secret a matching ``spec.tls`` entry names (a self-signed
default certificate otherwise, as ingress controllers do). A WebSocket upgrade is proxied as
one: the backend's handshake first, then messages both ways until a side closes.

Safety: only cluster IPs of Services (addresses this cluster's service proxy owns) are dialled.
Neighbours: ``routes`` (matching), ``cmd/ingress.py`` (the process), the service proxy.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlplane.client import resources as R
from controlplane.client.informer import Informer
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.ingress import routes
from controlplane.log import get_logger

log = get_logger(__name__)

INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
INGRESS_CLASSES = Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False)
CONTROLLER_NAME = "controlplane.io/ingress-controller"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)


def _self_signed(dir_: Path) -> tuple[Path, Path]:
    """The default certificate (CN "controlplane ingress default"), made once per start."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "controlplane ingress default")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    crt, pem = dir_ / "default.crt", dir_ / "default.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def _tls_only(secret: dict) -> dict:
    """What the controller keeps of a Secret: a TLS one whole, of the others only their name."""
    if secret.get("type") == "kubernetes.io/tls":
        return secret
    md = secret.get("metadata") or {}
    return {"metadata": {k: md.get(k) for k in ("name", "namespace", "resourceVersion", "uid")}}


class IngressController:
    def __init__(self, client: RestClient, *, class_name: str = "controlplane", make_default: bool = True,
                 host: str = "127.0.0.1", status_address: str = "127.0.0.1", work_dir: Path | None = None) -> None:
        """``work_dir``: where the certificates in use are written (0700; a temporary directory
        when None); emptied when the controller stops."""
        self.client = client
        self.class_name = class_name
        self.make_default = make_default
        self.host = host
        self.status_address = status_address
        self.ingresses = Informer(client, INGRESSES)
        self.services = Informer(client, R.SERVICES)
        self.classes = Informer(client, INGRESS_CLASSES)
        self.secrets = Informer(client, R.SECRETS, transform=_tls_only)
        self.table = routes.Table()
        self.http_port = 0
        self.https_port = 0
        self._dirty = asyncio.Event()
        self._certs: dict[tuple[str, str], tuple[str, ssl.SSLContext]] = {}  # (ns, secret) -> (rv, ctx)
        if work_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="cp-ingress-"))
        else:
            self._tmp = work_dir
            self._tmp.mkdir(parents=True, exist_ok=True)
        os.chmod(self._tmp, 0o700)
        self._default_ctx: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None
        for inf in (self.ingresses, self.classes):
            inf.add_handler(lambda *_: self._dirty.set())

    # -- the table -----------------------------------------------------------------------------
    def is_default(self) -> bool:
        cls = self.classes.get(self.class_name)
        return bool(cls) and ((cls.get("metadata") or {}).get("annotations") or {}).get(
            routes.DEFAULT_CLASS_ANNOTATION) == "true"

    def rebuild(self) -> None:
        self.table = routes.build(self.ingresses.list(), self.class_name, self.is_default())

    async def ensure_class(self) -> None:
        """Our IngressClass (the default class unless another one is), created once; an
        existing one is left as its owner set it."""
        body: dict[str, Any] = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                "metadata": {"name": self.class_name}, "spec": {"controller": CONTROLLER_NAME}}
        if self.make_default:
            try:
                existing = (await self.client.list(INGRESS_CLASSES))["items"]
            except ApiStatusError:
                existing = []
            if not any(((c.get("metadata") or {}).get("annotations") or {}).get(routes.DEFAULT_CLASS_ANNOTATION)
                       == "true" for c in existing):
                body["metadata"]["annotations"] = {routes.DEFAULT_CLASS_ANNOTATION: "true"}
        try:
            await self.client.create(INGRESS_CLASSES, body)
            log.info("ingress class created", name=self.class_name, default=bool(body["metadata"].get("annotations")))
        except ApiStatusError as e:
            if not e.already_exists:
                raise

    async def _status_loop(self, stop: asyncio.Event) -> None:
        """Rebuild the table on changes and keep each served Ingress's load balancer status."""
        while not stop.is_set():
            self.rebuild()
            default = self.is_default()
            want = [{"ip": self.status_address}]
            for ing in self.ingresses.list():
                if not routes.is_ours(ing, self.class_name, default):
                    continue
                if ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == want:
                    continue
                obj = {**ing, "status": {"loadBalancer": {"ingress": want}}}
                try:
                    await self.client.update(INGRESSES, obj, subresource="status")
                except ApiStatusError as e:
                    if not (e.not_found or e.conflict):
                        log.warning("ingress status not written", ingress=f"{ing['metadata'].get('namespace')}/"
                                    f"{ing['metadata'].get('name')}", error=e.message)
            self._dirty.clear()
            try:
                async with asyncio.timeout(5.0):  # (and now and then, for missed conflicts)
                    await self._dirty.wait()
            except TimeoutError:
                pass

    # -- proxying ------------------------------------------------------------------------------
    def _upstream(self, backend: routes.Backend) -> tuple[str, int] | str:
        """(cluster IP, port) of the backend, or why not."""
        svc = self.services.get(f"{backend.namespace}/{backend.service}")
        if svc is None:
            return f'service "{backend.namespace}/{backend.service}" not found'
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            return f'service "{backend.namespace}/{backend.service}" has no cluster IP'
        for p in spec.get("ports") or []:
            if (backend.port_number and p.get("port") == backend.port_number) or \
                    (backend.port_name and p.get("name") == backend.port_name):
                return ip, int(p["port"])
        return f'service "{backend.namespace}/{backend.service}" has no port ' \
               f'{backend.port_number or backend.port_name}'

    async def handle(self, request: web.Request) -> web.StreamResponse:
        backend = self.table.match(request.host, request.path)
        if backend is None:
            return web.Response(status=404, text="default backend - 404\n")
        target = self._upstream(backend)
        if isinstance(target, str):
            return web.Response(status=503, text=f"Service Unavailable: {target}\n")
        ip, port = target
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return web.Response(status=503, text="Service Unavailable\n")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Real-IP"] = peer
        headers["Host"] = request.host
        url = f"http://{ip}:{port}{request.rel_url}"
        assert self._session is not None
        if request.headers.get("Upgrade", "").lower() == "websocket" and \
                "upgrade" in request.headers.get("Connection", "").lower():
            return await self._websocket(request, f"ws://{ip}:{port}{request.rel_url}", headers)
        try:
            async with self._session.request(request.method, url, headers=headers,
                                             data=request.content if request.body_exists else None,
                                             allow_redirects=False, auto_decompress=False) as up:
                resp = web.StreamResponse(status=up.status, reason=up.reason)
                for k, v in up.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        resp.headers.add(k, v)
                if up.headers.get("Content-Length") is not None:
                    resp.content_length = int(up.headers["Content-Length"])
                await resp.prepare(request)
                async for chunk in up.content.iter_chunked(64 * 1024):
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except asyncio.TimeoutError:
            return web.Response(status=504, text="Gateway Timeout\n")
        except (aiohttp.ClientError, OSError) as e:
            log.info("backend failed", backend=f"{backend.namespace}/{backend.service}", error=repr(e))
            return web.Response(status=502, text="Bad Gateway\n")

    async def _websocket(self, request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
        """A WebSocket upgrade: the backend's handshake first (its refusal is answered as it
        was), then messages pumped both ways until either side closes."""
        assert self._session is not None
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        fwd = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket-")}
        try:
            upstream = await self._session.ws_connect(url, headers=fwd, protocols=protocols, autoclose=False,
                                                      autoping=False, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            return web.Response(status=e.status or 502, text="Bad Gateway\n")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return web.Response(status=502, text="Bad Gateway\n")
        down = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoclose=False,
                                     autoping=False, max_msg_size=0)
        await down.prepare(request)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.PING:
                    await dst.ping(msg.data)
                elif msg.type == aiohttp.WSMsgType.PONG:
                    await dst.pong(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
            await dst.close(code=src.close_code or aiohttp.WSCloseCode.OK)

        tasks = [asyncio.ensure_future(pump(down, upstream)), asyncio.ensure_future(pump(upstream, down))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            await down.close()
        return down

    # -- TLS -----------------------------------------------------------------------------------
    def _context_for(self, namespace: str, name: str) -> ssl.SSLContext | None:
        secret = self.secrets.get(f"{namespace}/{name}")
        if secret is None:
            return None
        rv = (secret.get("metadata") or {}).get("resourceVersion", "")
        hit = self._certs.get((namespace, name))
        if hit is not None and hit[0] == rv:
            return hit[1]
        data = secret.get("data") or {}
        try:
            crt, key = base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", ""))
            base = self._tmp / f"{namespace}_{name}"
            (base.with_suffix(".crt")).write_bytes(crt)
            (base.with_suffix(".key")).write_bytes(key)
            os.chmod(base.with_suffix(".key"), 0o600)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(base.with_suffix(".crt"), base.with_suffix(".key"))
        except (ValueError, ssl.SSLError, OSError) as e:
            log.warning("tls secret unusable", secret=f"{namespace}/{name}", error=str(e))
            return None
        self._certs[(namespace, name)] = (rv, ctx)
        return ctx

    def _sni(self, sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ref = self.table.secret_for(server_name or "")
        ctx = self._context_for(*ref) if ref else None
        if ctx is not None:
            sock.context = ctx

    def _server_context(self) -> ssl.SSLContext:
        crt, key = _self_signed(self._tmp)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(crt, key)
        ctx.sni_callback = self._sni  # type: ignore[assignment]
        return ctx

    # -- running -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, http_port: int, https_port: int, ready: Any = None) -> None:
        tasks = [asyncio.ensure_future(i.start(stop)) for i in (self.ingresses, self.services, self.classes,
                                                                self.secrets)]
        runner: web.AppRunner | None = None
        status: asyncio.Task | None = None
        try:
            for i in (self.ingresses, self.services, self.classes, self.secrets):
                await i.wait_for_sync()
            await self.ensure_class()
            self.rebuild()
            self._session = aiohttp.ClientSession(timeout=UPSTREAM_TIMEOUT,
                                                  connector=aiohttp.TCPConnector(limit=256, force_close=False))
            app = web.Application(client_max_size=0)
            app.router.add_route("*", "/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            http = web.TCPSite(runner, self.host, http_port)
            await http.start()
            self.http_port = http._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            tls = web.TCPSite(runner, self.host, https_port, ssl_context=self._server_context())
            await tls.start()
            self.https_port = tls._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            log.info("ingress controller serving", http=self.http_port, https=self.https_port, cls=self.class_name)
            if ready is not None:
                ready(self.http_port, self.https_port)
            status = asyncio.ensure_future(self._status_loop(stop))
            await stop.wait()
        finally:
            if status is not None:
                status.cancel()
                await asyncio.gather(status, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            if self._session is not None:
                await self._session.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for f in self._tmp.iterdir():
                f.unlink(missing_ok=True)
            self._tmp.rmdir()
