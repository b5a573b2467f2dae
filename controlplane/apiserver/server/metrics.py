"""``/metrics``: the Prometheus exposition of every metric of the process (request metrics in
``endpoints/metrics.py``, watch cache and storage metrics in ``persistence/``, etcd client
metrics in ``controlplane.storage``), with kube-apiserver's names.

Gauges refreshed at scrape time register a callback with ``on_scrape`` (the ApiServer counts
stored objects from its watch caches). With several apiserver workers (``workers.py``) the
supervisor sets ``PROMETHEUS_MULTIPROC_DIR``: every worker's values go to files there and
``render`` collects them all (``MultiProcessCollector``), so any worker answers for the whole
server (counters and histograms summed; gauges by their ``multiprocess_mode``). An info gauge
whose label set a worker no longer serves (``encryption/reload.py``'s ``last_config_info`` of
an old hash) stays in the worker's file at 0: ``render`` drops those samples.
"""

from __future__ import annotations

import os
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from controlplane.apiserver.persistence.encryption.reload import DropForgottenInfo

_collectors: list[Callable[[], None]] = []

# counted by a restarted apiserver worker at start-up (``workers.py`` tells it the cause)
WORKER_RESTARTS = Counter("controlplane_component_restarts_total",
                          "Restarts of a component after it exited, by cause", ["component", "cause"])


def on_scrape(fn: Callable[[], None]) -> None:
    """Register a callback refreshing gauges just before ``/metrics`` renders."""
    _collectors.append(fn)


def render() -> tuple[bytes, str]:
    for fn in _collectors:
        fn()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        registry.register(DropForgottenInfo(MultiProcessCollector(None)))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST

