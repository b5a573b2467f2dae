"""The proxy subresources' URL handling (``endpoints/httpproxy.py``): Kubernetes'
``SplitSchemeNamePort``, the proxy prefix and rest of a path, what counts as an upgrade,
redirect ``Location`` rewriting, and the authorization attributes of proxy and connect paths."""

from __future__ import annotations

import pytest

from controlplane.apiserver.authorization.attributes import request_attributes
from controlplane.apiserver.endpoints import httpproxy
from controlplane.machinery.userinfo import UserInfo


@pytest.mark.parametrize("id_,want", [
    ("web", ("", "web", "")),
    ("web:8080", ("", "web", "8080")),
    ("web:http", ("", "web", "http")),
    ("https:web:443", ("https", "web", "443")),
    ("http:web:", ("http", "web", "")),
    ("ftp:web:21", None),
    (":80", None),
    ("a:b:c:d", None),
])
def test_split_scheme_name_port(id_, want):
    assert httpproxy.split_scheme_name_port(id_) == want


@pytest.mark.parametrize("connection,upgrade,want", [
    ("Upgrade", "websocket", True),
    ("keep-alive, Upgrade", "SPDY/3.1", True),
    ("upgrade", "echo", True),
    ("Upgrade", "", False),  # nothing to upgrade to
    ("keep-alive", "websocket", False),  # Upgrade without Connection: upgrade is not asked for
    ("", "", False),
])
def test_is_upgrade(connection, upgrade, want):
    assert httpproxy.is_upgrade({"connection": connection, "upgrade": upgrade}) is want


@pytest.mark.parametrize("path,index,want", [
    ("/api/v1/namespaces/x/pods/web:8080/proxy/a/b", 7, ("/api/v1/namespaces/x/pods/web:8080/proxy", "/a/b")),
    ("/api/v1/namespaces/x/services/web/proxy/", 7, ("/api/v1/namespaces/x/services/web/proxy", "/")),
    ("/api/v1/namespaces/x/services/web/proxy", 7, ("/api/v1/namespaces/x/services/web/proxy", "")),
    ("/api/v1/nodes/n1/proxy/metrics/cadvisor", 5, ("/api/v1/nodes/n1/proxy", "/metrics/cadvisor")),
])
def test_proxy_split(path, index, want):
    assert httpproxy.proxy_split(path, index) == want


@pytest.mark.parametrize("location,want", [
    ("/sub/", "/P/sub/"),
    ("/sub/?a=1", "/P/sub/?a=1"),
    ("http://10.42.0.5:8080/x", "/P/x"),
    ("https://example.test/elsewhere", "https://example.test/elsewhere"),
    ("relative/path", "relative/path"),
    ("/P/already", "/P/already"),
    ("http://127.0.0.1:8001/x/", "http://127.0.0.1:8001/P/x/"),  # the host the client asked (kubectl proxy)
])
def test_location_rewritten_under_the_proxy(location, want):
    out = dict(httpproxy._response_headers([(b"Location", location.encode()), (b"Connection", b"close"),
                                            (b"Content-Length", b"3"), (b"X-Kept", b"1"),
                                            (b"Access-Control-Allow-Origin", b"*")], "/P", "10.42.0.5:8080",
                                           "127.0.0.1:8001"))
    assert out == {"Location": want, "X-Kept": "1"}


@pytest.mark.parametrize("method,path,verb,resource,sub,name,ns", [
    ("GET", "/api/v1/namespaces/x/pods/web:8080/proxy/a", "get", "pods", "proxy", "web:8080", "x"),
    ("POST", "/api/v1/namespaces/x/services/https:web:443/proxy/", "create", "services", "proxy", "https:web:443", "x"),
    ("DELETE", "/api/v1/nodes/n1/proxy/x", "delete", "nodes", "proxy", "n1", ""),
    ("GET", "/api/v1/namespaces/x/pods/web/portforward", "get", "pods", "portforward", "web", "x"),
    ("POST", "/api/v1/namespaces/x/pods/web/attach", "create", "pods", "attach", "web", "x"),
])
def test_connect_attributes(method, path, verb, resource, sub, name, ns):
    a = request_attributes(UserInfo("u"), method, path, {})
    assert (a.verb, a.resource, a.subresource, a.name, a.namespace) == (verb, resource, sub, name, ns)


# -- TLS inside a tunnel (https: in a proxy URL) ----------------------------------------------
class _SocketTunnel:
    """A plain TCP connection standing in for the agent tunnel."""

    def __init__(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        self.r, self.w, self.target = reader, writer, "127.0.0.1"

    async def send(self, data: bytes) -> None:
        self.w.write(data)
        await self.w.drain()

    async def recv(self) -> bytes:
        return await self.r.read(65536)

    async def close(self) -> None:
        self.w.close()


async def test_tls_tunnel_speaks_to_a_self_signed_server(tmp_path):
    import asyncio
    import ssl

    from controlplane.apiserver.endpoints.podtunnel import TLSTunnel
    from controlplane.pki import certs

    ca = certs.new_ca("test-ca")
    leaf = certs.issue(ca, "pod", sans=["10.0.0.1"], server=True)  # not the address we dial: unverified
    (tmp_path / "c").write_bytes(leaf.cert_pem)
    (tmp_path / "k").write_bytes(leaf.key_pem)
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(tmp_path / "c", tmp_path / "k")

    async def handle(r, w):  # type: ignore[no-untyped-def]
        request = await r.readuntil(b"\r\n\r\n")
        body = b"secure:" + request.split(b" ")[1]
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await w.drain()
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        t = TLSTunnel(_SocketTunnel(*await asyncio.open_connection("127.0.0.1", port)))
        await t.handshake()
        await t.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while chunk := await t.recv():
            got += chunk
        assert got.endswith(b"\r\n\r\nsecure:/x")
        await t.close()
        # a server that does not speak TLS: a handshake error, not a hang
        async def http_only(r, w):  # type: ignore[no-untyped-def]
            await r.read(100)
            w.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            await w.drain()
            w.close()

        plain = await asyncio.start_server(http_only, "127.0.0.1", 0)
        t = TLSTunnel(_SocketTunnel(*await asyncio.open_connection("127.0.0.1", plain.sockets[0].getsockname()[1])))
        from controlplane.apiserver.endpoints.podtunnel import TunnelError
        try:
            await asyncio.wait_for(t.handshake(), 10)
            raise AssertionError("handshake with a plain server succeeded")
        except TunnelError:
            pass
        await t.close()
        plain.close()
    finally:
        srv.close()
