"""APIService availability (kube-aggregator's ``AvailableConditionController``), run by one
apiserver process: the ``Available`` condition is True / ``Local`` for an APIService without a
service; otherwise it checks, in order, that the Service exists (``ServiceNotFound``), listens
on the port (``ServicePortError``), has Endpoints (``EndpointsNotFound``) with a ready address
for that port (``MissingEndpoints``), and that the backend answers
``GET /apis/<group>/<version>`` with a 2xx within 5 s (``FailedDiscoveryCheck``); then
``Passed`` / "all checks passed". An APIService is re-checked when it, its Service or its
Endpoints change, and every ``interval`` (30 s) anyway. The condition is written (through the
``write`` the server provides, a ``/status`` update) only when it changed; its
``lastTransitionTime`` moves only with its status.

Metric, kube-aggregator's: ``aggregator_unavailable_apiservice{name}`` (1 while an APIService
is not Available, 0 when it is; gone with the APIService), which kube-prometheus'
``KubeAggregatedAPIDown`` alert reads (``manifests/prometheus/rules``). Its companion counter
``aggregator_unavailable_apiservice_total`` is not exported: prometheus_client refuses a
counter whose name is a gauge's plus ``_total`` (and its multiprocess files would merge them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from prometheus_client import Gauge

from controlplane.apiserver.aggregation.apiservices import APIServices, is_remote
from controlplane.apiserver.aggregation.proxy import TLS
from controlplane.apiserver.aggregation.resolve import ResolveError, Resolver
from controlplane.apiserver.persistence.codec import object_key
from controlplane.log import get_logger

log = get_logger(__name__)
Obj = dict[str, Any]
Condition = tuple[str, str, str]  # status, reason, message
Write = Callable[[str, Condition], Awaitable[None]]
DISCOVERY_TIMEOUT = 5.0

UNAVAILABLE = Gauge("aggregator_unavailable_apiservice",
                    "Gauge of APIServices which are marked as unavailable broken down by APIService name.",
                    ["name"], multiprocess_mode="livemax")


def current(apiservice: Obj) -> Condition | None:
    for c in (apiservice.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            return c.get("status", ""), c.get("reason", ""), c.get("message", "")
    return None


def forget(name: str) -> None:
    """An APIService gone: its gauge series goes too (0 first: with several apiserver workers
    the value lives in a shared file that ``remove`` does not clear)."""
    UNAVAILABLE.labels(name).set(0)
    try:
        UNAVAILABLE.remove(name)
    except KeyError:
        pass


class AvailabilityController:
    def __init__(self, apiservices: APIServices, resolver: Resolver, write: Write, *, interval: float = 30.0,
                 tick: float = 1.0, client_cert: tuple[str, str] | None = None) -> None:
        self.apiservices = apiservices
        self.resolver = resolver
        self.write = write
        self.interval = interval
        self.tick = tick
        self.tls = TLS(client_cert)
        self._last: dict[str, tuple[tuple, float]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _fingerprint(self, a: Obj) -> tuple:
        ref = (a.get("spec") or {}).get("service") or {}
        fp: list[Any] = [(a.get("metadata") or {}).get("resourceVersion"), str(a.get("spec"))]
        for plural in ("services", "endpoints"):
            info = self.resolver.registry.get("", "v1", plural)
            cache = self.resolver.caches.if_ready(info) if info is not None else None
            e = cache.get(object_key(info, ref.get("namespace") or "", ref.get("name") or "")) \
                if cache is not None and info is not None and ref else None
            fp.append(e.rv if e is not None else None)
        return tuple(fp)

    async def check(self, a: Obj) -> Condition:
        if not is_remote(a):
            return "True", "Local", "Local APIServices are always available"
        try:
            base = self.resolver.url(a)
        except ResolveError as e:
            return "False", e.reason, e.message
        spec = a.get("spec") or {}
        url = f"{base}/apis/{spec.get('group')}/{spec.get('version')}"
        ctx, server_name = self.tls.for_apiservice(a)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            # as kube-aggregator's availability check: the front-proxy certificate, as system:kube-aggregator
            headers = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}
            async with self._session.get(url, ssl=ctx, server_hostname=server_name, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=DISCOVERY_TIMEOUT)) as r:
                await r.read()
                if not 200 <= r.status < 300:
                    return "False", "FailedDiscoveryCheck", \
                        f"failing or missing response from {url}: bad status from {url}: {r.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
            detail = str(e) or type(e).__name__
            return "False", "FailedDiscoveryCheck", f"failing or missing response from {url}: {detail}"
        return "True", "Passed", "all checks passed"

    async def sync(self, a: Obj) -> None:
        name = (a.get("metadata") or {}).get("name") or ""
        cond = await self.check(a)
        UNAVAILABLE.labels(name).set(0 if cond[0] == "True" else 1)
        if cond != current(a):
            log.info("apiservice availability", apiservice=name, status=cond[0], reason=cond[1])
            await self.write(name, cond)

    async def run_once(self, now: float | None = None) -> int:
        """Check the APIServices that changed or are due; returns how many were checked."""
        now = time.monotonic() if now is None else now
        due = []
        names = set()
        for a in self.apiservices.all():
            name = (a.get("metadata") or {}).get("name") or ""
            names.add(name)
            fp = self._fingerprint(a)
            last = self._last.get(name)
            if last is None or last[0] != fp or now - last[1] >= self.interval:
                self._last[name] = (fp, now)
                due.append(a)
        for name in [n for n in self._last if n not in names]:
            del self._last[name]
            forget(name)
        results = await asyncio.gather(*(self.sync(a) for a in due), return_exceptions=True)
        for a, r in zip(due, results):
            if isinstance(r, Exception):
                log.warning("apiservice availability check failed", apiservice=(a.get("metadata") or {}).get("name"),
                            error=repr(r))
                self._last.pop((a.get("metadata") or {}).get("name") or "", None)
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception as e:  # noqa: BLE001 - keep checking
                    log.warning("apiservice availability round failed", error=repr(e))
                try:
                    await asyncio.wait_for(stop.wait(), self.tick)
                except asyncio.TimeoutError:
                    pass
        finally:
            if self._session is not None:
                await self._session.close()
