"""The ingress controller's proxy (``controlplane/ingress/server.py``) in one process: a backend
HTTP/WebSocket server on loopback stands in for a Service's cluster IP (the test sets the
Service's ``clusterIP`` to 127.0.0.1, an address the test itself serves on), the controller's
handler in front of it. Routing itself is ``test_ingress_routes.py``'s."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from controlplane.ingress import routes
from controlplane.ingress.server import IngressController


class _NoClient:
    """The controller's API client is not used by the handler."""


async def _backend() -> tuple[web.AppRunner, int]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.path_qs}|{request.headers.get('Host')}|"
                                 f"{request.headers.get('X-Forwarded-Host')}|{request.headers.get('X-Forwarded-Proto')}",
                            headers={"Set-Cookie": "a=1"})

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_http_and_websocket_through_the_proxy(tmp_path):
    backend, bport = await _backend()
    ctl = IngressController(_NoClient(), class_name="ours", work_dir=tmp_path / "tls")  # type: ignore[arg-type]
    ctl.services._items["d/web"] = {"metadata": {"name": "web", "namespace": "d"},
                                    "spec": {"clusterIP": "127.0.0.1", "ports": [{"name": "http", "port": bport}]}}
    ctl.table = routes.build([{
        "metadata": {"name": "site", "namespace": "d", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"ingressClassName": "ours", "rules": [{"host": "web.test", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
            {"path": "/gone", "pathType": "Prefix", "backend": {"service": {"name": "gone", "port": {"number": 80}}}},
        ]}}]}}], "ours", False)
    ctl._session = aiohttp.ClientSession()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ctl.handle)
    front = web.AppRunner(app)
    await front.setup()
    site = web.TCPSite(front, "127.0.0.1", 0)
    await site.start()
    fport = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{fport}/a/b?x=1", headers={"Host": "web.test"}) as r:
                assert r.status == 200
                assert await r.text() == "/a/b?x=1|web.test|web.test|http"
                assert r.headers.get("Set-Cookie") == "a=1"
            async with s.get(f"http://127.0.0.1:{fport}/", headers={"Host": "other.test"}) as r:
                assert r.status == 404 and await r.text() == "default backend - 404\n"
            async with s.get(f"http://127.0.0.1:{fport}/gone", headers={"Host": "web.test"}) as r:
                assert r.status == 503 and "d/gone" in await r.text()
            async with s.ws_connect(f"http://127.0.0.1:{fport}/ws", headers={"Host": "web.test"},
                                    protocols=("chat",)) as ws:
                assert ws.protocol == "chat"
                await ws.send_str("hi")
                assert (await ws.receive()).data == "echo:hi"
                await ws.send_bytes(b"abc")
                assert (await ws.receive()).data == b"cba"
    finally:
        await ctl._session.close()
        await front.cleanup()
        await backend.cleanup()
