"""Named health checks answered as Kubernetes answers ``/healthz``, ``/livez`` and ``/readyz``
(k8s.io/apiserver ``pkg/server/healthz``), for every component's health endpoints.

A ``HealthChecks`` holds named checks per endpoint; a check is a callable returning ``None``
when healthy or a short reason when not (checks must be cheap and non-blocking: they read
state that background tasks keep current, e.g. the result of the last etcd probe).
``answer(endpoint, subpath, query)`` gives ``(status, body)`` exactly as kube-apiserver does:

- ``/readyz`` -> 200 ``ok``; ``?verbose`` lists ``[+]name ok`` lines then ``readyz check passed``;
- a failing check -> 500 with ``[+]name ok`` / ``[-]name failed: reason withheld`` lines and
  ``readyz check failed`` (the reason itself goes to the log, not the body);
- ``?exclude=name`` (repeatable) skips a check (``[+]name excluded: ok``); names that match no
  check are reported (``warn: some health checks cannot be excluded: no matches for "x"``);
- ``/readyz/<name>`` runs one check: 200 ``ok`` or 500 ``internal server error: <reason>``;
  an unknown name is 404.

Pure: no I/O. Served by ``controlplane.cmd.bootstrap`` (components' metrics ports) and the
apiserver's routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Check = Callable[[], "str | None"]
ENDPOINTS = ("healthz", "livez", "readyz")


class HealthChecks:
    """Checks per endpoint. ``add(name, fn, endpoints=...)`` registers one under several."""

    def __init__(self) -> None:
        self._checks: dict[str, dict[str, Check]] = {e: {} for e in ENDPOINTS}
        self.on_failure: Callable[[str, list[tuple[str, str]]], None] | None = None  # log hook

    def add(self, name: str, fn: Check, endpoints: Iterable[str] = ENDPOINTS) -> None:
        for e in endpoints:
            if name in self._checks[e]:
                raise ValueError(f"{e} check {name!r} already registered")
            self._checks[e][name] = fn

    def names(self, endpoint: str) -> list[str]:
        return list(self._checks[endpoint])

    def run(self, endpoint: str) -> list[tuple[str, str | None]]:
        """(name, failure or None) of every check of ``endpoint``, in registration order."""
        return [(n, _run(fn)) for n, fn in self._checks[endpoint].items()]

    def answer(self, endpoint: str, subpath: str = "",
               query: Mapping[str, Any] | None = None) -> tuple[int, str]:
        """``(HTTP status, text body)`` for ``/<endpoint>[/<subpath>]?<query>``; ``query`` maps a
        parameter to a value or a list of values (``verbose``, ``exclude``)."""
        checks = self._checks[endpoint]
        q = query or {}
        if subpath:
            fn = checks.get(subpath)
            if fn is None:
                return 404, "404 page not found\n"
            err = _run(fn)
            if err is not None:
                if self.on_failure is not None:
                    self.on_failure(endpoint, [(subpath, err)])
                return 500, f"internal server error: {err}\n"
            return 200, "ok"
        excluded = _values(q.get("exclude"))
        lines: list[str] = []
        failed: list[tuple[str, str]] = []
        for name, fn in checks.items():
            if name in excluded:
                excluded.discard(name)
                lines.append(f"[+]{name} excluded: ok")
                continue
            err = _run(fn)
            if err is None:
                lines.append(f"[+]{name} ok")
            else:
                lines.append(f"[-]{name} failed: reason withheld")
                failed.append((name, err))
        if excluded:
            quoted = ",".join(f'"{n}"' for n in sorted(excluded))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
        if failed:
            if self.on_failure is not None:
                self.on_failure(endpoint, failed)
            return 500, "\n".join(lines) + f"\n{endpoint} check failed\n"
        if "verbose" not in q:
            return 200, "ok"
        return 200, "\n".join(lines) + f"\n{endpoint} check passed\n"


def _values(v: Any) -> set[str]:
    if v is None:
        return set()
    if isinstance(v, str):
        return {v}
    return {str(x) for x in v}


def _run(fn: Check) -> str | None:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - a check that raises is a failing check
        return f"{type(e).__name__}: {e}"
