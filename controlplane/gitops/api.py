"""The gitops API: group, kinds, labels and annotations, durations, condition bookkeeping.

Everything the other gitops modules (and the CLI) agree on lives here, so a name is spelled
once. Conditions follow Kubernetes' ``metav1.Condition`` (type, status, reason, message,
observedGeneration, lastTransitionTime kept while the status does not change) and Flux's
``Ready`` / ``Reconciling`` / ``Stalled`` triple.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from controlplane.client.resources import Resource

GROUP = "gitops.controlplane.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"

GITREPOSITORIES = Resource(GROUP, VERSION, "gitrepositories", "GitRepository")
SYNCS = Resource(GROUP, VERSION, "syncs", "Sync")
MANIFESTFILES = Resource(GROUP, VERSION, "manifestfiles", "ManifestFile", namespaced=False)
RECEIVERS = Resource(GROUP, VERSION, "receivers", "Receiver")
KINDS = {r.kind: r for r in (GITREPOSITORIES, SYNCS, MANIFESTFILES, RECEIVERS)}

FIELD_MANAGER = "gitops-controller"
COMPONENT = "gitops-controller"

# Labels on every applied object: who applied it (prune deletes only objects still carrying them).
LABEL_NAME = f"{GROUP}/name"
LABEL_NAMESPACE = f"{GROUP}/namespace"
LABEL_MANIFEST = f"{GROUP}/manifest"  # objects of a ManifestFile

ANN_PRUNE = f"{GROUP}/prune"  # "disabled": never deleted by prune
ANN_FORCE = f"{GROUP}/force"  # "enabled": recreate this object on immutable-field changes
ANN_SUBSTITUTE = f"{GROUP}/substitute"  # "disabled": no variable substitution in this object
ANN_REQUESTED_AT = f"{GROUP}/requestedAt"  # set by the CLI / webhook: reconcile now
DISABLED = "disabled"
ENABLED = "enabled"

# Managers whose changes to fields a sync sets are drift to revert (people with kubectl);
# fields owned by any other manager (HPA, webhooks, operators) are left to them.
DEFAULT_OVERRIDE_MANAGERS = ["kubectl", "kubectl-*", "before-first-apply"]

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"

_DUR = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s: str | None, default: float) -> float:
    """Go duration strings as the CRDs accept them (``1m30s``, ``500ms``) in seconds."""
    if not s:
        return default
    parts = _DUR.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"invalid duration {s!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(obj: dict) -> bool:
    c = get_condition(obj, READY)
    return bool(c and c.get("status") == "True"
                and c.get("observedGeneration", obj["metadata"].get("generation")) == obj["metadata"].get("generation"))


def set_condition(conds: list[dict], ctype: str, status: str, reason: str, message: str,
                  generation: int | None) -> list[dict]:
    """``conds`` with ``ctype`` set; lastTransitionTime kept while the status stays."""
    out = [c for c in conds if c.get("type") != ctype]
    old = next((c for c in conds if c.get("type") == ctype), None)
    ltt = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now()
    new = {"type": ctype, "status": status, "reason": reason, "message": message[:32768],
           "lastTransitionTime": ltt}
    if generation is not None:
        new["observedGeneration"] = generation
    out.append(new)
    order = {READY: 0, RECONCILING: 1, STALLED: 2}
    return sorted(out, key=lambda c: (order.get(c["type"], 9), c["type"]))


def remove_condition(conds: list[dict], ctype: str) -> list[dict]:
    return [c for c in conds if c.get("type") != ctype]


def ready_conditions(conds: list[dict], state: str, reason: str, message: str, generation: int | None) -> list[dict]:
    """The Ready/Reconciling/Stalled triple for a state: ``ready`` (Ready=True), ``progressing``
    (Ready=Unknown, Reconciling=True), ``failed`` (Ready=False; retried), ``stalled``
    (Ready=False, Stalled=True: only a new revision or spec fixes it)."""
    if state == "ready":
        conds = set_condition(conds, READY, "True", reason, message, generation)
        return remove_condition(remove_condition(conds, RECONCILING), STALLED)
    if state == "progressing":
        conds = set_condition(conds, READY, "Unknown", reason, message, generation)
        conds = set_condition(conds, RECONCILING, "True", reason, message, generation)
        return remove_condition(conds, STALLED)
    conds = set_condition(conds, READY, "False", reason, message, generation)
    conds = remove_condition(conds, RECONCILING)
    if state == "stalled":
        return set_condition(conds, STALLED, "True", reason, message, generation)
    return remove_condition(conds, STALLED)


def same_conditions(a: list[dict], b: list[dict]) -> bool:
    """Equal but for lastTransitionTime (which set_condition keeps anyway)."""
    strip = lambda cs: sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message"),  # noqa: E731
                               c.get("observedGeneration")) for c in cs)
    return strip(a) == strip(b)


def obj_key(obj: dict) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "", md["name"]


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def deep_get(obj: Any, *path: str, default: Any = None) -> Any:
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
    return default if cur is None else cur
