"""Which nodes to scrape and how (metrics-server's scraper): every resolution period, every
Node in the cache is scraped concurrently (bounded) at
``<scheme>://<address>:<kubelet port><path>`` -- the address of the first preferred type
(``--kubelet-preferred-address-types``, InternalIP by default), the port from
``status.daemonEndpoints.kubeletEndpoint`` and the path ``/metrics/resource`` unless the Node's
``metrics.k8s.io/resource-metrics-path`` annotation names another (simulated nodes) -- with the
component's client certificate (or a bearer token; the agent authorizes ``nodes/metrics``), a
timeout of ``0.9 x`` the resolution, and the result stored as one cycle.

Safety on shared machines: only addresses inside ``--kubelet-allowed-cidrs`` (loopback by
default) are contacted; a node elsewhere is reported as a failed scrape, never dialled.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram

from controlplane.client.lite import LitePool
from controlplane.log import get_logger
from controlplane.metrics.decode import NodeBatch, decode
from controlplane.metrics.storage import Storage

log = get_logger(__name__)

SCRAPE_DURATION = Histogram("metrics_server_kubelet_request_duration_seconds",
                            "Duration of requests to the kubelet API in seconds",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SCRAPE_TOTAL = Counter("metrics_server_kubelet_request_total", "Number of requests sent to the kubelet API",
                       ["success"])
CYCLE_DURATION = Histogram("metrics_server_manager_tick_duration_seconds",
                           "The total time spent collecting and storing metrics in seconds",
                           buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30))
LAST_REQUEST = Gauge("metrics_server_kubelet_last_request_time_seconds",
                     "Time of the last request performed to kubelet API since unix epoch in seconds")
STORED_PODS = Gauge("metrics_server_storage_points", "Number of metrics points stored.", ["type"])


@dataclass
class ScrapeConfig:
    token: str | None = None
    scheme: str = "http"
    ssl_ctx: ssl.SSLContext | bool | None = None
    address_types: tuple[str, ...] = ("InternalIP",)
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        default_factory=lambda: (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))
    default_port: int = 10250
    concurrency: int = 64


class NodeUnreachable(Exception):
    pass


def node_url(node: dict, cfg: ScrapeConfig) -> str:
    st = node.get("status") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    addr = next((addrs[t] for t in cfg.address_types if addrs.get(t)), None)
    name = (node.get("metadata") or {}).get("name")
    if not addr:
        raise NodeUnreachable(f"node {name} has no address of types {','.join(cfg.address_types)}")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise NodeUnreachable(f"node {name}: address {addr!r} is not an IP address") from None
    if not any(ip in net for net in cfg.allowed):
        raise NodeUnreachable(f"node {name}: address {addr} is outside --kubelet-allowed-cidrs")
    port = int(((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0) or cfg.default_port
    path = ((node.get("metadata") or {}).get("annotations") or {}).get("metrics.k8s.io/resource-metrics-path") \
        or "/metrics/resource"
    host = f"[{addr}]" if ip.version == 6 else addr
    return f"{cfg.scheme}://{host}:{port}{path}"


class Scraper:
    def __init__(self, nodes: Callable[[], Iterable[dict]], storage: Storage, cfg: ScrapeConfig,
                 resolution: float = 15.0, render: Callable[[Storage], Awaitable[None]] | None = None,
                 publish: Callable[[Storage], None] | None = None) -> None:
        # the Metrics API renders a prepared cycle before the storage adopts it, and publishes
        # its rendering with it (api.MetricsApi.render / publish)
        self.render, self.publish = render, publish
        self.nodes = nodes
        self.storage = storage
        self.cfg = cfg
        self.resolution = resolution
        self._pools: dict[str, LitePool] = {}
        self._used: set[str] = set()  # the pools the current cycle has used (the others are closed after it)
        self.last_errors: dict[str, str] = {}
        self.cycles = 0

    def pool(self, url: str) -> tuple[LitePool, str]:
        """The keep-alive pool of ``url``'s server (one per kubelet address; the simulated nodes
        share one server) and the request target. The lean client (``client.lite``) instead of
        aiohttp: a scrape is one small GET, and aiohttp's ~150-200 us of Python per request
        was a sixth of the component's CPU at 5,000 nodes."""
        u = urlsplit(url)
        base = f"{u.scheme}://{u.netloc}"
        self._used.add(base)
        pool = self._pools.get(base)
        if pool is None:
            headers = {"Accept": "text/plain", "User-Agent": "metrics-server/controlplane"}
            if self.cfg.token:
                headers["Authorization"] = f"Bearer {self.cfg.token}"
            pool = self._pools[base] = LitePool(base, headers, ssl_ctx=self.cfg.ssl_ctx, limit=self.cfg.concurrency,
                                                timeout=None)
        return pool, u.path + (f"?{u.query}" if u.query else "")

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.close()

    async def scrape_node(self, node: dict, timeout: float) -> NodeBatch:
        url = node_url(node, self.cfg)
        t0 = time.monotonic()
        ok = False
        try:
            pool, target = self.pool(url)
            async with asyncio.timeout(timeout):  # (wait_for could drop a cancellation on 3.11)
                code, _, raw = await pool.request("GET", target)
            body = raw.decode()  # a page that is not UTF-8: ValueError, a failed scrape
            if code != 200:
                raise NodeUnreachable(f"GET {url}: {code} {body[:200]}")
            batch = decode(body, time.time())
            ok = True
            return batch
        finally:
            SCRAPE_DURATION.observe(time.monotonic() - t0)
            SCRAPE_TOTAL.labels("true" if ok else "false").inc()

    async def cycle(self) -> int:
        """Scrape every node once and store the cycle; returns the number of nodes stored."""
        t0 = time.monotonic()
        nodes = list(self.nodes())
        sem = asyncio.Semaphore(self.cfg.concurrency)
        batches: dict[str, NodeBatch] = {}
        errors: dict[str, str] = {}
        timeout = max(1.0, 0.9 * self.resolution)

        async def one(n: dict) -> None:
            name = n["metadata"]["name"]
            async with sem:
                try:
                    batches[name] = await self.scrape_node(n, timeout)
                except (NodeUnreachable, asyncio.TimeoutError, ValueError, OSError) as e:
                    errors[name] = str(e) or type(e).__name__

        self._used = set()
        await asyncio.gather(*(one(n) for n in nodes))
        for base in [b for b in self._pools if b not in self._used]:  # a node gone (or moved): its connections too
            await self._pools.pop(base).close()
        # prepared and rendered a chunk at a time, then served at once: at 150,000 pods each
        # step takes seconds of the loop, which a request must never wait for
        cycle = await self.storage.prepare(batches)
        if self.render is not None:
            try:
                await self.render(cycle)
            except Exception as e:  # noqa: BLE001 - the cycle is still stored; objects render on demand
                log.error("rendering the scrape cycle failed", error=repr(e))
        self.storage.adopt(cycle)
        if self.publish is not None:
            self.publish(cycle)
        LAST_REQUEST.set(time.time())
        STORED_PODS.labels("pod_container").set(sum(len(c) for c in self.storage.pod_last.values()))
        STORED_PODS.labels("node").set(len(self.storage.node_last))
        new = {k: v for k, v in errors.items() if self.last_errors.get(k) != v}
        for name, err in list(new.items())[:20]:
            log.warning("failed to scrape node", node=name, error=err)
        if len(new) > 20:
            log.warning("failed to scrape more nodes", count=len(new) - 20)
        self.last_errors = errors
        self.cycles += 1
        CYCLE_DURATION.observe(time.monotonic() - t0)
        return len(batches)

    async def run(self, stop: asyncio.Event) -> None:
        """One cycle per resolution period (metrics-server's tick), until ``stop``."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                start = loop.time()
                try:
                    await self.cycle()
                except Exception as e:  # noqa: BLE001 - a bad cycle must not end the scraper
                    log.error("scrape cycle failed", error=repr(e))
                delay = max(0.0, self.resolution - (loop.time() - start))
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self.close()
