"""The REST client under faults, against a real HTTP server on loopback: ``Retry-After``
answers (429 / 5xx) are retried as client-go retries them, others are not; a refused
connection is tried on the next endpoint at once (a 503 ``ApiStatusError`` when every endpoint
refuses)."""

from __future__ import annotations

import contextlib

import pytest
from aiohttp import web

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.etcd_process import free_port

pytestmark = pytest.mark.integration


async def _ok() -> web.Response:
    return web.Response(text="ok")


@contextlib.asynccontextmanager
async def flaky_server():
    """Answers ``/flaky/N``: N times 429 with Retry-After: 0, then 200; ``/busy``: 503 without it;
    ``/readyz``: 200 (the balancer's health check)."""
    seen: dict[str, int] = {}

    async def flaky(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        k = request.path
        seen[k] = seen.get(k, 0) + 1
        if seen[k] <= n:
            return web.json_response({"kind": "Status", "code": 429, "reason": "TooManyRequests",
                                      "message": "too many requests"}, status=429, headers={"Retry-After": "0"})
        return web.json_response({"ok": True, "tries": seen[k]})

    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "code": 503, "reason": "ServiceUnavailable", "message": "x"},
                                 status=503)

    app = web.Application()
    app.router.add_get("/flaky/{n}", flaky)
    app.router.add_get("/busy", busy)
    app.router.add_get("/readyz", lambda request: _ok())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("lite", [False, True], ids=["aiohttp", "lite"])
async def test_retry_after_is_honoured(lite):
    async with flaky_server() as url, RestClient(url, lite_http=lite) as c:
        assert (await c.request("GET", "/flaky/3"))["tries"] == 4
        with pytest.raises(ApiStatusError) as e:
            await c.request("GET", "/flaky/20")  # more than MAX_RETRIES: the 429 comes through
        assert e.value.code == 429
        with pytest.raises(ApiStatusError) as e:
            await c.request("GET", "/busy")  # no Retry-After: not retried
        assert e.value.code == 503


@pytest.mark.parametrize("lite", [False, True], ids=["aiohttp", "lite"])
async def test_refused_connection_moves_to_the_next_endpoint(lite):
    """Nothing was sent on a refused connection: the balancer tries the next endpoint at once
    (client/balancer.py); with every endpoint refusing, the caller gets a 503."""
    dead = f"http://127.0.0.1:{free_port()}"
    async with flaky_server() as url, RestClient(f"{dead},{url}", lite_http=lite) as c:
        assert c.base_url == dead
        assert (await c.request("GET", "/flaky/0"))["ok"]
        assert c.base_url == url
        assert (await c.request("GET", "/flaky/0"))["ok"]
    other = f"http://127.0.0.1:{free_port()}"
    async with RestClient(f"{dead},{other}", lite_http=lite) as c:
        with pytest.raises(ApiStatusError) as e:
            await c.request("GET", "/x")
        assert e.value.code == 503
