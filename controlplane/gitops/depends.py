"""``dependsOn`` on the readiness of anything: another Sync (ready with the revision its
source currently holds, as Flux checks it) or any object named by apiVersion/kind/name,
judged by its kstatus health rule (``health.py``) or by a CEL ``readyExpr`` the user writes.
Returns what is still awaited, in words, for the ``DependencyNotReady`` condition.
Neighbours: ``sync.py`` (the caller), ``context.py`` (wake-ups when a Sync dependency turns
ready; other objects are re-checked every ``retryInterval``).
"""

from __future__ import annotations

from controlplane.client.rest import ApiStatusError
from controlplane.gitops import api, health
from controlplane.gitops.context import Context
from controlplane.gitops.mapper import NoMatch


async def _sync_ready(ctx: Context, dep: dict) -> str:
    """"" when the Sync dependency is ready, else why not."""
    st = dep.get("status") or {}
    ready = api.get_condition(dep, api.READY)
    md = dep["metadata"]
    if not api.is_ready(dep):
        why = (ready or {}).get("message") or "no Ready condition yet"
        return f"not ready ({why})"
    src = (dep.get("spec") or {}).get("sourceRef") or {}
    try:
        source = await ctx.client.get(api.GITREPOSITORIES, src.get("name", ""), src.get("namespace") or md["namespace"])
    except ApiStatusError as e:
        if e.not_found:
            return "its source is gone"
        raise
    rev = ((source.get("status") or {}).get("artifact") or {}).get("revision")
    if rev and st.get("lastAppliedRevision") != rev:
        return f"has not applied the source's revision {rev} yet"
    return ""


async def waiting_for(ctx: Context, obj: dict) -> list[str]:
    """Human-readable dependencies that are not ready (empty: go)."""
    ns = obj["metadata"]["namespace"]
    out: list[str] = []
    for d in (obj.get("spec") or {}).get("dependsOn") or []:
        dns = d.get("namespace") or ns
        kind = d.get("kind") or "Sync"
        api_version = d.get("apiVersion") or (api.API_VERSION if kind == "Sync" else "v1")
        label = f"{kind} {dns}/{d['name']}"
        if kind == "Sync" and api_version == api.API_VERSION and not d.get("readyExpr"):
            try:
                dep = await ctx.client.get(api.SYNCS, d["name"], dns)
            except ApiStatusError as e:
                if e.not_found:
                    out.append(f"{label} (not found)")
                    continue
                raise
            why = await _sync_ready(ctx, dep)
            if why:
                out.append(f"{label} {why}")
            continue
        try:
            res = await ctx.mapper.resource(api_version, kind)
        except NoMatch as e:
            out.append(f"{label} ({e})")
            continue
        try:
            live = await ctx.client.get(res, d["name"], dns if res.namespaced else None)
        except ApiStatusError as e:
            if e.not_found:
                out.append(f"{label} (not found)")
                continue
            raise
        live.setdefault("apiVersion", api_version)
        live.setdefault("kind", kind)
        if d.get("readyExpr"):
            try:
                if not health.eval_bool(d["readyExpr"], live):
                    out.append(f"{label} (readyExpr is false: {d['readyExpr']})")
            except health.CelError as e:
                out.append(f"{label} ({e})")
            continue
        h = await health.compute(live, endpoints=ctx.endpoints)
        if not h.ok:
            out.append(f"{label} ({h.status}: {h.message})")
    return out
