"""The apply engine, as Flux's (fluxcd/pkg/ssa) does it: server-side dry run of every object
first (so a bad manifest applies nothing of its revision), then server-side apply with one
field manager, in order: CustomResourceDefinitions and Namespaces first (CRDs waited for
until established), then the other kinds group by group (``ordering.py``), custom resources
last; objects whose live state already equals the dry run's result are not written (drift
detection), and fields owned by other field managers are left alone (``fieldsets.py``).

Objects whose Namespace or CRD comes with the same revision cannot be dry-run before stage one
is applied: they are dry-run right after it, before anything else is written (so a bad one
can leave only that revision's new Namespaces/CRDs applied, as with Flux). ``force`` (or the
``gitops.controlplane.io/force: enabled`` annotation) recreates objects whose immutable
fields changed. ``prune`` deletes objects that left the inventory, except those annotated
``gitops.controlplane.io/prune: disabled`` or no longer carrying the owner's labels.

A per-owner ``ApplyCache`` remembers, per object, the digest of what was applied and the
live resourceVersion seen after it: an unchanged manifest over an unchanged live object needs
no dry run at all (any edit changes the resourceVersion). Neighbours: ``sync.py`` and
``manifests_dir.py`` (callers), ``mapper.py``, ``fieldsets.py``, ``inventory.py``.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml
from prometheus_client import Counter

from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.gitops import fieldsets
from controlplane.gitops.api import ANN_FORCE, ANN_PRUNE, DISABLED, ENABLED, FIELD_MANAGER
from controlplane.gitops.inventory import ObjRef, stale
from controlplane.gitops.mapper import NoMatch, RestMapper
from controlplane.gitops.ordering import is_stage_one, kind_rank
from controlplane.log import get_logger

log = get_logger(__name__)

API_WRITES = Counter("gitops_api_writes_total", "Writes (not dry runs) the gitops controller sent for synced objects",
                     ["verb"])
DRY_RUNS = Counter("gitops_api_dry_runs_total", "Server-side apply dry runs the gitops controller sent")

_NOISE_MD = ("managedFields", "resourceVersion", "generation")


class ApplyFailed(Exception):
    """Validation or apply failed. ``stalled``: retrying the same revision cannot help
    (the API rejected the manifest); else transient."""

    def __init__(self, message: str, reason: str = "ValidationFailed", stalled: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.stalled = stalled


@dataclass
class Change:
    ref: ObjRef
    action: str  # created, configured, unchanged, recreated, deleted, skipped
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.ref} {self.action}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Options:
    owner_labels: dict[str, str]
    override_managers: list[str]
    force: bool = False
    target_namespace: str = ""
    default_namespace: str = "default"
    field_manager: str = FIELD_MANAGER
    concurrency: int = 16
    crd_timeout: float = 30.0


@dataclass
class ApplyCache:
    """id → (digest of the applied object, live resourceVersion after it), valid for one
    generation of the owner's spec."""

    seen: dict[str, tuple[str, str]] = field(default_factory=dict)
    generation: Any = None


@dataclass
class Result:
    changes: list[Change]
    refs: list[ObjRef]
    writes: int = 0

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out


@dataclass
class _Item:
    obj: dict
    ref: ObjRef
    digest: str
    res: Resource | None = None
    live: dict | None = None
    dry: dict | None = None
    action: str = ""
    removed: list[str] = field(default_factory=list)
    recreate: bool = False


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def comparable(obj: dict) -> dict:
    """An object without what a write changes by itself (managedFields, resourceVersion,
    generation) and without status (never applied)."""
    o = dict(obj)
    o.pop("status", None)
    md = dict(o.get("metadata") or {})
    for k in _NOISE_MD:
        md.pop(k, None)
    o["metadata"] = md
    return o


def yaml_diff(live: dict | None, new: dict | None, name: str) -> str:
    a = yaml.safe_dump(comparable(live), sort_keys=True).splitlines() if live else []
    b = yaml.safe_dump(comparable(new), sort_keys=True).splitlines() if new else []
    return "\n".join(difflib.unified_diff(a, b, f"live/{name}", f"merged/{name}", lineterm=""))


def _status_message(e: ApiStatusError, item: _Item) -> str:
    msg = e.message or e.reason
    return msg if str(item.ref.name) in msg or item.ref.kind in msg else f"{item.ref}: {msg}"


