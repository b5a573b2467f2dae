"""Request metrics of the apiserver, with kube-apiserver's names (which it keeps in
k8s.io/apiserver/pkg/endpoints/metrics): requests by verb/resource/code, latency, in-flight
requests, registered watchers and watch events sent.

``server/routes.py`` wraps every request in ``observe``; the watch endpoint moves the
watcher gauge and counts events. ``/metrics`` rendering (and the multiprocess collection of
several workers) is ``server/metrics.py``; the gauges' ``multiprocess_mode`` says how workers'
values combine.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "apiserver_request_total", "Counter of apiserver requests broken out by verb, group, version, resource and code.",
    ["verb", "group", "version", "resource", "subresource", "code"],
)
DURATION = Histogram(
    "apiserver_request_duration_seconds", "Response latency distribution in seconds.",
    ["verb", "group", "version", "resource", "subresource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
INFLIGHT = Gauge(
    "apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit.",
    ["request_kind"], multiprocess_mode="livesum",
)
WATCHERS = Gauge(
    "apiserver_registered_watchers", "Number of currently registered watchers for a given resources",
    ["group", "version", "kind"], multiprocess_mode="livesum",
)
WATCH_EVENTS = Counter(
    "apiserver_watch_events_total", "Number of events sent in watch clients", ["group", "version", "kind"],
)

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, memoized (label look-ups cost more than the update)."""
    key = (id(metric), *labels)
    c = _children.get(key)
    if c is None:
        c = _children[key] = metric.labels(*labels)
    return c


@contextmanager
def observe(verb: str, group: str, version: str, resource: str, subresource: str,
            code_box: list[int]) -> Iterator[None]:
    """Count and time one request; ``code_box[0]`` holds the status code when it finishes."""
    kind = "mutating" if verb in ("create", "update", "patch", "delete", "deletecollection") else "readOnly"
    inflight = _child(INFLIGHT, kind)
    inflight.inc()
    start = time.perf_counter()
    try:
        yield
    finally:
        inflight.dec()
        if verb != "watch":
            _child(DURATION, verb, group, version, resource, subresource).observe(time.perf_counter() - start)
        _child(REQUESTS, verb, group, version, resource, subresource, str(code_box[0])).inc()
