"""The Sync reconcile (Flux's Kustomization), level-based: every pass re-reads the Sync, its
dependencies, its source's artifact and the cluster, and drives the cluster to the artifact.

Pass: suspended → nothing. ``dependsOn`` not ready → ``Ready=False/DependencyNotReady`` naming
what is awaited, retry after ``retryInterval``. No artifact → ``ArtifactFailed``. Build
(``render.py``) failing → ``BuildFailed`` (a missing path says so). Apply (``engine.py``):
dry-run validation failure → ``Ready=False, Stalled=True/ValidationFailed`` with the API's
message and nothing of that revision applied; drift is corrected by the same dry run, writing
only objects that differ. Then prune (``spec.prune``), the new inventory in status, health
(``wait``/``healthChecks``, kstatus or CEL) within ``timeout`` → ``HealthCheckFailed`` on
expiry; finally ``Ready=True/ReconciliationSucceeded`` with ``lastAppliedRevision``.
A pass that changes nothing writes nothing (no status patch, no Event). Each pass records
``gotk_reconcile_duration_seconds``. Deleting a Sync with ``prune`` deletes its inventory
(``finalize``). Neighbours: ``operator.py`` (the kopf daemon calling ``reconcile``).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.gitops import api, artifact, depends, health, inventory, metrics, render
from controlplane.gitops.context import Context
from controlplane.gitops.engine import ApplyFailed, Engine, Options, Result
from controlplane.gitops.inventory import ObjRef
from controlplane.gitops.mapper import NoMatch
from controlplane.log import get_logger

log = get_logger(__name__)
KIND = "Sync"


@dataclass
class Timing:
    interval: float
    retry: float
    timeout: float


def timing(spec: dict) -> Timing:
    interval = api.parse_duration(spec.get("interval"), 300.0)
    return Timing(interval, api.parse_duration(spec.get("retryInterval"), interval),
                  api.parse_duration(spec.get("timeout"), interval))


def options(obj: dict) -> Options:
    md, spec = obj["metadata"], obj.get("spec") or {}
    return Options(owner_labels={api.LABEL_NAME: md["name"], api.LABEL_NAMESPACE: md["namespace"]},
                   override_managers=list(spec.get("overrideManagers") or api.DEFAULT_OVERRIDE_MANAGERS),
                   force=bool(spec.get("force")), target_namespace=spec.get("targetNamespace") or "")


async def variables(ctx: Context, obj: dict) -> dict[str, str] | None:
    """postBuild variables (``substituteFrom`` in order, then ``substitute``); None: none set."""
    pb = (obj.get("spec") or {}).get("postBuild") or {}
    if not pb:
        return None
    ns = obj["metadata"]["namespace"]
    out: dict[str, str] = {}
    for ref in pb.get("substituteFrom") or []:
        res = R.CONFIGMAPS if ref["kind"] == "ConfigMap" else R.SECRETS
        try:
            src = await ctx.client.get(res, ref["name"], ns)
        except ApiStatusError as e:
            if e.not_found and ref.get("optional"):
                continue
            raise render.BuildError(f"substituteFrom {ref['kind']}/{ref['name']}: {e.message}") from e
        data = src.get("data") or {}
        if res is R.SECRETS:
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        out.update(data)
    out.update(pb.get("substitute") or {})
    return out


async def build_objects(ctx: Context, obj: dict, source: dict) -> list[dict]:
    """The objects of this Sync's path in its source's artifact (cached per digest and inputs)."""
    from controlplane.gitops.source import artifact_file

    key = (KIND, obj["metadata"]["namespace"], obj["metadata"]["name"])
    art = (source.get("status") or {}).get("artifact") or {}
    spec = obj.get("spec") or {}
    variables_ = await variables(ctx, obj)
    cache_key = (art.get("digest"), spec.get("path"), repr(sorted((variables_ or {}).items())) if variables_ is not None else None)
    hit = ctx.builds.get(key)
    if hit and hit[0] == cache_key:
        return hit[1]
    try:
        root = await asyncio.to_thread(artifact.unpack, artifact_file(ctx, art["path"]), art["digest"], ctx.work_dir)
    except (OSError, ValueError) as e:
        raise render.BuildError(f"artifact of revision {art.get('revision')} unavailable: {e}") from e
    objs = await render.build(root, spec.get("path") or "./")
    if variables_ is not None:
        objs = await asyncio.to_thread(render.substitute, objs, variables_)
    ctx.builds[key] = (cache_key, objs)
    return objs


async def wait_healthy(ctx: Context, client, refs: list[ObjRef], exprs: list[dict], deadline: float,
                       progress) -> list[str]:
    """Poll the health of ``refs`` until all are Current (returns []) or ``deadline``
    (returns what is not healthy); a Failed object ends the wait at once."""
    first = True
    while True:
        pending: list[str] = []
        failed = False

        async def check(ref: ObjRef) -> tuple[ObjRef, health.Health]:
            try:
                res = await ctx.mapper.resource(ref.api_version, ref.kind)
                live = await client.get(res, ref.name, ref.namespace or None)
                live.setdefault("apiVersion", ref.api_version)
                live.setdefault("kind", ref.kind)
            except NoMatch as e:
                return ref, health.Health(health.FAILED, str(e))
            except ApiStatusError as e:
                if e.not_found:
                    return ref, health.Health(health.NOT_FOUND, "not found")
                return ref, health.Health(health.IN_PROGRESS, e.message)
            return ref, await health.compute(live, exprs=exprs, endpoints=ctx.endpoints)

        sem = asyncio.Semaphore(16)

        async def limited(ref: ObjRef):
            async with sem:
                return await check(ref)
        for ref, h in await asyncio.gather(*(limited(r) for r in refs)):
            if not h.ok:
                pending.append(f"{ref} ({h.status}: {h.message})" if h.message else f"{ref} ({h.status})")
                failed = failed or h.status == health.FAILED
        if not pending or failed or time.monotonic() >= deadline:
            return pending
        if first:
            await progress(pending)
            first = False
        await asyncio.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def _summary(result: Result, pruned: list) -> str:
    counts: dict[str, int] = {}
    for c in list(result.changes) + list(pruned):
        if c.action != "unchanged":
            counts[c.action] = counts.get(c.action, 0) + 1
    return ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))


async def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass; returns seconds until the next (None: wait for a wake-up only)."""
    try:
        obj = await ctx.client.get(api.SYNCS, name, namespace)
    except ApiStatusError as e:
        if e.not_found:
            return None
        raise
    t0 = time.monotonic()
    try:
        return await _reconcile(ctx, obj)
    finally:
        metrics.RECONCILE_DURATION.labels(KIND, name, namespace).observe(time.monotonic() - t0)