async def _gather_limited(n: int, coros: Iterable[Any]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def run(c: Any) -> Any:
        async with sem:
            return await c
    return await asyncio.gather(*(run(c) for c in coros), return_exceptions=True)


class Engine:
    def __init__(self, client: RestClient, mapper: RestMapper) -> None:
        self.client = client
        self.mapper = mapper
        self.writes = 0

    # -- preparing ------------------------------------------------------------------------

    async def _prepare(self, objs: list[dict], opts: Options) -> tuple[list[_Item], dict[tuple[str, str], bool]]:
        """Items with namespaces and owner labels set; ``(group, kind) → namespaced`` for the
        custom resources of CRDs in this batch (not yet served)."""
        batch_crds: dict[tuple[str, str], bool] = {}
        for o in objs:
            if o.get("kind") == "CustomResourceDefinition" and str(o.get("apiVersion", "")).startswith("apiextensions.k8s.io/"):
                spec = o.get("spec") or {}
                kind = (spec.get("names") or {}).get("kind")
                if spec.get("group") and kind:
                    batch_crds[(spec["group"], kind)] = spec.get("scope", "Namespaced") == "Namespaced"
        items: list[_Item] = []
        seen: dict[str, int] = {}
        for raw in objs:
            o = copy.deepcopy(raw)
            o.pop("status", None)
            md = o.setdefault("metadata", {})
            if not md.get("name"):
                raise ApplyFailed(f"{o.get('kind')} without metadata.name (generateName is not supported by server-side apply)")
            api_version, kind = o.get("apiVersion", ""), o.get("kind", "")
            group = api_version.rpartition("/")[0]
            res: Resource | None = None
            try:
                res = await self.mapper.resource(api_version, kind)
                namespaced = res.namespaced
            except NoMatch as e:
                if (group, kind) not in batch_crds:
                    raise ApplyFailed(f"{kind}/{md['name']}: {e}") from None
                namespaced = batch_crds[(group, kind)]
            if namespaced:
                md["namespace"] = opts.target_namespace or md.get("namespace") or opts.default_namespace
            else:
                md.pop("namespace", None)
            md["labels"] = {**(md.get("labels") or {}), **opts.owner_labels}
            item = _Item(o, ObjRef.of(o), _digest(o), res)
            if item.ref.id in seen:
                raise ApplyFailed(f"{item.ref} is defined more than once")
            seen[item.ref.id] = 1
            items.append(item)
        return items, batch_crds

    async def _fetch_live(self, items: list[_Item], opts: Options) -> None:
        """Live objects: one labelled list per resource, a GET for the rest (adoption)."""
        by_res: dict[Resource, list[_Item]] = {}
        for it in items:
            if it.res is not None:
                by_res.setdefault(it.res, []).append(it)
        selector = ",".join(f"{k}={v}" for k, v in sorted(opts.owner_labels.items()))

        async def list_one(res: Resource, its: list[_Item]) -> None:
            try:
                lst = await self.client.list_all(res, label_selector=selector)
            except ApiStatusError as e:
                raise ApplyFailed(f"listing {res.plural}: {e.message}", "ApplyFailed", stalled=False) from e
            found = {ObjRef.of({**o, "apiVersion": res.api_version, "kind": res.kind}).id: o for o in lst.get("items") or []}
            for it in its:
                it.live = found.get(it.ref.id)
        errs = [r for r in await _gather_limited(8, (list_one(r, its) for r, its in by_res.items())) if isinstance(r, Exception)]
        if errs:
            raise errs[0]
        missing = [it for it in items if it.res is not None and it.live is None]

        async def get_one(it: _Item) -> None:
            assert it.res is not None
            try:
                it.live = await self.client.get(it.res, it.ref.name, it.ref.namespace or None)
            except ApiStatusError as e:
                if not e.not_found:
                    raise ApplyFailed(f"reading {it.ref}: {e.message}", "ApplyFailed", stalled=False) from e
        errs = [r for r in await _gather_limited(opts.concurrency, (get_one(it) for it in missing)) if isinstance(r, Exception)]
        if errs:
            raise errs[0]

    # -- dry run --------------------------------------------------------------------------

    def _body(self, it: _Item, opts: Options) -> dict:
        body = copy.deepcopy(it.obj)
        it.removed = fieldsets.strip_foreign(body, it.live, opts.field_manager, opts.override_managers)
        return body

    async def _dry_run(self, it: _Item, opts: Options) -> str | None:
        """Dry-run one item; sets ``action`` (created/configured/unchanged/recreated);
        returns an error message or None."""
        assert it.res is not None
        body = self._body(it, opts)
        DRY_RUNS.inc()
        try:
            it.dry = await self.client.request(
                "PATCH", it.res.path(it.ref.namespace or None, it.ref.name),
                params={"fieldManager": opts.field_manager, "force": "true", "dryRun": "All", "fieldValidation": "Strict"},
                body=body, content_type="application/apply-patch+yaml")
        except ApiStatusError as e:
            if e.code == 422 and "field is immutable" in e.message and it.live is not None and (
                    opts.force or ((it.obj.get("metadata") or {}).get("annotations") or {}).get(ANN_FORCE) == ENABLED):
                it.recreate = True
                it.action = "recreated"
                return None
            if e.code in (500, 503, 504, 429):
                raise ApplyFailed(f"{it.ref}: {e.message}", "ApplyFailed", stalled=False) from e
            return _status_message(e, it)
        if it.live is None:
            it.action = "created"
        elif comparable(it.dry) != comparable(it.live):
            it.action = "configured"
        else:
            it.action = "unchanged"
        return None

    async def _dry_run_all(self, items: list[_Item], opts: Options) -> None:
        results = await _gather_limited(opts.concurrency, (self._dry_run(it, opts) for it in items))
        errors: list[str] = []
        for r in results:
            if isinstance(r, ApplyFailed):
                raise r
            if isinstance(r, BaseException):
                raise r
            if r:
                errors.append(r)
        if errors:
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise ApplyFailed("dry-run failed: " + "; ".join(errors[:5]) + more)

    # -- writes ---------------------------------------------------------------------------

    async def _write(self, it: _Item, opts: Options, cache: ApplyCache | None) -> None:
        assert it.res is not None
        ns = it.ref.namespace or None
        if it.recreate:
            await self._delete_and_wait(it.res, it.ref, opts)
        body = self._body(it, opts)
        try:
            out = await self.client.request(
                "PATCH", it.res.path(ns, it.ref.name),
                params={"fieldManager": opts.field_manager, "force": "true", "fieldValidation": "Strict"},
                body=body, content_type="application/apply-patch+yaml")
        except ApiStatusError as e:
            raise ApplyFailed(f"apply failed: {_status_message(e, it)}", "ApplyFailed",
                              stalled=e.code in (400, 422)) from e
        finally:
            self.writes += 1
            API_WRITES.labels("apply").inc()
        if cache is not None and isinstance(out, dict):
            cache.seen[it.ref.id] = (it.digest, (out.get("metadata") or {}).get("resourceVersion", ""))

    async def _delete_and_wait(self, res: Resource, ref: ObjRef, opts: Options) -> None:
        ns = ref.namespace or None
        try:
            self.writes += 1
            API_WRITES.labels("delete").inc()
            await self.client.delete(res, ref.name, ns, propagation_policy="Background")
        except ApiStatusError as e:
            if not e.not_found:
                raise ApplyFailed(f"recreating {ref}: {e.message}", "ApplyFailed", stalled=False) from e
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                await self.client.get(res, ref.name, ns)
            except ApiStatusError as e:
                if e.not_found:
                    return
                raise
            await asyncio.sleep(0.2)
        raise ApplyFailed(f"recreating {ref}: the old object was not deleted within 60s", "ApplyFailed", stalled=False)

    async def _write_all(self, items: list[_Item], opts: Options, cache: ApplyCache | None) -> None:
        """Write the changed items rank by rank (each rank concurrently)."""
        ranks: dict[int, list[_Item]] = {}
        for it in items:
            if it.action in ("created", "configured", "recreated"):
                ranks.setdefault(kind_rank(it.ref.group, it.ref.kind), []).append(it)
        for rank in sorted(ranks):
            results = await _gather_limited(opts.concurrency, (self._write(it, opts, cache) for it in ranks[rank]))
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def _wait_crds(self, items: list[_Item], opts: Options) -> None:
        from controlplane.gitops.health import compute
        crds = [it for it in items if it.ref.kind == "CustomResourceDefinition" and it.res is not None]
        deadline = time.monotonic() + opts.crd_timeout
        for it in crds:
            assert it.res is not None
            while True:
                try:
                    live = await self.client.get(it.res, it.ref.name)
                except ApiStatusError as e:
                    if not e.not_found:
                        raise ApplyFailed(f"reading {it.ref}: {e.message}", "ApplyFailed", stalled=False) from e
                    live = None
                if (await compute(live)).ok:
                    break
                if time.monotonic() > deadline:
                    raise ApplyFailed(f"{it.ref} not established within {opts.crd_timeout:g}s", "ApplyFailed", stalled=False)
                await asyncio.sleep(0.1)
            spec = it.obj.get("spec") or {}
            for v in spec.get("versions") or []:
                self.mapper.invalidate(f"{spec.get('group')}/{v.get('name')}")

    # -- the entry points -----------------------------------------------------------------

    async def apply(self, objs: list[dict], opts: Options, *, cache: ApplyCache | None = None,
                    plan: bool = False) -> Result:
        """Validate then apply ``objs`` (``plan``: validate and report only, writing nothing)."""
        writes0 = self.writes
        items, batch_crds = await self._prepare(objs, opts)
        await self._fetch_live(items, opts)
        new_namespaces = {it.ref.name for it in items if it.ref.kind == "Namespace" and it.ref.group == "" and it.live is None}
        first, now, later = [], [], []
        for it in items:
            if is_stage_one(it.ref.group, it.ref.kind):
                first.append(it)
            elif it.res is None or (it.ref.namespace and it.ref.namespace in new_namespaces):
                later.append(it)
            else:
                now.append(it)
        for it in first + now:
            hit = cache.seen.get(it.ref.id) if cache is not None else None
            if hit and it.live is not None and hit == (it.digest, it.live["metadata"].get("resourceVersion")):
                it.action = "unchanged"
        await self._dry_run_all([it for it in first + now if not it.action], opts)
        if plan:
            for it in later:
                it.action = "created"
                it.removed = ["not validated: its Namespace or CRD is created by this revision"]
        else:
            await self._write_all(first, opts, cache)
            if any(it.action in ("created", "configured") and it.ref.kind == "CustomResourceDefinition" for it in first):
                await self._wait_crds(first, opts)
            for it in later:
                if it.res is None:
                    try:
                        it.res = await self.mapper.resource(it.ref.api_version, it.ref.kind)
                    except NoMatch as e:
                        raise ApplyFailed(f"{it.ref}: {e}", "ApplyFailed", stalled=False) from None
            await self._fetch_live(later, opts) if later else None
            await self._dry_run_all(later, opts)
            await self._write_all(now + later, opts, cache)
        for it in items:
            if it.action == "unchanged" and cache is not None and it.live is not None:
                cache.seen[it.ref.id] = (it.digest, it.live["metadata"].get("resourceVersion", ""))
        changes = []
        for it in items:
            detail = ""
            if plan and it.action in ("configured", "created"):
                detail = yaml_diff(it.live, it.dry, str(it.ref)) if it.dry else "; ".join(it.removed)
            elif it.removed:
                detail = "left to other managers: " + ", ".join(it.removed)
            changes.append(Change(it.ref, it.action, detail))
        order = sorted(changes, key=lambda c: (kind_rank(c.ref.group, c.ref.kind), c.ref.namespace, c.ref.name))
        return Result(order, [it.ref for it in items], self.writes - writes0)

    async def prune(self, old: list[ObjRef], new: list[ObjRef], opts: Options, *, plan: bool = False,
                    cache: ApplyCache | None = None) -> list[Change]:
        """Delete what left the inventory (see the module docstring); reverse kind order."""
        gone = stale(old, new)
        changes: list[Change] = []

        async def one(ref: ObjRef) -> Change:
            try:
                res = await self.mapper.resource(ref.api_version, ref.kind)
            except NoMatch:
                return Change(ref, "deleted", "its type is gone")
            try:
                live = await self.client.get(res, ref.name, ref.namespace or None)
            except ApiStatusError as e:
                if e.not_found:
                    return Change(ref, "deleted", "already gone")
                raise
            md = live.get("metadata") or {}
            if (md.get("annotations") or {}).get(ANN_PRUNE) == DISABLED:
                return Change(ref, "skipped", f"{ANN_PRUNE}: {DISABLED}")
            labels = md.get("labels") or {}
            if any(labels.get(k) != v for k, v in opts.owner_labels.items()):
                return Change(ref, "skipped", "no longer carries this owner's labels")
            if md.get("deletionTimestamp"):
                return Change(ref, "deleted", "being deleted")
            if not plan:
                try:
                    self.writes += 1
                    API_WRITES.labels("delete").inc()
                    await self.client.delete(res, ref.name, ref.namespace or None, propagation_policy="Background")
                except ApiStatusError as e:
                    if not e.not_found:
                        raise ApplyFailed(f"prune of {ref} failed: {e.message}", "PruneFailed", stalled=False) from e
                if cache is not None:
                    cache.seen.pop(ref.id, None)
            return Change(ref, "deleted")

        by_rank: dict[int, list[ObjRef]] = {}
        for r in gone:
            by_rank.setdefault(kind_rank(r.group, r.kind), []).append(r)
        for rank in sorted(by_rank, reverse=True):
            for r in await _gather_limited(opts.concurrency, (one(ref) for ref in by_rank[rank])):
                if isinstance(r, BaseException):
                    if isinstance(r, ApiStatusError):
                        raise ApplyFailed(f"prune failed: {r.message}", "PruneFailed", stalled=False) from r
                    raise r
                changes.append(r)
        return changes
