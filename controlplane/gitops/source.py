"""The GitRepository reconcile (level-based: it re-reads the object every time).

Each pass resolves the reference on the remote (``git ls-remote``: one round trip, no
writes); only when the commit (or the ignore/include filters) differs from the stored
artifact does it fetch that one commit shallowly, pack the tree into a reproducible tarball
(``artifact.py``), record ``status.artifact`` (path, revision, digest, size) and wake the
syncs reading it. Failures set ``Ready=False`` with ``GitOperationFailed`` or
``AuthenticationFailed`` and the git message, post a Warning Event (aggregated: its count
grows with each retry) and retry with a backoff of 1, 2, 4 ... seconds capped by the
interval; the last good artifact stays in place, so syncs keep what they applied.
Neighbours: ``git.py``, ``artifact.py``, ``context.py``, ``operator.py`` (the kopf daemon).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.gitops import api, artifact, metrics
from controlplane.gitops.context import Context
from controlplane.gitops.git import Credentials, GitClient, GitError
from controlplane.log import get_logger

log = get_logger(__name__)
KIND = "GitRepository"


def artifact_file(ctx: Context, rel: str) -> Path:
    return ctx.artifacts_dir / rel


async def _credentials(ctx: Context, obj: dict) -> Credentials | None:
    ref = (obj.get("spec") or {}).get("secretRef")
    if not ref:
        return None
    ns = obj["metadata"]["namespace"]
    try:
        secret = await ctx.client.get(R.SECRETS, ref["name"], ns)
    except ApiStatusError as e:
        if e.not_found:
            raise GitError("AuthenticationFailed", f"secret '{ns}/{ref['name']}' not found") from e
        raise GitError("GitOperationFailed", f"reading secret '{ns}/{ref['name']}': {e.message}") from e
    return Credentials.from_secret(secret.get("data") or {})


async def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass; returns seconds until the next (None: wait for a wake-up only)."""
    try:
        obj = await ctx.client.get(api.GITREPOSITORIES, name, namespace)
    except ApiStatusError as e:
        if e.not_found:
            return None
        raise
    key = (KIND, namespace, name)
    spec, md = obj.get("spec") or {}, obj["metadata"]
    status = obj.get("status") or {}
    gen = md.get("generation")
    requested = (md.get("annotations") or {}).get(api.ANN_REQUESTED_AT)
    interval = api.parse_duration(spec.get("interval"), 60.0)
    metrics.SUSPEND.labels(KIND, name, namespace).set(1 if spec.get("suspend") else 0)
    if spec.get("suspend"):
        return None
    t0 = time.monotonic()
    conds = list(status.get("conditions") or [])
    ignore, include = spec.get("ignore") or "", list(spec.get("includePaths") or [])
    try:
        creds = await _credentials(ctx, obj)
        timeout = api.parse_duration(spec.get("timeout"), 60.0)
        async with GitClient(spec["url"], creds, timeout) as g:
            resolved = await g.resolve(spec.get("ref") or {})
            art = status.get("artifact") or {}
            unchanged = (art.get("revision") == resolved.revision and status.get("observedIgnore", "") == ignore
                         and status.get("observedIncludePaths", []) == include and art.get("path")
                         and artifact_file(ctx, art["path"]).exists())
            if not unchanged:
                art = await _fetch(ctx, g, resolved, namespace, name, ignore, include, spec)
    except GitError as e:
        failures = ctx.failures.get(key, 0) + 1
        ctx.failures[key] = failures
        conds = api.ready_conditions(conds, "failed", e.reason, e.message, gen)
        await ctx.write_status(api.GITREPOSITORIES, obj, {"conditions": conds, "observedGeneration": gen,
                                                          "lastHandledReconcileAt": requested})
        ctx.event(obj, "Warning", e.reason, e.message)
        metrics.record_condition(KIND, namespace, name, "False")
        metrics.RECONCILE_DURATION.labels(KIND, name, namespace).observe(time.monotonic() - t0)
        log.warning("git source failed", namespace=namespace, name=name, reason=e.reason, error=e.message, failures=failures)
        return min(interval, float(2 ** min(failures - 1, 10)))
    ctx.failures.pop(key, None)
    msg = f"stored artifact for revision '{art['revision']}'"
    conds = api.ready_conditions(conds, "ready", "Succeeded", msg, gen)
    new_status = {"conditions": conds, "observedGeneration": gen, "artifact": art, "lastHandledReconcileAt": requested,
                  "observedIgnore": ignore, "observedIncludePaths": include, "url": spec["url"]}
    await ctx.write_status(api.GITREPOSITORIES, obj, new_status)
    if art.get("revision") != (status.get("artifact") or {}).get("revision") or art.get("digest") != (status.get("artifact") or {}).get("digest"):
        ctx.event(obj, "Normal", "NewArtifact", msg)
        ctx.wake_consumers(namespace, name)
    metrics.record_condition(KIND, namespace, name, "True")
    metrics.RECONCILE_DURATION.labels(KIND, name, namespace).observe(time.monotonic() - t0)
    return interval


async def _fetch(ctx: Context, g: GitClient, resolved, namespace: str, name: str, ignore: str, include: list[str],
                 spec: dict) -> dict:
    t0 = time.monotonic()
    rel_dir = Path("gitrepository") / namespace / name
    dest_dir = ctx.artifacts_dir / rel_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gitops-fetch-", dir=dest_dir) as tmp:
        raw = Path(tmp) / "raw.tar"
        await g.archive(resolved, raw, branch_hint=((spec.get("ref") or {}).get("branch") or ""))
        packed = Path(tmp) / "artifact.tar.gz"
        digest, size = await asyncio.to_thread(artifact.pack, raw, packed, ignore=ignore, include=include)
        final = dest_dir / f"{digest.removeprefix('sha256:')}.tar.gz"
        packed.replace(final)
    # keep this artifact and the one before it (a sync may still be reading it)
    files = sorted((p for p in dest_dir.glob("*.tar.gz")), key=lambda p: p.stat().st_mtime, reverse=True)
    final.touch()
    artifact.prune_dir(dest_dir, {final.name} | {p.name for p in files[:2]})
    metrics.GIT_FETCH.observe(time.monotonic() - t0)
    log.info("fetched revision", namespace=namespace, name=name, revision=resolved.revision, digest=digest, size=size)
    return {"path": str(rel_dir / final.name), "url": final.resolve().as_uri(), "revision": resolved.revision,
            "digest": digest, "size": size, "lastUpdateTime": api.now()}
