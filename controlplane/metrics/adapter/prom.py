"""The Prometheus HTTP API as the adapter uses it: ``/api/v1/series`` (discovery) and
``/api/v1/query`` (one instant query per request), with a timeout on each call."""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiohttp


class PrometheusError(Exception):
    """Prometheus could not be reached or refused the query (the message says which)."""


class Prometheus:
    def __init__(self, url: str, *, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        try:
            async with self._s().get(self.url + path, params=params, ssl=self.ssl) as r:
                try:
                    body = await r.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    raise PrometheusError(f"{path}: HTTP {r.status}, not a Prometheus API answer") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise PrometheusError(f"unable to reach Prometheus at {self.url}: {e or type(e).__name__}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(f"Prometheus refused {path}: {err or body!r}")
        return body.get("data")

    async def series(self, match: str, since: float) -> list[dict[str, str]]:
        """The label sets of the series ``match`` selects that had samples in the last ``since`` s."""
        now = time.time()
        data = await self._get("/api/v1/series", [("match[]", match), ("start", f"{now - since:.3f}"),
                                                  ("end", f"{now:.3f}")])
        return [s for s in data or [] if isinstance(s, dict)]

    async def query(self, expr: str) -> tuple[float, list[tuple[dict[str, str], float, str]]]:
        """An instant query: (evaluation time, [(labels, sample time, value text)]) of a vector
        (a scalar answers one sample without labels)."""
        now = time.time()
        data = await self._get("/api/v1/query", [("query", expr), ("time", f"{now:.3f}")])
        kind = (data or {}).get("resultType")
        result = (data or {}).get("result")
        if kind == "vector":
            return now, [(s.get("metric") or {}, float(s["value"][0]), str(s["value"][1])) for s in result or []]
        if kind == "scalar" and isinstance(result, list):
            return now, [({}, float(result[0]), str(result[1]))]
        raise PrometheusError(f"the query answered a {kind}, not an instant vector: {expr}")
