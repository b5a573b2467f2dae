"""The aggregated discovery document of ``/api`` and ``/apis`` (``apidiscovery.k8s.io/v2``) with
the APIService groups merged in, as kube-aggregator's discovery manager builds it.

A group/version served by another server (an APIService with a service) carries that server's
resources: its ``/apis`` asked for aggregated discovery, or else its legacy
``/apis/<group>/<version>`` converted. They are fetched when the APIService appears or changes
(the first document after that waits for the fetch, at most ``timeout``) and again in the
background once they are older than ``refresh``; a backend that is unavailable or does not
answer leaves the last resources it gave (none at first) marked ``freshness: Stale``.

The document is built once per change of what it is made of (the registry's generation:
CRDs; the APIServices; the fetched resources) and kept as bytes with its ETag, so a request
costs a dictionary lookup. Group order and version order are the legacy ``/apis``'s
(``apiservices.aggregated_groups``). Neighbours: ``discovery/aggregated.py`` (the local
groups, the conversion), ``aggregator.py`` (owner), ``server/routes.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from controlplane.apiserver.aggregation.apiservices import APIServices, aggregated_groups, is_available, is_remote
from controlplane.apiserver.aggregation.proxy import Proxy
from controlplane.apiserver.aggregation.resolve import ResolveError
from controlplane.apiserver.discovery import aggregated as agg
from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.meta.jsonutil import dumps, loads
from controlplane.log import get_logger

log = get_logger(__name__)
Obj = dict[str, Any]
ACCEPT = ",".join([agg.content_type("v2"), agg.content_type("v2beta1"), "application/json"])
# as kube-aggregator's discovery fetches: the front-proxy certificate, as system:kube-aggregator
IDENTITY = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters"}


@dataclass
class Fetched:
    fingerprint: tuple[str, bool]  # the APIService's spec and availability when fetched
    group: str
    version_doc: Obj
    at: float


def merged_items(local: dict[str, Obj], apiservices: list[Obj], local_versions: dict[str, list[str]],
                 remote: dict[tuple[str, str], Obj]) -> list[Obj]:
    """``/apis`` items: the local groups not taken over by an APIService, then the aggregated
    groups; a remote version without fetched resources yet is an empty Stale one."""
    aggregated = aggregated_groups(apiservices, local_versions)
    names = {g["name"] for g in aggregated}
    items = [doc for name, doc in local.items() if name and name not in names]
    for g in aggregated:
        name = g["name"]
        local_docs = {v["version"]: v for v in (local.get(name) or {}).get("versions") or []}
        versions = []
        for gv in g["versions"]:
            v = gv["version"]
            doc = remote.get((name, v)) or local_docs.get(v)
            versions.append(doc if doc is not None else agg.version_doc(v, [], agg.STALE))
        items.append(agg.group_doc(name, versions))
    return items


def etag(body: bytes) -> str:
    return '"%s"' % hashlib.sha512(body).hexdigest().upper()


class AggregatedDiscovery:
    def __init__(self, apiservices: APIServices, registry: Registry, proxy: Proxy, *,
                 refresh: float = 30.0, timeout: float = 5.0) -> None:
        self.apiservices = apiservices
        self.registry = registry
        self.proxy = proxy
        self.refresh = refresh
        self.timeout = timeout
        self._fetched: dict[str, Fetched] = {}  # APIService name -> its backend's resources
        self._inflight: dict[str, tuple[tuple[str, bool], asyncio.Task[None]]] = {}
        self._changes = 0  # bumped when fetched resources change
        self._local: tuple[int, dict[str, Obj]] = (-1, {})
        self._docs: dict[tuple[Any, ...], tuple[bytes, str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._seen: tuple[list[Obj], list[Obj], tuple[Any, ...], list[tuple[str, bool]]] | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _local_groups(self) -> dict[str, Obj]:
        gen = self.registry.generation
        if self._local[0] != gen:
            self._local = (gen, agg.local_groups(self.registry))
        return self._local[1]

    async def document(self, root: str, version: str) -> tuple[bytes, str]:
        """The ``/api`` (``root="api"``) or ``/apis`` document at ``version`` (``v2``/``v2beta1``):
        its JSON bytes and ETag."""
        remote: list[Obj] = []
        signature: tuple[Any, ...] = ()
        if root == "apis":
            remote, signature, fps = self._remote()
            await self._sync(remote, fps)
        key = (root, version, self.registry.generation, self._changes, signature)
        hit = self._docs.get(key)
        if hit is None:
            local = self._local_groups()
            if root == "api":
                items = [local[""]] if "" in local else []
            else:
                fetched = {(f.group, f.version_doc["version"]): f.version_doc for f in self._fetched.values()}
                items = merged_items(local, remote, self.registry.group_versions(), fetched)
            body = dumps(agg.document(items, version))
            if len(self._docs) > 64:
                self._docs.clear()
            hit = self._docs[key] = (body, etag(body))
        return hit

    def _remote(self) -> tuple[list[Obj], tuple[Any, ...], list[tuple[str, bool]]]:
        """The APIServices with a service, their (name, resourceVersion)s and fingerprints:
        worked out again only when the APIServices changed."""
        items = self.apiservices.all()
        if self._seen is None or self._seen[0] is not items:
            remote = [a for a in items if is_remote(a) and (a.get("spec") or {}).get("group")]
            signature = tuple(((a.get("metadata") or {}).get("name"), (a.get("metadata") or {}).get("resourceVersion"))
                              for a in remote)
            fps = [(dumps(a.get("spec")).decode(), is_available(a)) for a in remote]
            self._seen = (items, remote, signature, fps)
        return self._seen[1], self._seen[2], self._seen[3]

    async def _sync(self, remote: list[Obj], fps: list[tuple[str, bool]]) -> None:
        now = time.monotonic()
        names = set()
        wait: list[asyncio.Task[None]] = []
        for a, fp in zip(remote, fps):
            name = (a.get("metadata") or {}).get("name") or ""
            names.add(name)
            f = self._fetched.get(name)
            if f is None or f.fingerprint != fp:
                wait.append(self._start(name, a, fp))
            elif now - f.at >= self.refresh:
                self._start(name, a, fp)
        for name in [n for n in self._fetched if n not in names]:
            del self._fetched[name]
            self._changes += 1
        if wait:  # not cancelled with the request: the next one reuses the result
            await asyncio.wait(wait, timeout=self.timeout + 1)

    def _start(self, name: str, apiservice: Obj, fp: tuple[str, bool]) -> asyncio.Task[None]:
        running = self._inflight.get(name)
        if running is not None and running[0] == fp and not running[1].done():
            return running[1]
        task = asyncio.get_running_loop().create_task(self._refresh(name, apiservice, fp),
                                                      name=f"discovery-{name}")
        self._inflight[name] = (fp, task)
        task.add_done_callback(lambda t, n=name: self._done(n, t))
        return task

    def _done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._inflight.get(name, (None, None))[1] is task:
            del self._inflight[name]
        if not task.cancelled() and task.exception() is not None:
            log.warning("aggregated discovery refresh failed", apiservice=name, error=repr(task.exception()))

    async def _refresh(self, name: str, apiservice: Obj, fp: tuple[str, bool]) -> None:
        spec = apiservice.get("spec") or {}
        group, version = spec.get("group") or "", spec.get("version") or ""
        prev = self._fetched.get(name)
        doc: Obj | None = None
        if is_available(apiservice):
            try:
                doc = agg.version_doc(version, await self.fetch(apiservice, group, version))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, LookupError, ResolveError) as e:
                log.info("aggregated discovery unreachable", apiservice=name, error=str(e) or type(e).__name__)
        if doc is None:  # kube-aggregator: the last resources seen, marked Stale
            same = prev is not None and prev.group == group and prev.version_doc["version"] == version
            doc = agg.version_doc(version, (prev.version_doc.get("resources") or []) if same and prev else [],
                                  agg.STALE)
        if name not in {(a.get("metadata") or {}).get("name") for a in self.apiservices.all()}:
            return  # deleted meanwhile
        if prev is None or prev.version_doc != doc or prev.group != group:
            self._changes += 1
        self._fetched[name] = Fetched(fp, group, doc, time.monotonic())

    async def fetch(self, apiservice: Obj, group: str, version: str) -> list[Obj]:
        """The backend's resources of ``group/version``: from its aggregated ``/apis`` when it
        serves one, else its legacy ``/apis/<group>/<version>`` converted."""
        base = self.proxy.resolver.url(apiservice)
        ctx, server_name = self.proxy.tls.for_apiservice(apiservice)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        session = self._client()
        async with session.get(f"{base}/apis", headers={**IDENTITY, "Accept": ACCEPT}, ssl=ctx,
                               server_hostname=server_name, timeout=timeout) as r:
            body = await r.read()
            ctype = r.headers.get("Content-Type", "")
            if r.status == 200 and agg.negotiate(ctype) in agg.VERSIONS:
                found = agg.find_version(loads(body), group, version)
                if found is None:
                    raise LookupError(f"{group}/{version} is not in the discovery of {base}")
                return list(found.get("resources") or [])
        async with session.get(f"{base}/apis/{group}/{version}", headers={**IDENTITY, "Accept": "application/json"},
                               ssl=ctx, server_hostname=server_name, timeout=timeout) as r:
            body = await r.read()
            if r.status != 200:
                raise LookupError(f"bad status from {base}/apis/{group}/{version}: {r.status}")
            return agg.resources_from_list(group, version, loads(body).get("resources") or [])

    async def close(self) -> None:
        tasks = [t for _, t in self._inflight.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
