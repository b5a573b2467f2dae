"""One WebSocket per browser page carrying all its watch streams and log streams.

Browsers open at most six HTTP/1.1 connections to one origin, and a page of this dashboard
watches more resources than that at once (pods, events, nodes, the workload kinds...), so
streams are multiplexed over one socket. The browser sends JSON requests:

    {"op": "watch", "id": "w1", "path": "/api/v1/pods", "query": "resourceVersion=12&allowWatchBookmarks=true"}
    {"op": "log",   "id": "l1", "path": "/api/v1/namespaces/ns/pods/p/log", "query": "follow=true&container=c"}
    {"op": "cancel", "id": "w1"}

and receives, per stream, the apiserver's watch events as they come (several events of one
read in one frame, spliced in as the apiserver wrote them, never re-encoded):

    {"id": "w1", "events": [{"type": "ADDED", "object": {...}}, ...]}
    {"id": "l1", "data": "log text"}
    {"id": "w1", "end": true, "status": {Status}}   (an error answer: 403, 410, ...)
    {"id": "w1", "end": true}                        (the server closed the stream: resume)

Each stream is an ordinary request to the apiserver with the user's credentials, so RBAC
applies per stream. A page that does not read its frames fast enough (``MAX_PENDING`` frames
queued) is disconnected; it reconnects and resumes from the resourceVersions it holds.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from typing import Any

import aiohttp

from controlplane.dashboard.upstream import Upstream
from controlplane.log import get_logger

log = get_logger(__name__)
MAX_PENDING = 20000
WATCH_PATH = re.compile(r"^/(api/v1|apis/[a-z0-9.-]+/[a-z0-9]+)(/namespaces/[a-z0-9.-]+)?/[a-z0-9.-]+$")
LOG_PATH = re.compile(r"^/api/v1/namespaces/[a-z0-9.-]+/pods/[a-z0-9.-]+/log$")
QUERY = re.compile(r"^[A-Za-z0-9%=&._~+,!()*:-]*$")


class Closed(Exception):
    pass


class Mux:
    def __init__(self, ws: Any, upstream: Upstream) -> None:
        self.ws = ws
        self.upstream = upstream
        self.streams: dict[str, asyncio.Task] = {}
        self.out: asyncio.Queue[str | None] = asyncio.Queue()

    async def run(self) -> None:
        writer = asyncio.ensure_future(self._write())
        try:
            while True:
                msg = await self.ws.recv()
                if msg is None:
                    return
                self._handle(msg)
                if writer.done():
                    return
        finally:
            for t in self.streams.values():
                t.cancel()
            await asyncio.gather(*self.streams.values(), return_exceptions=True)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def close(self) -> None:
        """Called when the session ends: stop everything; the page finds itself signed out."""
        self.out.put_nowait(None)

    def _handle(self, raw: str | bytes) -> None:
        try:
            req = json.loads(raw)
            op, sid = req["op"], str(req["id"])
        except (ValueError, KeyError, TypeError):
            self._send({"id": None, "end": True, "error": "malformed request"})
            return
        if op == "cancel":
            t = self.streams.pop(sid, None)
            if t is not None:
                t.cancel()
            return
        path, query = str(req.get("path") or ""), str(req.get("query") or "")
        pattern = WATCH_PATH if op == "watch" else LOG_PATH if op == "log" else None
        if pattern is None or not pattern.match(path) or not QUERY.match(query) or sid in self.streams:
            self._send({"id": sid, "end": True, "error": f"bad request: {op} {path}"})
            return
        coro = self._watch(sid, path, query) if op == "watch" else self._log(sid, path, query)
        task = asyncio.ensure_future(coro)
        self.streams[sid] = task
        task.add_done_callback(lambda _t, s=sid: self._done(s, _t))

    def _done(self, sid: str, task: asyncio.Task) -> None:
        if self.streams.get(sid) is task:
            del self.streams[sid]

    def _send(self, frame: dict[str, Any] | str) -> None:
        if self.out.qsize() > MAX_PENDING:
            log.warning("dashboard page too slow; disconnecting it", pending=self.out.qsize())
            self.out.put_nowait(None)
            return
        self.out.put_nowait(frame if isinstance(frame, str) else json.dumps(frame))

    async def _write(self) -> None:
        while True:
            frame = await self.out.get()
            if frame is None:
                await self.ws.close()
                return
            await self.ws.send(frame)

    async def _error_end(self, sid: str, r: aiohttp.ClientResponse) -> None:
        raw = await r.read()
        try:
            status = json.loads(raw)
        except ValueError:
            status = {"kind": "Status", "status": "Failure", "code": r.status,
                      "message": raw.decode("utf-8", "replace").strip() or f"HTTP {r.status}"}
        self._send({"id": sid, "end": True, "status": status})

    async def _watch(self, sid: str, path: str, query: str) -> None:
        q = "watch=true" + (f"&{query}" if query else "")
        head = '{"id":' + json.dumps(sid) + ',"events":['
        try:
            async with self.upstream.session.get(self.upstream.url(path, q)) as r:
                if r.status != 200:
                    await self._error_end(sid, r)
                    return
                buf = b""
                async for chunk in r.content.iter_any():
                    buf += chunk
                    if b"\n" not in buf:
                        continue
                    complete, _, buf = buf.rpartition(b"\n")
                    lines = [ln for ln in complete.split(b"\n") if ln.strip()]
                    if lines:
                        self._send(head + b",".join(lines).decode() + "]}")
            self._send({"id": sid, "end": True})
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, UnicodeDecodeError) as e:
            self._send({"id": sid, "end": True, "error": f"watch failed: {e}"})

    async def _log(self, sid: str, path: str, query: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            async with self.upstream.session.get(self.upstream.url(path, query)) as r:
                if r.status != 200:
                    await self._error_end(sid, r)
                    return
                async for chunk in r.content.iter_any():
                    text = decoder.decode(chunk)
                    if text:
                        self._send({"id": sid, "data": text})
            tail = decoder.decode(b"", final=True)
            if tail:
                self._send({"id": sid, "data": tail})
            self._send({"id": sid, "end": True})
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientError as e:
            self._send({"id": sid, "end": True, "error": f"log stream failed: {e}"})
