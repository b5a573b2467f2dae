"""Points to usage, as metrics-server's storage computes it: the last two points per node and
per container; CPU usage is the rate between them (cores), memory the last working set.

``store(batches)`` takes one full scrape cycle (node -> ``decode.NodeBatch``) and replaces
what was there (the scraper, at thousands of nodes, ``prepare``s the cycle a chunk at a time
and ``adopt``s it once the Metrics API has rendered it, so the swap is atomic for readers): a node or pod absent from the cycle (scrape failed, pod gone) has no metrics
until it is scraped again. A new point moves the stored one to "previous" when it is newer;
a container younger than the resolution (and at least 10 s old) gets a synthetic previous
point at its start time with zero CPU, so fresh pods have metrics after one scrape. A pod has
metrics only when every container has both points; its timestamp and window are the earliest
container's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import NamedTuple

from controlplane.metrics.decode import NodeBatch, Point

FRESH_CONTAINER_MIN = 10.0


class Usage(NamedTuple):
    """(a NamedTuple, not a frozen dataclass: one is made per container per rendering)"""

    ts: float  # the newer point's time
    window: float  # seconds between the two points
    cpu_nano: int  # nanocores
    memory: int  # bytes


def _usage(last: Point, prev: Point) -> Usage | None:
    window = last.ts - prev.ts
    if window <= 0 or last.cpu is None or prev.cpu is None or last.cpu < prev.cpu or last.mem is None:
        return None
    return Usage(last.ts, window, int(round((last.cpu - prev.cpu) / window * 1e9)), last.mem)


class Storage:
    def __init__(self, resolution: float = 15.0) -> None:
        self.resolution = resolution
        self.node_last: dict[str, Point] = {}
        self.node_prev: dict[str, Point] = {}
        self.pod_last: dict[tuple[str, str], dict[str, Point]] = {}
        self.pod_prev: dict[tuple[str, str], dict[str, Point]] = {}
        self.version = 0  # bumped by every store (caches of rendered objects key on it)
        self.stored_once = False

    def store(self, batches: dict[str, NodeBatch]) -> None:
        """Replace what is stored with one full scrape cycle."""
        cycle = Storage(self.resolution)
        for _ in self._fill(cycle, batches, 0):
            pass
        self.adopt(cycle)

    async def prepare(self, batches: dict[str, NodeBatch], chunk: int = 100) -> "Storage":
        """The next cycle, computed against what is stored now (``chunk`` nodes at a time, the
        loop free in between) but not yet served: ``adopt`` it. Meanwhile readers see the
        current cycle, whole (a request never waits for a cycle being stored)."""
        cycle = Storage(self.resolution)
        for _ in self._fill(cycle, batches, chunk):
            await asyncio.sleep(0)
        return cycle

    def adopt(self, cycle: "Storage") -> None:
        """Serve ``cycle`` (from ``prepare``) from now on; its version is this one's next."""
        self.node_last, self.node_prev = cycle.node_last, cycle.node_prev
        self.pod_last, self.pod_prev = cycle.pod_last, cycle.pod_prev
        self.version += 1
        self.stored_once = True

    def _fill(self, cycle: "Storage", batches: dict[str, NodeBatch], chunk: int) -> Iterator[None]:
        node_last, node_prev = cycle.node_last, cycle.node_prev
        pod_last, pod_prev = cycle.pod_last, cycle.pod_prev
        cycle.version = self.version + 1
        for i, (name, b) in enumerate(batches.items(), 1):
            if chunk and i % chunk == 0:
                yield
            if b.node is not None:
                node_last[name] = b.node
                old = self.node_last.get(name)
                if old is not None:
                    if b.node.ts > old.ts:
                        node_prev[name] = old
                    else:
                        p = self.node_prev.get(name)
                        if p is not None and p.ts < b.node.ts:
                            node_prev[name] = p
            for key, containers in b.pods.items():
                if key in pod_last:
                    continue  # a pod reported by two nodes: keep the first, as metrics-server
                pod_last[key] = containers
                old_c = self.pod_last.get(key, {})
                prev_c = self.pod_prev.get(key, {})
                out: dict[str, Point] = {}
                for cname, pt in containers.items():
                    prev = self._prev_point(pt, old_c.get(cname), prev_c.get(cname))
                    if prev is not None:
                        out[cname] = prev
                if out:
                    pod_prev[key] = out

    def _prev_point(self, pt: Point, old: Point | None, old_prev: Point | None) -> Point | None:
        """The point to pair with the new ``pt`` of one container."""
        restarted = old is not None and pt.start > old.start + 1.0
        if old is not None and not restarted:
            if pt.ts > old.ts:
                return old
            return old_prev if old_prev is not None and old_prev.ts < pt.ts else None
        if pt.start > 0 and FRESH_CONTAINER_MIN <= pt.ts - pt.start < self.resolution:
            return Point(ts=pt.start, cpu=0.0, cpu_ts=pt.start, mem=pt.mem, start=pt.start)
        return None

    def node(self, name: str) -> Usage | None:
        last, prev = self.node_last.get(name), self.node_prev.get(name)
        if last is None or prev is None:
            return None
        return _usage(last, prev)

    def pod(self, key: tuple[str, str]) -> tuple[float, float, list[tuple[str, int, int]]] | None:
        """(timestamp, window, [(container, nanocores, bytes)]) or None while incomplete."""
        last, prev = self.pod_last.get(key), self.pod_prev.get(key)
        if last is None or prev is None:
            return None
        if len(last) == 1:  # the common case, without the sort
            (cname, pt), = last.items()
            pp = prev.get(cname)
            if pp is None:
                return None
            u = _usage(pt, pp)
            return None if u is None else (u.ts, u.window, [(cname, u.cpu_nano, u.memory)])
        out = []
        earliest: Usage | None = None
        for cname, pt in last.items():
            pp = prev.get(cname)
            if pp is None:
                return None
            u = _usage(pt, pp)
            if u is None:
                continue
            out.append((cname, u.cpu_nano, u.memory))
            if earliest is None or u.ts < earliest.ts:
                earliest = u
        if earliest is None:
            return None
        return earliest.ts, earliest.window, sorted(out)

    def pod_keys(self) -> list[tuple[str, str]]:
        return list(self.pod_last)

    def node_names(self) -> list[str]:
        return list(self.node_last)
