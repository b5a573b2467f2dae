"""kube-apiserver's request limits: at most so many requests in flight (``--max-requests-inflight``
400 read-only, ``--max-mutating-requests-inflight`` 200, shared out between the worker
processes), and a deadline per request (``--request-timeout`` 60 s, or the request's shorter
``?timeout=``). Watches are long-running and exempt from both (as are the proxied streams:
pods/log, pods/exec, which do not go through ``dispatch``).

Answers, as kube-apiserver's filters write them:

- over the in-flight limit: 429, ``Retry-After: 1``, the plain-text body
  ``Too many requests, please try again later.`` (``WithMaxInFlightLimit``'s ``http.Error``);
- past the deadline: 504 ``Timeout`` Status, "Timeout: request did not complete within
  requested timeout - context deadline exceeded" (``WithTimeoutForNonLongRunningRequests``).
  As in Kubernetes, a write that had reached etcd may still complete.

``apiserver_current_inflight_requests{request_kind}`` (``endpoints/metrics.py``) shows the
counts. Neighbours:
``routes.dispatch`` (calls ``run``), ``app.ApiServer`` (owns one).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from controlplane.apiserver.meta import errors

T = TypeVar("T")

MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
LONG_RUNNING = frozenset({"watch"})
TOO_MANY = "Too many requests, please try again later.\n"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class TooManyRequests(Exception):
    """Over the in-flight limit: answered 429 with ``Retry-After`` (not a Status)."""


def parse_duration(v: str) -> float:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in seconds; ValueError when malformed."""
    v = v.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(v):
        if m.start() != pos:
            raise ValueError(v)
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(v) or not v:
        raise ValueError(v)
    return total


class RequestLimits:
    def __init__(self, max_readonly: int = 400, max_mutating: int = 200, timeout: float = 60.0,
                 workers: int = 1) -> None:
        self.max_readonly = max(1, math.ceil(max_readonly / workers)) if max_readonly > 0 else 0
        self.max_mutating = max(1, math.ceil(max_mutating / workers)) if max_mutating > 0 else 0
        self.timeout = timeout
        self.readonly = 0
        self.mutating = 0

    def deadline(self, query_timeout: str | None) -> float:
        """The request's timeout: the server's, or the client's ``?timeout=`` when shorter."""
        if query_timeout:
            try:
                t = parse_duration(query_timeout)
            except ValueError:
                raise errors.bad_request(f"invalid timeout specified in the request URL: {query_timeout}") from None
            if 0 < t < self.timeout:
                return t
        return self.timeout

    async def run(self, verb: str, query_timeout: str | None, call: Callable[[], Awaitable[T]]) -> T:
        if verb in LONG_RUNNING:
            return await call()
        mutating = verb in MUTATING
        if mutating:
            if self.max_mutating and self.mutating >= self.max_mutating:
                raise TooManyRequests()
            self.mutating += 1
        else:
            if self.max_readonly and self.readonly >= self.max_readonly:
                raise TooManyRequests()
            self.readonly += 1
        try:
            if self.timeout <= 0:
                return await call()
            cm = asyncio.timeout(self.deadline(query_timeout))
            try:
                async with cm:
                    return await call()
            except TimeoutError:
                if not cm.expired():
                    raise  # a timeout of the call's own, not the request's deadline
                raise errors.ApiError(504, "Timeout", "Timeout: request did not complete within requested timeout "
                                      "- context deadline exceeded") from None
        finally:
            if mutating:
                self.mutating -= 1
            else:
                self.readonly -= 1

    def describe(self) -> dict[str, Any]:
        return {"maxReadOnly": self.max_readonly, "maxMutating": self.max_mutating, "timeoutSeconds": self.timeout}
