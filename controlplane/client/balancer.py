"""A client-side load balancer over the cluster's apiservers, as k3s's agent has one
(``pkg/agent/loadbalancer``): every ``RestClient`` sends its requests through it, so
components and agents fail over between apiservers by themselves.

- **Endpoints**: the configured ones (the kubeconfig's ``server``, comma-separated for several;
  the local apiserver on a server) in their order, then those the cluster publishes in
  ``default/kubernetes`` Endpoints (every apiserver keeps its address there,
  ``apiserver/server/endpoint_reconciler.py``), re-read every ``discover_interval`` seconds
  (k3s's agent watches the same object).
- **Choice**: sticky: requests go to the current endpoint while it is healthy; when it fails
  (connection refused/reset, or its health check fails) the balancer moves to the first
  healthy endpoint in order, configured ones first; when a configured endpoint is healthy
  again, it moves back (a server's components prefer their local apiserver). With none
  healthy it tries the one that failed longest ago.
- **Health checks**: every ``probe_interval`` seconds (only while there are several endpoints)
  each endpoint's ``/readyz`` is fetched; 200 is healthy, anything else (an apiserver whose etcd
  is gone answers 500) or no answer is not. A connection failure seen by a request marks the
  endpoint unhealthy at once (passive check).

Pure bookkeeping here; ``rest.RestClient`` does the I/O (its probe and discovery functions) and
owns the background task (started with the first request, cancelled by ``close``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from prometheus_client import Counter

from controlplane.log import get_logger

log = get_logger(__name__)

SWITCHES = Counter("rest_client_apiserver_switches_total",
                   "Times a client's load balancer moved to another apiserver, by reason", ["reason"])


def normalize(url: str) -> str:
    return url.strip().rstrip("/")


@dataclass
class Endpoint:
    url: str
    configured: bool
    healthy: bool = True
    failed_at: float = 0.0
    failures: int = 0


@dataclass
class Balancer:
    configured: list[str]
    probe_interval: float = 2.0
    discover_interval: float = 15.0
    clock: Callable[[], float] = time.monotonic
    endpoints: list[Endpoint] = field(default_factory=list)
    current: str = ""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for u in self.configured:
            u = normalize(u)
            if u and u not in seen:
                seen.add(u)
                self.endpoints.append(Endpoint(u, True))
        if not self.endpoints:
            raise ValueError("no apiserver endpoint")
        self.current = self.endpoints[0].url

    # -- queries ------------------------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        return [e.url for e in self.endpoints]

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1

    def get(self, url: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.url == url), None)

    def pick(self) -> str:
        """The endpoint to use now (sticky while healthy, configured ones preferred)."""
        cur = self.get(self.current)
        first_configured = next((e for e in self.endpoints if e.configured and e.healthy), None)
        if first_configured is not None:  # the configured ones in their order (the local apiserver first)
            if cur is None or first_configured.url != cur.url:
                self._switch(first_configured.url, "preferred" if cur is not None and cur.healthy else "failover")
            return self.current
        if cur is not None and cur.healthy:
            return self.current
        healthy = [e for e in self.endpoints if e.healthy]
        if healthy:
            self._switch(healthy[0].url, "failover")
        else:  # none known healthy: the one that failed longest ago
            self._switch(min(self.endpoints, key=lambda e: e.failed_at).url, "all-unhealthy")
        return self.current

    def others(self, url: str) -> list[str]:
        """Endpoints to try after ``url`` failed to connect, healthy ones first, in order."""
        rest = [e for e in self.endpoints if e.url != url]
        return [e.url for e in sorted(rest, key=lambda e: (not e.healthy, not e.configured))]

    # -- what was seen ------------------------------------------------------------------------
    def failed(self, url: str, reason: str = "connection failed") -> None:
        e = self.get(normalize(url))
        if e is None:
            return
        if e.healthy:
            log.warning("apiserver unhealthy", endpoint=e.url, reason=reason)
        e.healthy = False
        e.failed_at = self.clock()
        e.failures += 1
        if e.url == self.current and self.several:
            self.pick()

    def succeeded(self, url: str) -> None:
        e = self.get(normalize(url))
        if e is not None and not e.healthy:
            log.info("apiserver healthy again", endpoint=e.url)
            e.healthy = True
            e.failures = 0

    def probed(self, url: str, ok: bool, reason: str = "health check failed") -> None:
        if ok:
            self.succeeded(url)
        else:
            self.failed(url, reason)
        self.pick()

    def discovered(self, urls: list[str]) -> bool:
        """Replace the published endpoints (configured ones stay); True when the set changed."""
        want = [normalize(u) for u in urls]
        keep = [e for e in self.endpoints if e.configured or e.url in want]
        known = {e.url for e in keep}
        added = [Endpoint(u, False) for u in sorted(set(want) - known)]
        changed = len(keep) != len(self.endpoints) or bool(added)
        if changed:
            self.endpoints = keep + sorted((e for e in added), key=lambda e: e.url)
            log.info("apiserver endpoints", endpoints=self.urls)
            if self.get(self.current) is None:
                self.pick()
        return changed

    def _switch(self, url: str, reason: str) -> None:
        if url != self.current:
            log.warning("switching apiserver", failed=self.current, now=url, reason=reason)
            SWITCHES.labels(reason).inc()
            self.current = url


def endpoints_from(obj: dict[str, Any], scheme: str) -> list[str]:
    """``scheme://ip:port`` for every address and port of an Endpoints object."""
    out = []
    for s in obj.get("subsets") or []:
        ports = [p.get("port") for p in s.get("ports") or [] if p.get("port")]
        for a in s.get("addresses") or []:
            ip = a.get("ip")
            if not ip:
                continue
            host = f"[{ip}]" if ":" in ip else ip
            out += [f"{scheme}://{host}:{p}" for p in ports]
    return out


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme or "https"
