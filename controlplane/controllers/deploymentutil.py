"""Pure Deployment rollout math, ported from Kubernetes' ``deployment/util``: maxSurge /
maxUnavailable fenceposts, how far to scale the new ReplicaSet up, how far the old ones may be
scaled down, revisions, and proportional scaling. Unit-tested on its own; used by
``deployment``."""

from __future__ import annotations

import math

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
MAX_REVISION_HISTORY_CHARS = 2000  # the controller's maxRevHistoryLengthInChars
SKIP_ANNOTATIONS = {REVISION, DESIRED_REPLICAS, MAX_REPLICAS, "kubectl.kubernetes.io/last-applied-configuration",
                    "deployment.kubernetes.io/revision-history"}


def int_or_percent(value: int | str | None, total: int, round_up: bool, default: str = "25%") -> int:
    v = default if value is None else value
    if isinstance(v, str) and v.endswith("%"):
        frac = int(v[:-1]) * total / 100.0
        return int(math.ceil(frac) if round_up else math.floor(frac))
    return int(v)


def replicas(d: dict) -> int:
    r = (d.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def rs_replicas(rs: dict) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0)


def rs_status(rs: dict, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def strategy(d: dict) -> dict:
    return (d.get("spec") or {}).get("strategy") or {"type": "RollingUpdate"}


def is_rolling(d: dict) -> bool:
    return strategy(d).get("type", "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as absolute numbers; both 0 becomes unavailable 1."""
    if not is_rolling(d):
        return 0, 0
    ru = strategy(d).get("rollingUpdate") or {}
    n = replicas(d)
    surge = int_or_percent(ru.get("maxSurge"), n, True)
    unavailable = int_or_percent(ru.get("maxUnavailable"), n, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    _, u = resolve_fenceposts(d)
    return min(u, replicas(d))


def pods_count(rs: dict) -> int:
    """Pods an RS may have: its spec, or more while surplus pods are still being removed."""
    return max(rs_replicas(rs), rs_status(rs, "replicas"))


def new_rs_new_replicas(d: dict, all_rs: list[dict], new_rs: dict | None) -> int:
    """How many replicas the new ReplicaSet should have now (``NewRSNewReplicas``)."""
    if not is_rolling(d):
        return replicas(d)
    cur_new = rs_replicas(new_rs) if new_rs else 0
    surge, _ = resolve_fenceposts(d)
    current = sum(pods_count(rs) for rs in all_rs if new_rs is None or rs is not new_rs) + cur_new
    max_total = replicas(d) + surge
    if current >= max_total:
        return cur_new
    scale_up = max_total - current
    return cur_new + max(0, min(scale_up, replicas(d) - cur_new))


def old_scale_down_budget(d: dict, all_rs: list[dict], new_rs: dict | None) -> int:
    """How many old replicas may be removed now without breaking maxUnavailable
    (``reconcileOldReplicaSets``' maxScaledDown)."""
    all_count = sum(rs_replicas(rs) for rs in all_rs)
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = (rs_replicas(new_rs) - rs_status(new_rs, "availableReplicas")) if new_rs else 0
    return all_count - min_available - max(new_unavailable, 0)


def cleanup_unhealthy(old_rs: list[dict], budget: int) -> list[tuple[dict, int]]:
    """Scale old ReplicaSets down by their unavailable pods first, within ``budget``.
    Returns (rs, new replicas) pairs for the ones to change."""
    out: list[tuple[dict, int]] = []
    total = 0
    for rs in sorted(old_rs, key=lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"])):
        if total >= budget:
            break
        spec = rs_replicas(rs)
        if spec == 0:
            continue
        unhealthy = spec - rs_status(rs, "availableReplicas")
        if unhealthy <= 0:
            continue
        down = min(budget - total, unhealthy)
        out.append((rs, spec - down))
        total += down
    return out


def scale_down_available(d: dict, all_rs: list[dict], old_rs: list[dict]) -> list[tuple[dict, int]]:
    """Scale old ReplicaSets down (oldest first) while available pods exceed the minimum."""
    min_available = replicas(d) - max_unavailable(d)
    available = sum(rs_status(rs, "availableReplicas") for rs in all_rs)
    if available <= min_available:
        return []
    total = available - min_available
    out: list[tuple[dict, int]] = []
    done = 0
    for rs in sorted(old_rs, key=lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"])):
        if done >= total:
            break
        spec = rs_replicas(rs)
        if spec == 0:
            continue
        down = min(spec, total - done)
        out.append((rs, spec - down))
        done += down
    return out


def revision(rs: dict) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def new_rs_annotations(d_annotations: dict[str, str], rs_annotations: dict[str, str], new_revision: int,
                       limit: int = MAX_REVISION_HISTORY_CHARS) -> dict[str, str]:
    """``SetNewReplicaSetAnnotations`` for an existing new ReplicaSet: the Deployment's
    annotations copied over it (they win; the apply, revision and replica annotations are
    not copied), its revision raised to ``new_revision`` when lower, and a revision it had
    before (a rollback to it) appended to ``deployment.kubernetes.io/revision-history``,
    oldest entries dropped to stay within ``limit`` characters."""
    out = dict(rs_annotations)
    out.update({k: v for k, v in d_annotations.items() if k not in SKIP_ANNOTATIONS})
    had = REVISION in rs_annotations
    try:
        old = int(rs_annotations.get(REVISION) or "0")
    except ValueError:
        old = 0
    if old >= new_revision:
        return out
    out[REVISION] = str(new_revision)
    if not had:
        return out
    history = rs_annotations.get(REVISION_HISTORY) or ""
    entries = history.split(",") if history else []
    if not entries:
        out[REVISION_HISTORY] = str(old)
        return out
    total, start = len(history) + len(str(old)) + 1, 0
    while total > limit and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total <= limit:
        out[REVISION_HISTORY] = ",".join(entries[start:] + [str(old)])
    return out


def max_revision(rs_list: list[dict]) -> int:
    return max((revision(rs) for rs in rs_list), default=0)


def proportional_scale(d: dict, active: list[dict], new_rs: dict | None) -> dict[str, int]:
    """Target replicas per active ReplicaSet name when the Deployment is resized mid-rollout:
    the change (up to replicas + maxSurge) is split in proportion to current sizes; rounding
    leftovers go to the new ReplicaSet (or the largest)."""
    surge, _ = resolve_fenceposts(d)
    allowed = replicas(d) + surge
    current = sum(rs_replicas(rs) for rs in active)
    delta = allowed - current
    targets = {rs["metadata"]["name"]: rs_replicas(rs) for rs in active}
    if delta == 0 or current == 0:
        return targets
    added = 0
    for rs in active:
        share = int(delta * rs_replicas(rs) / current)
        if delta < 0:
            share = max(share, -rs_replicas(rs))
        targets[rs["metadata"]["name"]] += share
        added += share
    left = delta - added
    order = ([new_rs] if new_rs is not None and new_rs in active else []) + sorted(
        active, key=lambda r: -rs_replicas(r))
    for rs in order:
        if left == 0:
            break
        name = rs["metadata"]["name"]
        step = left if left > 0 else max(left, -targets[name])
        targets[name] += step
        left -= step
    return targets


def deployment_complete(d: dict, status: dict) -> bool:
    n = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == n and int(status.get("replicas") or 0) == n
            and int(status.get("availableReplicas") or 0) == n
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 1))


def deployment_progressing(old: dict, new: dict) -> bool:
    """Any forward motion between two statuses (``DeploymentProgressing``)."""
    g = lambda s, k: int(s.get(k) or 0)  # noqa: E731
    old_pods = g(old, "replicas") - g(old, "updatedReplicas")
    new_pods = g(new, "replicas") - g(new, "updatedReplicas")
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_pods < old_pods
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))
