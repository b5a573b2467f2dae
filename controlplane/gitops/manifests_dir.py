"""The manifests folder, like k3s's ``/var/lib/rancher/k3s/server/manifests``: every
``*.yaml``/``*.yml``/``*.json`` file in ``DATA_DIR/manifests`` is applied at start and
whenever it changes, and is visible as a cluster-scoped ``ManifestFile`` object (named after
the file) whose status carries its conditions, inventory and errors; removing the file deletes
that object, whose finalizer prunes what the file applied (objects annotated
``gitops.controlplane.io/prune: disabled`` are kept). Files starting with ``.`` are skipped.

``ManifestsWatcher`` turns the folder into ManifestFile objects (file changes seen with PyPI
``watchfiles``, inotify underneath; labelled with a hash of the folder's path so two control
planes sharing an apiserver never touch each other's). ``reconcile`` applies one file with the
same engine as syncs (dry run first, server-side apply, drift correction, prune) and runs again
every ``interval`` to correct drift. Neighbours: ``engine.py``, ``operator.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path

import watchfiles

from controlplane.client.rest import ApiStatusError
from controlplane.gitops import api, inventory, metrics, render
from controlplane.gitops.context import Context
from controlplane.gitops.engine import ApplyFailed, Engine, Options
from controlplane.log import get_logger

log = get_logger(__name__)
KIND = "ManifestFile"
LABEL_DIR = f"{api.GROUP}/manifests-dir"
SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_INTERVAL = 600.0


def dir_label(d: Path) -> str:
    return hashlib.sha256(str(d.resolve()).encode()).hexdigest()[:16]


def object_name(file: Path) -> str:
    """A DNS-1123 name from the file name (``my_App.yaml`` → ``my-app``); a hash suffix when
    the name had to change or is empty, so two files never share a name."""
    stem = file.stem.lower()
    clean = re.sub(r"[^a-z0-9.-]+", "-", stem).strip("-.")[:200]
    if clean != stem or not clean or file.suffix != ".yaml":
        clean = f"{clean or 'manifest'}-{hashlib.sha256(file.name.encode()).hexdigest()[:6]}"
    return clean


def options(name: str) -> Options:
    return Options(owner_labels={api.LABEL_MANIFEST: name}, override_managers=list(api.DEFAULT_OVERRIDE_MANAGERS))


class ManifestsWatcher:
    """Keeps one ManifestFile per file of ``directory``."""

    def __init__(self, ctx: Context, directory: Path) -> None:
        self.ctx = ctx
        self.dir = directory
        self.label = dir_label(directory)

    def _files(self) -> dict[str, tuple[Path, str]]:
        out: dict[str, tuple[Path, str]] = {}
        if not self.dir.is_dir():
            return out
        for p in sorted(self.dir.iterdir()):
            if p.name.startswith(".") or p.suffix not in SUFFIXES or not p.is_file():
                continue
            try:
                digest = "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                continue
            out[object_name(p)] = (p.resolve(), digest)
        return out

    async def sync_all(self) -> None:
        files = await asyncio.to_thread(self._files)
        lst = await self.ctx.client.list(api.MANIFESTFILES, label_selector=f"{LABEL_DIR}={self.label}")
        existing = {o["metadata"]["name"]: o for o in lst.get("items") or []}
        for name, (path, digest) in files.items():
            cur = existing.get(name)
            if cur and (cur.get("spec") or {}).get("path") == str(path) and (cur.get("spec") or {}).get("checksum") == digest:
                continue
            body = {"apiVersion": api.API_VERSION, "kind": KIND,
                    "metadata": {"name": name, "labels": {LABEL_DIR: self.label}},
                    "spec": {"path": str(path), "checksum": digest}}
            try:
                await self.ctx.client.patch(api.MANIFESTFILES, name, body, patch_type="apply",
                                            field_manager=api.FIELD_MANAGER, force=True)
            except ApiStatusError as e:
                log.warning("manifest file object not written", file=str(path), error=e.message)
            self.ctx.triggers.wake((KIND, "", name))
        for name, obj in existing.items():
            if name not in files and not obj["metadata"].get("deletionTimestamp"):
                log.info("manifest file removed; deleting its objects", name=name, path=(obj.get("spec") or {}).get("path"))
                try:
                    await self.ctx.client.delete(api.MANIFESTFILES, name)
                except ApiStatusError as e:
                    if not e.not_found:
                        log.warning("manifest file object not deleted", name=name, error=e.message)

    async def run(self, stop: asyncio.Event) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            try:
                await self.sync_all()
                async for _ in watchfiles.awatch(self.dir, stop_event=stop, debounce=150, step=50, recursive=False,
                                                 rust_timeout=5000, yield_on_timeout=True):
                    await self.sync_all()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep watching whatever one pass hit
                log.warning("manifests folder pass failed", error=str(e))
                try:
                    await asyncio.wait_for(stop.wait(), 2.0)
                except asyncio.TimeoutError:
                    pass


async def reconcile(ctx: Context, _namespace: str, name: str, interval: float = DEFAULT_INTERVAL) -> float | None:
    try:
        obj = await ctx.client.get(api.MANIFESTFILES, name)
    except ApiStatusError as e:
        if e.not_found:
            return None
        raise
    if obj["metadata"].get("deletionTimestamp") or not _mine(ctx, obj):
        return None
    t0 = time.monotonic()
    try:
        return await _reconcile(ctx, obj, interval)
    finally:
        metrics.RECONCILE_DURATION.labels(KIND, name, "").observe(time.monotonic() - t0)


async def _reconcile(ctx: Context, obj: dict, interval: float) -> float | None:
    md, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    name, gen = md["name"], md.get("generation")
    conds = list(status.get("conditions") or [])
    path = Path(spec.get("path") or "")
    base = {"observedGeneration": gen}

    async def fail(reason: str, message: str, stalled: bool) -> float:
        new = api.ready_conditions(conds, "stalled" if stalled else "failed", reason, message, gen)
        await ctx.write_status(api.MANIFESTFILES, obj, {**base, "conditions": new})
        ctx.event(obj, "Warning", reason, message)
        metrics.record_condition(KIND, "", name, "False")
        return interval if stalled else min(interval, 10.0)

    try:
        text = await asyncio.to_thread(path.read_text)
        objs = render.parse_docs(text, path.name)
    except OSError as e:
        return await fail("BuildFailed", f"reading {path}: {e.strerror or e}", stalled=False)
    except render.BuildError as e:
        return await fail("BuildFailed", str(e), stalled=True)
    engine = Engine(ctx.client, ctx.mapper)
    opts = options(name)
    key = (KIND, "", name)
    try:
        result = await engine.apply(objs, opts, cache=ctx.cache(key, gen))
        pruned = await engine.prune(inventory.refs_of(status), result.refs, opts, cache=ctx.cache(key, gen))
    except ApplyFailed as e:
        ctx.caches.pop(key, None)
        return await fail(e.reason, e.message, stalled=e.stalled)
    changed = [str(c) for c in list(result.changes) + pruned if c.action != "unchanged"]
    msg = f"Applied {path.name} ({spec.get('checksum', '')[:19]})"
    new = api.ready_conditions(conds, "ready", "ReconciliationSucceeded", msg, gen)
    await ctx.write_status(api.MANIFESTFILES, obj, {**base, "conditions": new, "lastAppliedChecksum": spec.get("checksum"),
                                                    "inventory": {"entries": inventory.entries(result.refs)}})
    if changed:
        ctx.event(obj, "Normal", "ReconciliationSucceeded", msg + "\n" + "\n".join(changed[:50]))
    metrics.record_condition(KIND, "", name, "True")
    return interval


def _mine(ctx: Context, obj: dict) -> bool:
    """Only the controller whose folder made the object handles it."""
    label = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_DIR)
    return ctx.manifests_dir is not None and label == dir_label(ctx.manifests_dir)


async def finalize(ctx: Context, obj: dict) -> None:
    name = obj["metadata"]["name"]
    if not _mine(ctx, obj):
        return
    try:
        changes = await Engine(ctx.client, ctx.mapper).prune(inventory.refs_of(obj.get("status")), [], options(name))
        log.info("manifest file objects pruned", name=name, deleted=sum(1 for c in changes if c.action == "deleted"),
                 kept=sum(1 for c in changes if c.action == "skipped"))
    finally:
        ctx.forget((KIND, "", name))
        metrics.forget(KIND, "", name)
