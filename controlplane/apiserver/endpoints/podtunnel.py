"""A TCP connection from the apiserver to a port of a pod, through the pod's node agent.

kube-apiserver dials pod IPs itself; here pod addresses live in network namespaces the host
may not route to (and a node may be another machine), so the connection runs through the
agent's ``/portForward/{ns}/{pod}?port=P`` in the kubelet's WebSocket channel protocol
(``v4.channel.k8s.io``: channel 0 carries the data, channel 1 the error, and the agent first
sends the port on each), asking the agent to dial the pod's IP (``address=podIP``) from
inside the pod's network namespace, as kube-apiserver dials it. This keeps working once the host routes to every pod IP. Used by
``httpproxy.py`` (pods/proxy and services/proxy) to speak HTTP to pods.
"""

from __future__ import annotations

import re
import ssl
from typing import Protocol

import aiohttp

from controlplane.apiserver.endpoints import nodeagent
from controlplane.apiserver.endpoints.common import Api

PROTOCOL = "v4.channel.k8s.io"
_DIAL_ERR = re.compile(r"(dial tcp \S+: .*)$")


class TunnelError(Exception):
    """The pod's port could not be reached; ``str`` is Go's dial error for it
    (``dial tcp 10.42.0.5:8080: connect: connection refused``)."""


class PodTunnel:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, target: str) -> None:
        self.session = session
        self.ws = ws
        self.target = target  # "podIP:port", for messages
        self._skip = {0: 2, 1: 2}  # the port the agent sends first on each channel
        self._error = b""
        self._received = False

    @classmethod
    async def open(cls, api: Api, pod: dict, port: int) -> PodTunnel:
        md = pod["metadata"]
        ip = (pod.get("status") or {}).get("podIP") or ""
        base = await nodeagent.pod_agent_base(api, pod)
        s = nodeagent.session(api)
        url = f"{nodeagent.ws_url(base)}/portForward/{md['namespace']}/{md['name']}?port={port}&address=podIP"
        try:
            ws = await s.ws_connect(url, protocols=[PROTOCOL], max_msg_size=0)
        except (aiohttp.ClientError, OSError) as e:
            await s.close()
            raise TunnelError(f"error dialing backend: {e}") from e
        return cls(s, ws, f"{ip}:{port}")

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(b"\x00" + data)

    async def recv(self) -> bytes:
        """The next bytes from the pod; ``b""`` at the end; ``TunnelError`` when the agent
        reported that the port could not be reached."""
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.BINARY:
                if self._error and not self._received:
                    text = self._error.decode(errors="replace")
                    m = _DIAL_ERR.search(text)
                    raise TunnelError(m.group(1) if m else text)
                return b""
            if not msg.data:
                continue
            ch, body = msg.data[0], msg.data[1:]
            skip = self._skip.get(ch, 0)
            if skip:
                self._skip[ch] = max(0, skip - len(body))
                body = body[skip:]
            if not body:
                continue
            if ch == 0:
                self._received = True
                return body
            if ch == 1:
                self._error += body

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class Tunnel(Protocol):
    target: str

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    async def close(self) -> None: ...


class TLSTunnel:
    """TLS over a tunnel (``https:`` in a proxy URL): OpenSSL through ``ssl.SSLObject`` on
    memory buffers. The server's certificate is not verified, as kube-apiserver's proxy
    transport does not (``InsecureSkipVerify``: pods and Services are addressed by IP)."""

    def __init__(self, inner: Tunnel) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        self.inner = inner
        self.target = inner.target
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._in, self._out, server_side=False)

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self.inner.send(data)

    async def _more(self) -> bool:
        data = await self.inner.recv()
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                await self._flush()
                return
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._more():
                    raise TunnelError(f"remote error: tls: connection to {self.target} closed during the handshake") from None
            except ssl.SSLError as e:
                if e.reason == "WRONG_VERSION_NUMBER":  # the answer is not TLS: Go's words for it
                    raise TunnelError("tls: first record does not look like a TLS handshake") from None
                raise TunnelError(f"remote error: tls: {e.reason or e}") from None

    async def send(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def recv(self) -> bytes:
        while True:
            try:
                return self._tls.read(65536)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._more():
                    continue  # the EOF makes the next read end (or raise)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def close(self) -> None:
        await self.inner.close()
