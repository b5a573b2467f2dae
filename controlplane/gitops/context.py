"""What the gitops reconcilers share inside one controller process: the API client (and one
impersonating client per ServiceAccount), the REST mapper, the Event recorder, the data dir,
per-object wake-ups, apply caches, and the status-writing helper that writes only changes.

Wake-ups: each GitRepository/Sync/ManifestFile has an ``asyncio.Event`` its kopf daemon waits
on between reconciles (``Triggers``); a spec change, a ``requestedAt`` annotation, a new
source revision or a dependency turning ready sets it. Impersonation: a Sync's
``serviceAccountName`` sends ``Impersonate-User: system:serviceaccount:NS:NAME`` (plus the
service-account groups) on every request made for that sync, so RBAC decides what that sync may
do (the controller's own identity needs the ``impersonate`` verb). Neighbours: ``operator.py`` builds one;
``source.py``, ``sync.py``, ``manifests_dir.py`` use it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.client.events import EventRecorder
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.gitops import api
from controlplane.gitops.engine import ApplyCache
from controlplane.gitops.mapper import RestMapper
from controlplane.log import get_logger

log = get_logger(__name__)

Key = tuple[str, str, str]  # kind, namespace, name


def impersonation_headers(namespace: str, service_account: str) -> dict[str, str]:
    """What kube-apiserver's impersonation filter reads (client-go's ImpersonationConfig)."""
    return {"Impersonate-User": f"system:serviceaccount:{namespace}:{service_account}",
            "Impersonate-Group": "system:serviceaccounts"}


class Triggers:
    def __init__(self) -> None:
        self._events: dict[Key, asyncio.Event] = {}

    def event(self, key: Key) -> asyncio.Event:
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = asyncio.Event()
        return ev

    def wake(self, key: Key) -> None:
        self.event(key).set()

    def forget(self, key: Key) -> None:
        self._events.pop(key, None)

    async def wait(self, key: Key, timeout: float, stopped: Any = None) -> None:
        """Until woken, ``timeout`` passes, or ``stopped`` (kopf's daemon flag) is set."""
        ev = self.event(key)
        waits = [asyncio.ensure_future(ev.wait())]
        if stopped is not None:
            waits.append(asyncio.ensure_future(stopped.wait()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        ev.clear()


@dataclass
class Context:
    client: RestClient
    recorder: EventRecorder
    data_dir: Path
    manifests_dir: Path | None = None
    mapper: RestMapper = field(init=False)
    triggers: Triggers = field(default_factory=Triggers)
    caches: dict[Key, ApplyCache] = field(default_factory=dict)
    _sa_clients: dict[tuple[str, str], RestClient] = field(default_factory=dict)
    # handled generation / requestedAt per object: which watch events are worth a wake-up
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    failures: dict[Key, int] = field(default_factory=dict)
    # (namespace, GitRepository name) -> syncs reading it; (namespace, Sync name) -> syncs depending on it
    source_consumers: dict[tuple[str, str], set[Key]] = field(default_factory=dict)
    sync_dependents: dict[tuple[str, str], set[Key]] = field(default_factory=dict)
    builds: dict[Key, tuple[Any, list[dict]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mapper = RestMapper(self.client)

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "gitops" / "artifacts"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "gitops" / "work"

    def index_sync(self, obj: dict) -> None:
        """Remember which source a sync reads and which syncs it depends on (for wake-ups)."""
        md, spec = obj["metadata"], obj.get("spec") or {}
        key: Key = ("Sync", md["namespace"], md["name"])
        self.unindex(key)
        src = spec.get("sourceRef") or {}
        if src.get("name"):
            self.source_consumers.setdefault((src.get("namespace") or md["namespace"], src["name"]), set()).add(key)
        for d in spec.get("dependsOn") or []:
            if d.get("kind", "Sync") == "Sync" and d.get("apiVersion", api.API_VERSION) == api.API_VERSION:
                self.sync_dependents.setdefault((d.get("namespace") or md["namespace"], d["name"]), set()).add(key)

    def unindex(self, key: Key) -> None:
        for index in (self.source_consumers, self.sync_dependents):
            for k in [k for k, v in index.items() if key in v]:
                index[k].discard(key)
                if not index[k]:
                    del index[k]

    def wake_consumers(self, namespace: str, name: str) -> None:
        for k in list(self.source_consumers.get((namespace, name), ())):
            self.triggers.wake(k)

    def wake_dependents(self, namespace: str, name: str) -> None:
        for k in list(self.sync_dependents.get((namespace, name), ())):
            self.triggers.wake(k)

    def forget(self, key: Key) -> None:
        self.unindex(key)
        for d in (self.caches, self.seen, self.failures, self.builds):
            d.pop(key, None)
        self.triggers.forget(key)

    async def endpoints(self, namespace: str, name: str) -> dict | None:
        from controlplane.client import resources as R
        try:
            return await self.client.get(R.ENDPOINTS, name, namespace)
        except ApiStatusError as e:
            if e.not_found:
                return None
            raise

    def cache(self, key: Key, generation: Any = None) -> ApplyCache:
        """The apply cache of an object, emptied when its spec changed (``force``,
        ``overrideManagers``, ... change what an apply sends without changing the manifests)."""
        c = self.caches.get(key)
        if c is None or c.generation != generation:
            c = self.caches[key] = ApplyCache(generation=generation)
        return c

    def client_for(self, namespace: str, service_account: str | None) -> RestClient:
        if not service_account:
            return self.client
        k = (namespace, service_account)
        c = self._sa_clients.get(k)
        if c is None:
            headers = {**self.client._headers, **impersonation_headers(namespace, service_account)}
            headers.pop("Accept", None)
            headers.pop("User-Agent", None)
            c = self._sa_clients[k] = RestClient(self.client.base_url, headers=headers, ssl_ctx=self.client._ssl,
                                                 user_agent=f"{api.COMPONENT}/{service_account}", lite_http=True)
        return c

    async def close(self) -> None:
        for c in self._sa_clients.values():
            await c.close()
        self._sa_clients.clear()

    def event(self, obj: dict, etype: str, reason: str, message: str) -> None:
        self.recorder.event(obj, etype, reason, message[:1024])

    async def write_status(self, res: Resource, obj: dict, status: dict) -> dict:
        """Merge ``status`` into the object's status through ``/status`` when anything differs
        (conditions compared without their timestamps); returns the status now in force."""
        old = obj.get("status") or {}
        changed = False
        for k, v in status.items():
            if k == "conditions":
                if not api.same_conditions(old.get(k) or [], v):
                    changed = True
            elif old.get(k) != v:
                changed = True
        if not changed:
            return old
        md = obj["metadata"]
        try:
            out = await self.client.patch(res, md["name"], {"status": status}, md.get("namespace"),
                                          subresource="status", field_manager=api.FIELD_MANAGER)
        except ApiStatusError as e:
            if e.not_found:
                return old
            raise
        return out.get("status") or {}
