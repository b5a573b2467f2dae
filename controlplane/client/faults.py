"""Which failures a component retries and which end the process, in one place (the table in
``docs/reliability.md``), plus the counter every retried failure adds to.

*Transient* failures are expected while a dependency restarts: the apiserver or etcd
unreachable (connection refused/reset, a dropped watch: 503 from ``RestClient``), 429 Too
Many Requests, 500/502/503/504 answers, timeouts, 409 conflicts, 410 Expired (relist). The
caller retries them with backoff and counts them in
``controlplane_transient_errors_total{where, error}``. Anything else is *fatal* for the loop
that met it: a bug or a configuration error that retrying cannot fix; the component logs it
and exits non-zero, and its supervisor (``controlplane up``) restarts it with backoff.

Neighbours: ``informer`` (list/watch), ``leaderelection`` (Lease renewals), the node agent's
registration and heartbeats, ``controller`` (reconcile errors are requeued with the work
queue's rate limiter and counted in ``workqueue_retries_total``).
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter

from controlplane.client.rest import ApiStatusError

TRANSIENT_ERRORS = Counter(
    "controlplane_transient_errors_total",
    "Failures retried with backoff (a dependency restarting, throttling, conflicts), by where and what",
    ["where", "error"])

TRANSIENT_CODES = frozenset({409, 410, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiStatusError):
        return exc.code in TRANSIENT_CODES
    return isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError))


def error_class(exc: BaseException) -> str:
    """A short, low-cardinality label: the HTTP code of an API error, else the type's name."""
    if isinstance(exc, ApiStatusError):
        return str(exc.code)
    return type(exc).__name__


def count_transient(where: str, exc: BaseException) -> None:
    TRANSIENT_ERRORS.labels(where, error_class(exc)).inc()
