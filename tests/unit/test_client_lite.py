"""The lean HTTP/1.1 client behind ``RestClient(lite_http=True)`` against a scripted in-process
server: response framings (Content-Length, chunked split across writes, read-to-close, 204),
keep-alive reuse, the retry when the server closed an idle connection, timeouts, error
Statuses, and what goes on the wire (request line, query, headers, body)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.client.lite import LitePool
from controlplane.client.rest import ApiStatusError, RestClient

OK = b'{"kind":"Status","status":"Success"}'


def resp(status: int, body: bytes, extra: str = "", length: bool = True) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class Server:
    """Answers each request with the next scripted reply: bytes, a list of byte chunks
    (written separately), "close" (close without answering) or "hang" (never answer)."""

    def __init__(self, replies: list) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Server":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                reply = self.replies.pop(0)
                if reply == "close":
                    break
                if reply == "hang":
                    await asyncio.sleep(5)
                    break
                for chunk in reply if isinstance(reply, list) else [reply]:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if b"Connection: close" in (reply[0] if isinstance(reply, list) else reply):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("reply,expected", [
    (resp(201, OK), {"kind": "Status", "status": "Success"}),
    ([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      b"5\r\n{\"a\":\r\n", b"2\r\n1}\r\n0\r\n\r\n"], {"a": 1}),
    (resp(200, b'{"b": 2}', "Connection: close\r\n", length=False), {"b": 2}),
    (b"HTTP/1.1 204 No Content\r\n\r\n", None),
    ([resp(200, b'{"items": [' + b",".join([b'{"n": 1}'] * 3000) + b"]}")[:-100],
      resp(200, b'{"items": [' + b",".join([b'{"n": 1}'] * 3000) + b"]}")[-100:]], {"items": [{"n": 1}] * 3000}),
])
async def test_response_framings(reply, expected):
    async with Server([reply]) as srv:
        c = RestClient(srv.url, lite_http=True)
        try:
            assert await c.request("GET", "/api/v1/x") == expected
        finally:
            await c.close()


async def test_request_on_the_wire_and_keep_alive_reuse():
    async with Server([resp(201, OK), resp(200, b'{"items": []}')]) as srv:
        c = RestClient(srv.url, headers={"Authorization": "Bearer t0k"}, user_agent="scheduler", lite_http=True)
        try:
            await c.bind("ns1", "p1", "node-a")
            await c.request("GET", "/api/v1/pods", params={"labelSelector": "app=web,tier!=db", "limit": 5,
                                                           "watch": None, "allowWatchBookmarks": True})
        finally:
            await c.close()
        assert srv.connections == 1  # the second request reused the connection
        first, second = srv.requests
        head, _, body = first.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /api/v1/namespaces/ns1/pods/p1/binding HTTP/1.1"
        hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        assert hdrs["user-agent"] == "scheduler" and hdrs["authorization"] == "Bearer t0k"
        assert hdrs["content-type"] == "application/json" and int(hdrs["content-length"]) == len(body)
        assert json.loads(body) == {"apiVersion": "v1", "kind": "Binding",
                                    "metadata": {"name": "p1", "namespace": "ns1"},
                                    "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
        assert second.split(b"\r\n")[0] == (b"GET /api/v1/pods?labelSelector=app%3Dweb%2Ctier%21%3Ddb&limit=5"
                                           b"&allowWatchBookmarks=true HTTP/1.1")


async def test_idle_connection_closed_by_server_is_retried_once():
    async with Server([resp(200, OK), "close", resp(200, b'{"again": true}')]) as srv:
        c = RestClient(srv.url, lite_http=True)
        try:
            await c.request("GET", "/a")
            assert await c.request("GET", "/b") == {"again": True}
        finally:
            await c.close()
        assert srv.connections == 2 and [r.split(b" ")[1] for r in srv.requests] == [b"/a", b"/b", b"/b"]


async def test_fresh_connection_failure_is_not_retried():
    async with Server(["close", resp(200, OK)]) as srv:
        c = RestClient(srv.url, lite_http=True)
        try:
            with pytest.raises(ApiStatusError) as e:
                await c.request("POST", "/a", body={"x": 1})
            assert e.value.code == 503
        finally:
            await c.close()
        assert len(srv.requests) == 1


async def test_error_status_and_timeout():
    status = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                         "message": "pod p is already assigned", "code": 409}).encode()
    async with Server([resp(409, status), "hang"]) as srv:
        c = RestClient(srv.url, lite_http=True, request_timeout=0.3)
        try:
            with pytest.raises(ApiStatusError) as e:
                await c.bind("d", "p", "n")
            assert e.value.conflict and e.value.message == "pod p is already assigned"
            with pytest.raises(ApiStatusError) as e2:
                await c.request("GET", "/slow")
            assert e2.value.code == 503
        finally:
            await c.close()


async def test_unreachable_server_is_a_503():
    c = RestClient("http://127.0.0.1:9", lite_http=True)
    with pytest.raises(ApiStatusError) as e:
        await c.request("GET", "/x")
    assert e.value.code == 503
    await c.close()


async def test_pool_limits_concurrent_connections():
    async with Server([resp(200, OK)] * 20) as srv:
        pool = LitePool(srv.url, {}, limit=3)
        try:
            out = await asyncio.gather(*(pool.request("GET", f"/{i}") for i in range(20)))
        finally:
            await pool.close()
        assert all(st == 200 for st, _, _ in out)
        assert srv.connections <= 3


@pytest.mark.parametrize("lite", [True, False])
async def test_a_request_brings_its_own_decoder_for_json_and_errors_stay_statuses(lite):
    """``request(decode=...)``: the raw JSON body goes to the caller's decoder (the HPA's typed
    PodMetrics decoder, a PUT whose answer nobody reads); an error is still an ApiStatusError,
    never handed to the decoder."""
    err = json.dumps({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                      "message": "nope"}).encode()
    async with Server([resp(200, b'{"items":[1,2]}'), resp(404, err)]) as srv:
        c = RestClient(srv.url, lite_http=lite)
        seen: list[bytes] = []
        try:
            assert await c.request("GET", "/a", decode=lambda raw: seen.append(raw) or "decoded") == "decoded"
            assert seen == [b'{"items":[1,2]}']
            with pytest.raises(ApiStatusError) as e:
                await c.request("GET", "/b", decode=lambda raw: seen.append(raw))
            assert e.value.code == 404 and e.value.message == "nope" and len(seen) == 1
        finally:
            await c.close()
