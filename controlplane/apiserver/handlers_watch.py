"""watch: a chunked stream of JSON lines ``{"type": ..., "object": ...}``.

Events come from the resource's ``watchcache.WatchCache`` (one etcd watch per resource, fanned
out in memory, each event encoded once for every watcher). This handler adds what the HTTP
contract needs: the initial state as ADDED events when ``resourceVersion`` is unset/``0`` (a
consistent start when unset), the ``k8s.io/initial-events-end`` BOOKMARK for
``sendInitialEvents``, periodic BOOKMARKs (``allowWatchBookmarks``) and one before the deadline
(``timeoutSeconds``), an ERROR event with a 410 ``Expired`` Status when the start revision is
too old, and Table rows when the Accept header asks for them.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver import errors, metrics
from controlplane.apiserver import handlers_common as hc
from controlplane.apiserver.handlers_read import selectors, to_table
from controlplane.apiserver.registry import ResourceInfo
from controlplane.apiserver.store import dumps, loads, parse_rv
from controlplane.storage.interface import CompactedError

if TYPE_CHECKING:
    from controlplane.apiserver.app import ApiServer

BOOKMARK_INTERVAL = 30.0
FLUSH_EVERY = 256


def bookmark(info: ResourceInfo, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return dumps({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version,
                                                 "metadata": meta}}) + b"\n"


def error_event(err: errors.ApiError) -> bytes:
    return dumps({"type": "ERROR", "object": err.status()}) + b"\n"


async def watch(api: "ApiServer", request: Request, t: hc.Target) -> HTTPResponse | None:
    info = t.info
    lsel, fsel = selectors(info, request)
    rv_param = request.args.get("resourceVersion")
    send_initial = hc.bool_arg(request, "sendInitialEvents")
    allow_bookmarks = hc.bool_arg(request, "allowWatchBookmarks")
    table = hc.wants_table(request)
    timeout = parse_rv(request.args.get("timeoutSeconds"), what="timeoutSeconds") or random.randint(1800, 3600)
    deadline = time.monotonic() + timeout
    cache = await api.cache_for(info)
    from_rv = parse_rv(rv_param)
    if rv_param in (None, "") or (send_initial and from_rv):
        # a consistent (or not-older-than) start: the cache must have seen that revision first
        await cache.wait_fresh(from_rv or await api.backend.current_revision())
        from_rv = 0
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
            obj = api.output(info, loads(ev.raw))
            return dumps({"type": ev.type, "object": to_table(info, [obj], request)}) + b"\n"
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
    try:
        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
        while not api.stopping.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= next_bookmark:
                if allow_bookmarks:
                    await response.send(bookmark(info, w.bookmark_rv()))
                next_bookmark = now + BOOKMARK_INTERVAL
                continue
            if not w.pending():
                try:  # asyncio.timeout, not wait_for: no extra task per wake-up (1,000s of watchers)
                    async with asyncio.timeout(min(deadline, next_bookmark, now + 1.0) - now):
                        first = await w.__anext__()
                except TimeoutError:
                    continue
                out = [render(first)]
            else:
                out = []
            while w.pending() and len(out) < FLUSH_EVERY:
                out.append(render(await w.__anext__()))
            await response.send(out[0] if len(out) == 1 else b"".join(out))
            sent.inc(len(out))
        if allow_bookmarks and time.monotonic() >= deadline:
            await response.send(bookmark(info, w.bookmark_rv()))
        await response.eof()
    except StopAsyncIteration:
        await response.eof()
    finally:
        w.close()
        metrics.WATCHERS.labels(*labels).dec()
    return None
