"""watch: a chunked stream of JSON lines ``{"type": ..., "object": ...}``.

Events come from the resource's ``persistence.watchcache.WatchCache`` (one etcd watch per resource, fanned
out in memory, each event encoded once for every watcher). This handler adds what the HTTP
contract needs: the initial state as ADDED events when ``resourceVersion`` is unset/``0`` (a
consistent start when unset), the ``k8s.io/initial-events-end`` BOOKMARK for
``sendInitialEvents``, periodic BOOKMARKs (``allowWatchBookmarks``) and one before the deadline
(``timeoutSeconds``), an ERROR event with a 410 ``Expired`` Status when the start revision is
too old, a 504 ``Too large resource version`` (before any byte of the stream) when the cache has
not reached a requested revision within 3 s, and Table rows when the Accept header asks for them.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints import metrics
from controlplane.apiserver.endpoints.common import Api, parse_rv
from controlplane.apiserver.endpoints.read import selectors, to_table
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps, loads
from controlplane.storage.interface import CompactedError

BOOKMARK_INTERVAL = 30.0
FLUSH_EVERY = 256
MAX_BUFFERED = 32 * 1024 * 1024  # bytes queued for one client before it is cut off


def bookmark(info: ResourceInfo, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return dumps({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version,
                                                 "metadata": meta}}) + b"\n"


def error_event(err: errors.ApiError) -> bytes:
    return dumps({"type": "ERROR", "object": err.status()}) + b"\n"


async def watch(api: Api, request: Request, t: hc.Target) -> HTTPResponse | None:
    info = t.info
    lsel, fsel = selectors(info, request)
    rv_param = request.args.get("resourceVersion")
    send_initial = hc.bool_arg(request, "sendInitialEvents")
    allow_bookmarks = hc.bool_arg(request, "allowWatchBookmarks")
    table = hc.wants_table(request)
    timeout = parse_rv(request.args.get("timeoutSeconds"), what="timeoutSeconds") or random.randint(1800, 3600)
    deadline = time.monotonic() + timeout
    cache = await api.caches.cache_for(info)
    from_rv = parse_rv(rv_param)
    if rv_param in (None, "") or (send_initial and from_rv):
        # a consistent (or not-older-than) start: the cache must have seen that revision first
        await cache.wait_fresh(from_rv or await api.backend.current_revision())
        from_rv = 0
    elif from_rv:
        # a revision the server has not reached: 504 "Too large resource version" after up to 3 s,
        # before the stream starts (the cacher's waitUntilFreshAndBlock)
        await cache.wait_fresh(from_rv)
    if send_initial:
        from_rv = 0
    initial_end = send_initial and allow_bookmarks
    rewrite = (info.is_custom and info.version != info.storage_version)
    old_av = b'"apiVersion":"%s/%s"' % (info.group.encode(), info.storage_version.encode())
    new_av = b'"apiVersion":"%s"' % info.api_version.encode()

    def render(ev: Any) -> bytes:
        if ev.type == "BOOKMARK":
            return bookmark(info, ev.rv, initial_end=True)
        if table:
            return dumps({"type": ev.type, "object": to_table(info, [loads(ev.raw)], request)}) + b"\n"
        if info.converted:
            obj = info.strategy.to_version(info, loads(ev.raw))
            return b'{"type":"' + ev.type.encode() + b'","object":' + dumps(obj) + b"}\n"
        line = ev.json_line()
        return line.replace(old_av, new_av, 1) if rewrite else line

    response = await request.respond(content_type="application/json")
    await response.send(b"")  # headers now (chunked): clients wait for them before reading events
    labels = (info.group, info.version, info.kind)
    try:
        w = await cache.watch(from_rv, t.namespace, lsel, fsel, initial_events_end=initial_end)
    except CompactedError as e:
        await response.send(error_event(errors.gone(
            f"too old resource version: {from_rv} ({e.compact_revision})")))
        await response.eof()
        return None
    metrics.WATCHERS.labels(*labels).inc()
    sent = metrics.WATCH_EVENTS.labels(*labels)
    transport = request.transport
    loop = asyncio.get_running_loop()
    expired = False

    # Events are written straight to the socket as HTTP chunks (Sanic sent the chunked headers
    # and writes the terminating chunk in eof()): no await between taking an event and writing
    # it, so bookmarks written from timer callbacks never overtake an event already taken.
    def write(data: bytes) -> None:
        if transport is None or transport.is_closing():
            w.close("client gone")
            return
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            w.close("client too slow")  # it resumes from its last resourceVersion

    def tick() -> None:
        nonlocal tick_handle
        if w.closed:
            return
        if allow_bookmarks:
            write(bookmark(info, w.bookmark_rv()))
        tick_handle = loop.call_later(BOOKMARK_INTERVAL, tick)

    def expire() -> None:
        nonlocal expired
        expired = True
        w.close("timeout")

    tick_handle = loop.call_later(BOOKMARK_INTERVAL, tick)
    expire_handle = loop.call_later(max(deadline - time.monotonic(), 0.0), expire)
    api.watchers.add(w)
    if api.stopping.is_set():
        w.close("apiserver shutting down")
    try:
        async for ev in w:
            out = [render(ev)]
            while w.pending() and len(out) < FLUSH_EVERY:
                out.append(render(await w.__anext__()))
            write(out[0] if len(out) == 1 else b"".join(out))
            sent.inc(len(out))
        if expired and allow_bookmarks:
            # (the watcher is closed: its bookmark_rv stays at the revision it was closed at, not
            # at what the cache applied since, which it was never offered)
            write(bookmark(info, w.bookmark_rv()))
        if transport is not None and not transport.is_closing():
            await response.eof()
    finally:
        tick_handle.cancel()
        expire_handle.cancel()
        api.watchers.discard(w)
        w.close()
        metrics.WATCHERS.labels(*labels).dec()
    return None
