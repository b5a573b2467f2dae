"""The apiserver's ``/healthz``, ``/livez`` and ``/readyz``, with kube-apiserver's named checks
(answered by ``machinery.healthz``: ``?verbose``, ``?exclude=``, ``/readyz/<check>``).

- ``ping``: the process answers;
- ``etcd``: the last probe of etcd (``Backend.current_revision`` every ``PROBE_INTERVAL_S``,
  each bounded by ``PROBE_TIMEOUT_S``) succeeded; a probe runs in the background so a check
  never waits on etcd, and readyz fails within about two seconds of etcd becoming unreachable
  and recovers with the first probe that answers;
- ``informer-sync`` (readyz): every watch cache has finished its initial list (the resources'
  caches, CRDs established);
- ``poststarthook/apiserver-workers`` (readyz, with several workers): every worker serves;
- ``shutdown`` (readyz): fails once the process is stopping, so load balancers drain it.

Neighbours: ``app.ApiServer`` (owns the checks and starts the probe), ``routes`` (the URLs).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controlplane.log import get_logger
from controlplane.machinery.healthz import HealthChecks

log = get_logger(__name__)

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0


class EtcdProbe:
    """Keeps the result of the last etcd round trip current."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.error: str | None = "etcd not probed yet"
        self.last_ok = 0.0

    def check(self) -> str | None:
        return self.error

    async def probe_once(self) -> None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):  # (wait_for could drop a cancellation on 3.11)
                await self.backend.current_revision()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._failed(f"etcd did not answer within {PROBE_TIMEOUT_S:g}s")
        except Exception as e:  # noqa: BLE001 - any failure means etcd is not usable
            self._failed(f"etcd unreachable: {e}")
        else:
            if self.error is not None and self.last_ok:
                log.info("etcd reachable again")
            self.error = None
            self.last_ok = time.monotonic()

    def _failed(self, why: str) -> None:
        if self.error is None:
            log.warning("etcd health probe failed", error=why)
        self.error = why

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.probe_once()
            try:
                await asyncio.wait_for(stop.wait(), PROBE_INTERVAL_S)
            except asyncio.TimeoutError:
                pass


def build_checks(api: Any, probe: EtcdProbe) -> HealthChecks:
    """The checks of one apiserver process (``api``: ``app.ApiServer``)."""
    h = HealthChecks()
    h.add("ping", lambda: None)
    h.add("etcd", probe.check)
    h.add("informer-sync", lambda: None if api.caches_synced() else "watch caches not initialized", ("readyz",))
    h.add("poststarthook/apiserver-workers",
          lambda: None if api.workers_ready else "not every apiserver worker serves yet", ("readyz",))
    h.add("shutdown", lambda: "process is shutting down" if api.stopping.is_set() else None, ("readyz",))
    h.on_failure = lambda endpoint, failed: log.info(f"{endpoint} check failed", failed=dict(failed))
    return h
