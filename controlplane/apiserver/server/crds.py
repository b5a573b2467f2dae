"""Custom resources served dynamically: the registry follows the stored CRDs.

Every apiserver process registers each stored CustomResourceDefinition (registry entries per
served version with schema, printer columns, status/scale subresources) and follows the CRD
watch cache, so CRDs written through another worker are served here too (``register`` on
ADDED/MODIFIED, ``forget`` on DELETED; ``catch_up`` makes it consistent with etcd on demand).
The writes that follow a CRD write happen once, in the process that handled it (``sync``,
called after each CRD write): the ``NamesAccepted``/``Established`` conditions written to
``status``, or, for a CRD being deleted, deleting its custom resources first (the
``customresourcecleanup.apiextensions.k8s.io`` finalizer and the ``Terminating`` condition, as
Kubernetes does; its resources are then served as terminating: no creates). Each version's
``ResourceInfo`` carries its deprecation Warning and ``selectableFields``. The CRD
strategy (``strategy/customresourcedefinition.py``) calls ``sync``/``forget`` after CRD writes.
Neighbours: ``discovery/registry.py`` (what gets served), ``app.ApiServer`` (owns this; it is
the ``CrdHost``), ``endpoints/write.py``/``delete.py`` (the writes), ``persistence/caches.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import ujson

from controlplane.apiserver.discovery.registry import ResourceInfo, version_priority
from controlplane.apiserver.endpoints.common import Api
from controlplane.apiserver.endpoints.delete import delete_object
from controlplane.apiserver.endpoints.write import write_update
from controlplane.apiserver.meta import errors
from controlplane.apiserver.persistence.codec import decode, prefix
from controlplane.apiserver.persistence.watchcache import WatchCache
from controlplane.apiserver.strategy.customresource import CUSTOM_RESOURCE
from controlplane.apiserver.strategy.customresourcedefinition import CLEANUP_FINALIZER
from controlplane.machinery.timestamps import now_rfc3339
from controlplane.log import get_logger
from controlplane.storage.interface import CompactedError, StorageError

log = get_logger(__name__)

# How long custom resources may remain after their CRD's deletion deleted them before the CRD
# says so (``InstanceDeletionCheck``): the finalizer controller's one-minute poll.
CLEANUP_CHECK_S = 60.0


class CrdHost(Api, Protocol):
    """What the CRD controller needs of its apiserver process (``app.ApiServer``)."""

    primary: bool  # the one worker that finishes what a previous run left undone

    def spawn(self, coro: Any) -> "asyncio.Task[Any]":
        """Run ``coro`` as a task the server owns (cancelled when it stops)."""


def infos_for(crd: dict[str, Any]) -> list[ResourceInfo]:
    """ResourceInfo for every served version of a CRD."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = spec.get("versions") or []
    storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "v1")
    out = []
    for v in versions:
        if not v.get("served", True):
            continue
        subs = v.get("subresources") or {}
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        sub_set = set()
        if "status" in subs:
            sub_set.add("status")
        if "scale" in subs:
            sub_set.add("scale")
        out.append(ResourceInfo(
            group=group, version=v["name"], kind=names.get("kind", ""), plural=names.get("plural", ""),
            singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            subresources=frozenset(sub_set), list_kind=names.get("listKind") or names.get("kind", "") + "List",
            is_custom=True, schema=schema, printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            scale=subs.get("scale"),
            storage_version=storage, strategy=CUSTOM_RESOURCE,
            selectable_fields=tuple(str(f.get("jsonPath") or "").lstrip(".")
                                    for f in v.get("selectableFields") or [] if isinstance(f, dict)),
            warning=deprecation_warning(v, spec) if v.get("deprecated") else "",
            terminating=bool((crd.get("metadata") or {}).get("deletionTimestamp")),
        ))
    return out


def deprecation_warning(version: dict[str, Any], spec: dict[str, Any]) -> str:
    """The Warning a deprecated version's requests get: its ``deprecationWarning``, else
    apiextensions-apiserver's ``defaultDeprecationWarning`` (``<group>/<version> <Kind> is
    deprecated``, naming the most stable served, not deprecated, newer version if any)."""
    if version.get("deprecationWarning") is not None:
        return str(version["deprecationWarning"])
    group, kind, name = spec.get("group", ""), (spec.get("names") or {}).get("kind", ""), version.get("name", "")
    msg = f"{group}/{name} {kind} is deprecated"
    newer = [v["name"] for v in spec.get("versions") or []
             if v.get("served") and not v.get("deprecated") and version_priority(v["name"]) < version_priority(name)]
    if newer:
        msg += f"; use {group}/{min(newer, key=version_priority)} {kind}"
    return msg


def selectable_paths(crd: dict[str, Any]) -> tuple[str, ...]:
    """Every version's selectableFields (objects are stored at one version, so the watch cache
    computes them all; a request may select on its own version's)."""
    return tuple(sorted({f for info in infos_for(crd) for f in info.selectable_fields}))


