"""A REST mapper: apiVersion + kind → the resource to call (plural, namespaced), from legacy
discovery, one group-version document at a time, cached and refreshed on a miss (a CRD applied
a moment ago). kubectl's ``no matches for kind`` message when a kind is unknown.
Neighbours: ``engine.py`` (apply/prune), ``health.py``, ``depends.py``.
"""

from __future__ import annotations

import asyncio
import time

from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient


class NoMatch(Exception):
    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f'no matches for kind "{kind}" in version "{api_version}"')
        self.api_version = api_version
        self.kind = kind


class RestMapper:
    def __init__(self, client: RestClient, refresh_after: float = 1.0) -> None:
        self.client = client
        self._gv: dict[str, tuple[float, dict[str, Resource]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refresh_after = refresh_after

    async def _load(self, gv: str) -> dict[str, Resource]:
        path = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
        group, version = (gv.split("/", 1) if "/" in gv else ("", gv))
        try:
            doc = await self.client.request("GET", path)
        except ApiStatusError as e:
            if e.code == 404:
                return {}
            raise
        out: dict[str, Resource] = {}
        for r in doc.get("resources") or []:
            if "/" in r.get("name", ""):
                continue
            out[r["kind"]] = Resource(group, version, r["name"], r["kind"], bool(r.get("namespaced")))
        return out

    async def resource(self, api_version: str, kind: str) -> Resource:
        """The resource for a kind; a miss re-reads discovery (at most once a second per
        group-version) before raising ``NoMatch``."""
        hit = self._gv.get(api_version)
        if hit and kind in hit[1]:
            return hit[1][kind]
        lock = self._locks.setdefault(api_version, asyncio.Lock())
        async with lock:
            hit = self._gv.get(api_version)
            if hit and kind in hit[1]:
                return hit[1][kind]
            if hit is None or time.monotonic() - hit[0] >= self._refresh_after:
                self._gv[api_version] = (time.monotonic(), await self._load(api_version))
            res = self._gv[api_version][1].get(kind)
        if res is None:
            raise NoMatch(api_version, kind)
        return res

    def invalidate(self, api_version: str | None = None) -> None:
        if api_version is None:
            self._gv.clear()
        else:
            self._gv.pop(api_version, None)
