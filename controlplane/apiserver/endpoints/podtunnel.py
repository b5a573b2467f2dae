"""A TCP connection from the apiserver to a port of a pod, through the pod's node agent.

kube-apiserver dials pod IPs itself; here pod addresses live in network namespaces the host
may not route to (and a node may be another machine), so the connection runs through the
agent's ``/portForward/{ns}/{pod}?port=P`` in the kubelet's WebSocket channel protocol
(``v4.channel.k8s.io``: channel 0 carries the data, channel 1 the error, and the agent first
sends the port on each). This keeps working once the host routes to every pod IP. Used by
``httpproxy.py`` (pods/proxy and services/proxy) to speak HTTP to pods.
"""

from __future__ import annotations

import re

import aiohttp

from controlplane.apiserver.endpoints import nodeagent
from controlplane.apiserver.endpoints.common import Api

PROTOCOL = "v4.channel.k8s.io"
_CONNECT_ERR = re.compile(r"IPv4: dial tcp4 \S+: (.*?) IPv6")


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
        url = f"{nodeagent.ws_url(base)}/portForward/{md['namespace']}/{md['name']}?port={port}"
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
                    m = _CONNECT_ERR.search(self._error.decode(errors="replace"))
                    raise TunnelError(f"dial tcp {self.target}: {m.group(1) if m else self._error.decode()}")
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