class CrdController:
    """Keeps this process's registry in line with the stored CRDs (see the module docstring)."""

    def __init__(self, api: CrdHost) -> None:
        self.api = api
        self._served: dict[str, list[tuple[str, str, str]]] = {}  # crd name -> registry keys
        self._storage: dict[str, ResourceInfo] = {}  # crd name -> a served version (its cache)
        self._seen: dict[str, tuple[int, bytes]] = {}  # crd name -> (rv, spec) last applied (spec b"": deleted)
        self._cleaning: set[str] = set()
        self._lock = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None

    @property
    def info(self) -> ResourceInfo:
        info = self.api.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        return info

    async def start(self) -> None:
        """Register every stored CRD, then follow the CRD watch cache (CRDs written through
        other apiserver processes). The primary process also finishes what the previous run
        left undone (status conditions, clean-ups of deleted CRDs)."""
        cache = await self.api.caches.cache_for(self.info)
        entries, rev = cache.list()
        for e in entries:
            crd = ujson.loads(e.raw)
            await self.register(crd)
            if self.api.primary:
                self._follow_up(crd)
        self._follower = asyncio.get_running_loop().create_task(self._follow(rev), name="crd-follower")

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None

    async def _follow(self, rev: int) -> None:
        while True:
            cache = await self.api.caches.cache_for(self.info)
            try:
                w = await cache.watch(rev)
            except CompactedError:  # fell out of the ring: resynchronise from the whole cache
                rev = await self._reconcile(cache)
                continue
            async for ev in w:
                try:
                    if ev.type in ("ADDED", "MODIFIED"):
                        await self.register(ujson.loads(ev.raw))
                    elif ev.type == "DELETED":
                        await self.forget(ujson.loads(ev.raw))
                except Exception as e:  # noqa: BLE001 - one odd CRD must not stop the follower
                    log.error("could not apply a CRD event", error=repr(e), rv=ev.rv)
            rev = max(rev, w.last_rv)
            await asyncio.sleep(0.05)  # the cache was re-initialised or we overflowed: resume

    async def catch_up(self) -> None:
        """Make the registry consistent with etcd now (a consistent read of the CRD cache)."""
        cache = await self.api.caches.cache_for(self.info)
        try:
            await cache.wait_fresh(await self.api.backend.current_revision())
        except StorageError as e:  # serve what we know; the request itself will report etcd trouble
            log.warning("could not catch up with the stored CRDs", error=str(e))
            return
        await self._reconcile(cache)

    async def _reconcile(self, cache: WatchCache) -> int:
        entries, rev = cache.list()
        present = set()
        for e in entries:
            crd = ujson.loads(e.raw)
            present.add(crd["metadata"]["name"])
            await self.register(crd)
        for name in [n for n in self._served if n not in present]:
            if self._seen.get(name, (0, b""))[0] <= rev:
                await self._unregister(name, rev)
        return rev

    async def register(self, crd: dict[str, Any]) -> None:
        """Serve a stored CRD's resources (idempotent; older states than the last applied one,
        and unchanged specs, are ignored)."""
        name = crd["metadata"]["name"]
        rv = int(crd["metadata"].get("resourceVersion") or 0)
        spec = ujson.dumps(crd.get("spec") or {}, sort_keys=True).encode()
        if crd["metadata"].get("deletionTimestamp"):
            spec += b" terminating"  # served as terminating: no creates
        async with self._lock:
            seen = self._seen.get(name)
            if seen is not None and (rv < seen[0] or (rv == seen[0] and not seen[1])
                                     or (seen[1] == spec and name in self._served)):
                if rv > seen[0]:
                    self._seen[name] = (rv, spec)
                return
            self._seen[name] = (rv, spec)
            for key in self._served.pop(name, []):
                self.api.registry.remove(*key)
            infos = infos_for(crd)
            for info in infos:
                self.api.registry.add(info)
            self._served[name] = [(i.group, i.version, i.plural) for i in infos]
            if infos:
                self._storage[name] = infos[0]
                await self.api.caches.cache_for(infos[0], selectable=selectable_paths(crd))

    async def sync(self, crd: dict[str, Any]) -> None:
        """After a CRD write through this process: serve it, then do the writes that follow
        (status conditions, or the clean-up of a CRD being deleted) -- once, here."""
        await self.register(crd)
        self._follow_up(crd)

    def _follow_up(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        if crd["metadata"].get("deletionTimestamp"):
            if name not in self._cleaning:
                self._cleaning.add(name)
                self.api.spawn(self._cleanup(crd))
        elif not _established(crd):
            self.api.spawn(self._set_established(name))

    async def forget(self, crd: dict[str, Any]) -> None:
        """Stop serving a deleted CRD's resources."""
        await self._unregister(crd["metadata"]["name"], int(crd["metadata"].get("resourceVersion") or 0))

    async def _unregister(self, name: str, rv: int) -> None:
        async with self._lock:
            seen = self._seen.get(name)
            if seen is not None and rv < seen[0]:
                return  # an older deletion than the state applied (re-created since)
            self._seen[name] = (rv, b"")
            for key in self._served.pop(name, []):
                self.api.registry.remove(*key)
            storage = self._storage.pop(name, None)
            if storage is not None:
                await self.api.caches.drop(storage)

    async def _set_established(self, name: str) -> None:
        async def compute(current: dict[str, Any]) -> dict[str, Any]:
            now = now_rfc3339()
            spec = current.get("spec") or {}
            status = dict(current.get("status") or {})
            status["acceptedNames"] = spec.get("names") or {}
            status["storedVersions"] = sorted({*(status.get("storedVersions") or []),
                                              *[v["name"] for v in spec.get("versions") or [] if v.get("storage")]})
            conds = [c for c in status.get("conditions") or [] if c.get("type") not in ("NamesAccepted", "Established")]
            conds.append({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                          "message": "no conflicts found", "lastTransitionTime": now})
            conds.append({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                          "message": "the initial names have been accepted", "lastTransitionTime": now})
            status["conditions"] = conds
            current["status"] = status
            return current

        try:
            obj = await write_update(self.api, self.info, None, name, compute, subresource="status", strict=False,
                                     manager="apiextensions-apiserver", dry=False)
            await self.sync(obj)
        except errors.ApiError as e:
            if e.code != 404:
                log.warning("could not establish CRD", crd=name, error=e.message)

    async def _cleanup(self, crd: dict[str, Any]) -> None:
        """Delete every custom resource of a CRD being deleted, then drop its finalizer; the
        ``Terminating`` condition says how far it got, as apiextensions-apiserver's finalizer
        controller writes it (``InstanceDeletionInProgress``, ``InstanceDeletionCheck`` while
        custom resources are still there a minute later, e.g. held by their finalizers,
        ``InstanceDeletionCompleted``)."""
        infos = infos_for(crd)
        name = crd["metadata"]["name"]
        if infos and CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or []):
            info = infos[0]
            await self._set_terminating(name, "True", "InstanceDeletionInProgress",
                                        "CustomResource deletion is in progress")
            loop = asyncio.get_running_loop()
            checked_at = loop.time() + CLEANUP_CHECK_S
            while True:
                res = await self.api.backend.list(prefix(info))
                if not res.items:
                    break
                for kv in res.items:
                    meta = decode(kv)["metadata"]
                    if meta.get("deletionTimestamp"):
                        continue  # deleted already, waiting for its finalizers
                    try:
                        await delete_object(self.api, info, meta.get("namespace"), meta["name"], grace=0,
                                            propagation="Background")
                    except errors.ApiError:
                        pass
                if checked_at and loop.time() >= checked_at:
                    checked_at = 0.0
                    await self._set_terminating(
                        name, "True", "InstanceDeletionCheck",
                        "could not confirm zero CustomResources remaining: timed out waiting for the condition")
                await asyncio.sleep(0.5)
            await self._set_terminating(name, "False", "InstanceDeletionCompleted", "removed all instances")

        async def compute(current: dict[str, Any]) -> dict[str, Any]:
            current["metadata"]["finalizers"] = [f for f in current["metadata"].get("finalizers") or []
                                                 if f != CLEANUP_FINALIZER]
            return current

        try:
            await self._write(name, compute, "", "could not finish CRD deletion")
        finally:
            self._cleaning.discard(name)

    async def _write(self, name: str, compute: Any, subresource: str, failure: str) -> None:
        """Write the CRD as apiextensions-apiserver; a CRD already gone is no failure."""
        try:
            await write_update(self.api, self.info, None, name, compute, subresource=subresource, strict=False,
                               manager="apiextensions-apiserver", dry=False)
        except errors.ApiError as e:
            if e.code != 404:
                log.warning(failure, crd=name, error=e.message)

    async def _set_terminating(self, name: str, status: str, reason: str, message: str) -> None:
        async def compute(current: dict[str, Any]) -> dict[str, Any]:
            st = dict(current.get("status") or {})
            conds = list(st.get("conditions") or [])
            i = next((i for i, c in enumerate(conds) if c.get("type") == "Terminating"), len(conds))
            prev = conds[i] if i < len(conds) else {}
            since = prev.get("lastTransitionTime") if prev.get("status") == status else None
            cond = {"type": "Terminating", "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": since or now_rfc3339()}
            conds[i:i + 1] = [cond]  # SetCRDCondition: in place, else appended
            st["conditions"] = conds
            current["status"] = st
            return current

        await self._write(name, compute, "status", "could not write the CRD's Terminating condition")


def _established(crd: dict[str, Any]) -> bool:
    conds = (crd.get("status") or {}).get("conditions") or []
    ok = any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)
    accepted = (crd.get("status") or {}).get("acceptedNames") == (crd.get("spec") or {}).get("names")
    return ok and accepted
