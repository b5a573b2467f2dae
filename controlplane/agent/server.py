"""The agent's authenticated HTTPS endpoint (the kubelet's port): container logs, exec and
attach over WebSocket (``v5.channel.k8s.io`` / ``v4.channel.k8s.io``), port forwarding
(``portforward.py``: SPDY/3.1 tunnelled in a WebSocket, or the WebSocket channel protocol),
stats, metrics and health.

Statistics as the kubelet serves them (``stats.py`` reads, ``stats_format.py`` writes):
``/stats/summary`` (Summary API), ``/metrics/resource`` (metrics-server's source),
``/metrics/cadvisor`` (container metrics) and ``/metrics`` (the agent's own ``kubelet_*``),
authorized as ``nodes/stats`` and ``nodes/metrics`` as the kubelet's are.

TLS with the node's serving certificate; a client certificate is asked for (and verified
against the cluster CA) but not required. Every request is authenticated and authorized
through the apiserver as the kubelet does (``auth.DelegatedAuth``: client certificate or
TokenReview, then a SubjectAccessReview on ``nodes/proxy``, ``nodes/log``, ``nodes/stats``,
``nodes/metrics``, ...): 401 without credentials, 403 when RBAC says no. The apiserver itself
comes with its ``kube-apiserver-kubelet-client`` certificate. Paths follow the kubelet's:
``/containerLogs/{ns}/{pod}/{container}`` (follow, previous, tailLines, sinceSeconds,
sinceTime, timestamps, limitBytes), ``/exec/{ns}/{pod}/{container}?command=…&stdin=…``,
``/attach/{ns}/{pod}/{container}?stdin=…&tty=…`` and ``/portForward/{ns}/{pod}[?port=…]``.
Owned by ``agent.Agent``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import json
import time
from typing import Protocol

from aiohttp import WSMsgType, web
from aiohttp.client_exceptions import ClientConnectionResetError

from controlplane.agent import stats_format
from controlplane.agent.auth import DelegatedAuth, Unauthenticated
from controlplane.agent.context import NodeContext
from controlplane.agent.portforward import (CHANNEL_PROTOCOLS, SPDY_PROTOCOL, ChannelSession, SpdySession, dial_address,
                                          dial_pod)
from controlplane.agent.pod_worker import PodWorker
from controlplane.agent.stats import StatsProvider
from controlplane.log import get_logger
from controlplane.machinery import promtext
from controlplane.machinery.timestamps import parse_time
from controlplane.runtime import cgroups
from controlplane.runtime.interface import RuntimeError_
from controlplane.runtime.logs import follow_log, read_log
from controlplane.runtime.runc import set_winsize

log = get_logger(__name__)
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def _true(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


class ServerHost(NodeContext, Protocol):
    """What the endpoint needs of the agent beyond ``NodeContext``: its pod workers and
    statistics."""

    workers: dict[str, PodWorker]
    stats: StatsProvider

    def worker_for(self, namespace: str, name: str) -> PodWorker | None: ...


class AgentServer:
    def __init__(self, agent: ServerHost) -> None:
        self.agent = agent
        self.auth = DelegatedAuth(agent.client, agent.cfg.node)
        self.app = web.Application(middlewares=[self._auth])
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        self.app.router.add_get("/exec/{ns}/{pod}/{container}", self.exec)
        self.app.router.add_post("/exec/{ns}/{pod}/{container}", self.exec)
        self.app.router.add_get("/attach/{ns}/{pod}/{container}", self.attach)
        self.app.router.add_post("/attach/{ns}/{pod}/{container}", self.attach)
        self.app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)
        self.app.router.add_post("/portForward/{ns}/{pod}", self.port_forward)
        self.app.router.add_get("/stats/summary", self.stats)
        self.app.router.add_get("/stats/summary/", self.stats)
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/metrics/resource", self.resource_metrics)
        self.app.router.add_get("/metrics/cadvisor", self.cadvisor_metrics)
        self.runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        peercert = None
        if request.transport is not None:
            peercert = request.transport.get_extra_info("peercert")
        try:
            caller = await self.auth.authenticate(peercert, request.headers)
        except Unauthenticated:
            return web.Response(status=401, text="Unauthorized")
        allowed, why = await self.auth.authorize(caller, request.method, request.path)
        if not allowed:
            return web.Response(status=403, text=why)
        return await handler(request)

    def _ssl(self) -> ssl.SSLContext | None:
        cfg = self.agent.cfg
        if not (cfg.tls_cert_file and cfg.tls_key_file):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cfg.tls_cert_file), str(cfg.tls_key_file))
        if cfg.client_ca_file:
            ctx.load_verify_locations(str(cfg.client_ca_file))
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    async def start(self) -> int:
        """Listen on the configured address and port; returns the bound port."""
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.agent.cfg.address, self.agent.cfg.port, ssl_context=self._ssl())
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _worker(self, request: web.Request):  # type: ignore[no-untyped-def]
        ns, pod, container = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        w = self.agent.worker_for(ns, pod)
        if w is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" not found on node {self.agent.cfg.node}')
        if w.state(container) is None:
            raise web.HTTPBadRequest(text=f"container {container} is not valid for pod {pod}")
        return w, container

    async def logs(self, request: web.Request) -> web.StreamResponse:
        w, container = self._worker(request)
        q = request.query
        previous = _true(q.get("previous"))
        path = w.log_file(container, previous)
        if path is None:
            if previous:
                raise web.HTTPBadRequest(text=f'previous terminated container "{container}" in pod "{w.name}" not found')
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{w.name}" is waiting to start: '
                                          f'{w.state(container).reason}')
        since = None
        if q.get("sinceSeconds"):
            since = time.time() - float(q["sinceSeconds"])
        elif q.get("sinceTime"):
            since = parse_time(q["sinceTime"])
        tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
        ts = _true(q.get("timestamps"))
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        body, offset = await asyncio.to_thread(read_log, path, tail, since, ts, limit)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(body)
        if _true(q.get("follow")) and not previous:
            attempt = path.name
            c = w.state(container)

            def done() -> bool:
                return c is None or not w.is_running(container) or w.log_file(container, False) != path \
                    or w.finished or path.name != attempt

            try:
                async for chunk in follow_log(path, offset, ts, done):
                    await resp.write(chunk)
            except (ConnectionResetError, ClientConnectionResetError):
                return resp  # the reader went away
        await resp.write_eof()
        return resp

    async def exec(self, request: web.Request) -> web.StreamResponse:
        w, container = self._worker(request)
        cid = w.running_cid(container)
        q = request.query
        cmd = q.getall("command", [])
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        proto = ws.ws_protocol or ""
        if cid is None or not cmd:
            await self._send_status(ws, proto, None, f'container {container} is not running' if cid is None
                                    else "you must specify at least one command for the container")
            await ws.close()
            return ws
        want_stdin = _true(q.get("stdin")) or _true(q.get("input"))
        if _true(q.get("tty")):
            return await self._exec_tty(ws, proto, cid, cmd)
        try:
            proc = await self.agent.runtime.exec_process(cid, cmd, stdin=want_stdin)
        except RuntimeError_ as e:
            await self._send_status(ws, proto, None, e.message)
            await ws.close()
            return ws

        async def pump(stream: asyncio.StreamReader | None, ch: int) -> None:
            if stream is None:
                return
            while True:
                data = await stream.read(32768)
                if not data:
                    return
                if not ws.closed:
                    await ws.send_bytes(bytes([ch]) + data)

        async def feed() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                ch, data = msg.data[0], msg.data[1:]
                if ch == STDIN and proc.stdin is not None and data:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
                elif ch == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                    proc.stdin.close()
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()

        feeder = asyncio.get_running_loop().create_task(feed())
        try:
            await asyncio.gather(pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR))
            code = await proc.wait()
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await self._send_status(ws, proto, code, None, cmd)
        await ws.close()
        return ws

    async def _exec_tty(self, ws: web.WebSocketResponse, proto: str, cid: str, cmd: list[str]) -> web.WebSocketResponse:
        """Exec on a terminal: pty output on channel 1, channel 4 resizes, channel 0 types."""
        try:
            proc, master = await self.agent.runtime.exec_tty(cid, cmd)
        except RuntimeError_ as e:
            await self._send_status(ws, proto, None, e.message)
            await ws.close()
            return ws
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(master)
            out.put_nowait(data)

        loop.add_reader(master, readable)

        async def pump() -> None:
            while True:
                data = await out.get()
                if not data:
                    return
                if not ws.closed:
                    await ws.send_bytes(bytes([STDOUT]) + data)

        async def feed() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                ch, data = msg.data[0], msg.data[1:]
                if ch == STDIN and data:
                    os.write(master, data)
                elif ch == RESIZE:
                    try:
                        size = json.loads(data)
                        set_winsize(master, int(size.get("Height", 24)), int(size.get("Width", 80)))
                    except (ValueError, OSError):
                        pass
                elif ch == CLOSE and data[:1] == bytes([STDIN]):
                    os.write(master, b"\x04")

        feeder = loop.create_task(feed())
        try:
            await pump()
            code = await proc.wait()
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            loop.remove_reader(master)
            os.close(master)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await self._send_status(ws, proto, code, None, cmd)
        await ws.close()
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """``kubectl attach``: the container's own stdin/stdout/stderr (or terminal) through its
        conmon, from now on, until the container exits (Success on channel 3) or the client
        detaches."""
        w, container = self._worker(request)
        cid = w.running_cid(container)
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        proto = ws.ws_protocol or ""
        q = request.query
        want_stdin = _true(q.get("stdin")) or _true(q.get("input"))
        want = {"stdout": _true(q.get("stdout")) or _true(q.get("output")), "stderr": _true(q.get("stderr"))}
        try:
            if cid is None:
                raise RuntimeError_("NotRunning", f"container {container} is not running")
            session = await self.agent.runtime.attach(cid)
        except RuntimeError_ as e:
            await self._send_status(ws, proto, None, e.message)
            await ws.close()
            return ws
        if not want_stdin:
            session.stdin = False

        async def pump() -> None:
            while (out := await session.read()) is not None:
                stream, chunk = out
                ch = STDOUT if session.tty or stream == "stdout" else STDERR
                if want["stdout" if ch == STDOUT else "stderr"] and not ws.closed:
                    await ws.send_bytes(bytes([ch]) + chunk)

        async def feed() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                ch, data = msg.data[0], msg.data[1:]
                if ch == STDIN and data:
                    await session.write(data)
                elif ch == RESIZE:
                    try:
                        size = json.loads(data)
                        await session.resize(int(size.get("Height", 24)), int(size.get("Width", 80)))
                    except (ValueError, OSError, AttributeError):
                        pass
                elif ch == CLOSE and data[:1] == bytes([STDIN]):
                    session.close_stdin()

        loop = asyncio.get_running_loop()
        pumper, feeder = loop.create_task(pump()), loop.create_task(feed())
        try:
            await asyncio.wait([pumper, feeder], return_when=asyncio.FIRST_COMPLETED)
            if pumper.done() and not pumper.cancelled() and pumper.exception() is None:
                await self._send_status(ws, proto, 0, None)  # the container's streams ended
        except (ConnectionError, ClientConnectionResetError):
            pass
        finally:
            for t in (pumper, feeder):
                t.cancel()
            await asyncio.gather(pumper, feeder, return_exceptions=True)
            session.close()
        await ws.close()
        return ws

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """``/portForward/{ns}/{pod}``: SPDY/3.1 tunnelled in the WebSocket (kubectl, through
        the apiserver), or the WebSocket channel protocol for ``?port=`` (``ports`` accepted)."""
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        w = self.agent.worker_for(ns, pod)
        sandbox = w.sandbox if w is not None else None
        if sandbox is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" not found on node {self.agent.cfg.node}')
        ws = web.WebSocketResponse(protocols=(SPDY_PROTOCOL, *CHANNEL_PROTOCOLS), max_msg_size=0)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="port forwarding needs a WebSocket upgrade "
                                          f"({SPDY_PROTOCOL} or {CHANNEL_PROTOCOLS[0]})")
        ports: list[int] = []
        if ws.can_prepare(request).protocol != SPDY_PROTOCOL:
            try:
                for v in request.query.getall("port", []) + request.query.getall("ports", []):
                    for p in v.split(","):
                        port = int(p)
                        if not 0 < port < 65536:
                            raise ValueError(p)
                        ports.append(port)
            except ValueError as e:
                raise web.HTTPBadRequest(text=f"unable to parse {e} as a port") from None
            if not ports:
                raise web.HTTPBadRequest(text='query parameter "port" is required')
        await ws.prepare(request)

        to_pod_ip = request.query.get("address") == "podIP" and bool(sandbox.ip)

        async def dial(port: int):  # type: ignore[no-untyped-def]
            if to_pod_ip:
                return await dial_address(sandbox.netns, sandbox.ip, port)
            return await dial_pod(sandbox.netns, sandbox.id, port)

        async def messages():  # type: ignore[no-untyped-def]
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    yield msg.data

        try:
            if ws.ws_protocol == SPDY_PROTOCOL:
                await SpdySession(ws.send_bytes, dial, sandbox.id).run(messages())
            else:
                await ChannelSession(ws.send_bytes, dial, sandbox.id, ports).run(messages())
        except (ConnectionError, ClientConnectionResetError):
            pass
        await ws.close()
        return ws

    @staticmethod
    async def _send_status(ws: web.WebSocketResponse, proto: str, code: int | None, error: str | None,
                           cmd: list[str] | None = None) -> None:
        if ws.closed:
            return
        if code == 0:
            st: dict = {"metadata": {}, "status": "Success"}
        elif code is not None:
            st = {"metadata": {}, "status": "Failure",
                  "message": f"command terminated with non-zero exit code: error executing command {cmd}, exit code {code}",
                  "reason": "NonZeroExitCode",
                  "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        else:
            st = {"metadata": {}, "status": "Failure", "message": error or "exec failed", "reason": "InternalError"}
        payload = json.dumps(st).encode() if proto.startswith(("v4", "v5")) else (error or "").encode()
        await ws.send_bytes(bytes([ERROR]) + payload)

    async def metrics(self, _: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        m = self.agent.metrics
        workers = [w for w in self.agent.workers.values() if not w.finished]
        m.running_pods.set(sum(1 for w in workers if w.sandbox is not None))
        states: dict[str, int] = {"running": 0, "exited": 0, "created": 0}
        for st in self.agent.runtime.list_containers():
            states[st.state] = states.get(st.state, 0) + 1
        for k, v in states.items():
            m.running_containers.labels(k).set(v)
        return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stats(self, _: web.Request) -> web.Response:
        """``/stats/summary``: the Summary API (``stats_format.summary``)."""
        return web.json_response(stats_format.summary(await self.agent.stats.sample()))

    async def resource_metrics(self, _: web.Request) -> web.Response:
        """``/metrics/resource``: what metrics-server scrapes (kubelet names, with timestamps)."""
        try:
            text = stats_format.resource_metrics(await self.agent.stats.sample())
        except (OSError, RuntimeError_) as e:
            log.warning("resource metrics failed", error=str(e))
            text = stats_format.resource_metrics(await self.agent.stats.sample(), scrape_error=True)
        return web.Response(body=text.encode(), headers={"Content-Type": promtext.CONTENT_TYPE})

    async def cadvisor_metrics(self, _: web.Request) -> web.Response:
        """``/metrics/cadvisor``: cAdvisor's container metrics (``id`` = the cgroup path)."""
        node = getattr(self.agent.runtime, "node", self.agent.cfg.node)
        text = stats_format.cadvisor_metrics(
            await self.agent.stats.sample(), pod_cgroup=lambda uid: cgroups.pod_path(node, uid),
            container_cgroup=lambda uid, cid: cgroups.container_path(node, uid, cid))
        return web.Response(body=text.encode(), headers={"Content-Type": promtext.CONTENT_TYPE})