async def _reconcile(ctx: Context, obj: dict) -> float | None:
    md, spec = obj["metadata"], obj.get("spec") or {}
    namespace, name = md["namespace"], md["name"]
    status = obj.get("status") or {}
    gen = md.get("generation")
    requested = (md.get("annotations") or {}).get(api.ANN_REQUESTED_AT)
    ctx.index_sync(obj)
    metrics.SUSPEND.labels(KIND, name, namespace).set(1 if spec.get("suspend") else 0)
    if spec.get("suspend"):
        return None
    t = timing(spec)
    base = {"observedGeneration": gen}
    state = {"status": status}

    def conds() -> list[dict]:
        return list(state["status"].get("conditions") or [])

    async def write(fields: dict, *, final: bool = True) -> dict:
        # the request is marked handled only with the pass's outcome (Ready True or False), as
        # Flux does: `reconcile sync` waits for lastHandledReconcileAt and reads Ready then, so
        # an intermediate write (the inventory after the apply) must not carry it beside the
        # previous pass's Ready
        handled = {"lastHandledReconcileAt": requested} if final else {}
        state["status"] = await ctx.write_status(api.SYNCS, {**obj, "status": state["status"]},
                                                 {**base, **handled, **fields})
        return state["status"]

    async def fail(reason: str, message: str, *, stalled: bool = False, extra: dict | None = None,
                   etype: str = "Warning") -> float:
        await write({"conditions": api.ready_conditions(conds(), "stalled" if stalled else "failed", reason, message, gen),
                     **(extra or {})})
        ctx.event(obj, etype, reason, message)
        metrics.record_condition(KIND, namespace, name, "False")
        return t.interval if stalled else t.retry

    waiting = await depends.waiting_for(ctx, obj)
    if waiting:
        return await fail("DependencyNotReady", "waiting for dependencies: " + "; ".join(waiting), etype="Normal")

    src = spec.get("sourceRef") or {}
    src_ns = src.get("namespace") or namespace
    try:
        source = await ctx.client.get(api.GITREPOSITORIES, src["name"], src_ns)
    except ApiStatusError as e:
        if e.not_found:
            return await fail("ArtifactFailed", f"source GitRepository '{src_ns}/{src['name']}' not found")
        raise
    art = (source.get("status") or {}).get("artifact") or {}
    if not art.get("revision"):
        src_ready = api.get_condition(source, api.READY) or {}
        return await fail("ArtifactFailed", f"source GitRepository '{src_ns}/{src['name']}' has no artifact yet"
                          + (f": {src_ready.get('message')}" if src_ready.get("message") else ""))
    revision = art["revision"]

    try:
        objs = await build_objects(ctx, obj, source)
    except render.BuildError as e:
        return await fail("BuildFailed", str(e), extra={"lastAttemptedRevision": revision})

    client = ctx.client_for(namespace, spec.get("serviceAccountName"))
    engine = Engine(client, ctx.mapper)
    opts = options(obj)
    old_refs = inventory.refs_of(status)
    key = (KIND, namespace, name)
    try:
        result = await engine.apply(objs, opts, cache=ctx.cache(key, gen))
        pruned = await engine.prune(old_refs, result.refs, opts, cache=ctx.cache(key, gen)) if spec.get("prune") else []
    except ApplyFailed as e:
        ctx.caches.pop(key, None)
        return await fail(e.reason, e.message, stalled=e.stalled, extra={"lastAttemptedRevision": revision})
    changed = _summary(result, pruned)
    if changed:
        log.info("applied", namespace=namespace, name=name, revision=revision, changes=changed, writes=engine.writes)
    await write({"lastAttemptedRevision": revision, "inventory": {"entries": inventory.entries(result.refs)}},
                final=False)

    targets: list[ObjRef] = list(result.refs) if spec.get("wait") else []
    for hc in spec.get("healthChecks") or []:
        av = hc.get("apiVersion") or "v1"
        targets.append(ObjRef(hc.get("namespace") or namespace, hc["name"], av.rpartition("/")[0], hc["kind"],
                              av.rpartition("/")[2]))
    if targets:
        async def progress(pending: list[str]) -> None:
            msg = f"health check in progress for revision {revision}: waiting for " + "; ".join(pending[:10])
            await write({"conditions": api.ready_conditions(conds(), "progressing", "Progressing", msg, gen)},
                        final=False)
        pending = await wait_healthy(ctx, client, targets, spec.get("healthCheckExprs") or [],
                                     time.monotonic() + t.timeout, progress)
        if pending:
            return await fail("HealthCheckFailed", f"health check failed for revision {revision}: " + "; ".join(pending[:10]),
                              extra={"lastAttemptedRevision": revision})

    msg = f"Applied revision: {revision}"
    before = status.get("lastAppliedRevision")
    was_ready = api.is_ready(obj)
    await write({"conditions": api.ready_conditions(conds(), "ready", "ReconciliationSucceeded", msg, gen),
                 "lastAppliedRevision": revision, "lastAttemptedRevision": revision})
    if changed or before != revision:
        lines = [str(c) for c in list(result.changes) + list(pruned) if c.action != "unchanged"][:50]
        ctx.event(obj, "Normal", "ReconciliationSucceeded",
                  f"{msg} ({changed or 'no changes'})" + ("\n" + "\n".join(lines) if lines else ""))
    if not was_ready or before != revision:
        ctx.wake_dependents(namespace, name)
    metrics.record_condition(KIND, namespace, name, "True")
    return t.interval


async def finalize(ctx: Context, obj: dict) -> None:
    """A deleted Sync with ``prune`` (and not suspended) deletes what it applied."""
    md, spec = obj["metadata"], obj.get("spec") or {}
    key = (KIND, md["namespace"], md["name"])
    try:
        if spec.get("prune") and not spec.get("suspend"):
            engine = Engine(ctx.client_for(md["namespace"], spec.get("serviceAccountName")), ctx.mapper)
            changes = await engine.prune(inventory.refs_of(obj.get("status")), [], options(obj))
            log.info("pruned on deletion", namespace=md["namespace"], name=md["name"],
                     deleted=sum(1 for c in changes if c.action == "deleted"))
    finally:
        ctx.forget(key)
        metrics.forget(KIND, md["namespace"], md["name"])
