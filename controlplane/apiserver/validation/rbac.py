"""Validation of RBAC objects (``pkg/apis/rbac/validation``): rules need verbs and either
resources with API groups or non-resource URLs (never both; Roles never the latter);
bindings need a roleRef of this group (a ClusterRoleBinding only to a ClusterRole) that never
changes, and subjects of a known kind (ServiceAccounts of a ClusterRoleBinding name their
namespace). Returns (field, message) causes for a 422; ``strategy/rbac.py`` raises it.
"""

from __future__ import annotations

from typing import Any

GROUP = "rbac.authorization.k8s.io"
ROLE, CLUSTER_ROLE = "Role", "ClusterRole"


def validate_role(kind: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    for i, r in enumerate(obj.get("rules") or []):
        f = f"rules[{i}]"
        if not r.get("verbs"):
            causes.append((f"{f}.verbs", "Required value: verbs must contain at least one value"))
        if r.get("nonResourceURLs"):
            if kind == ROLE:
                causes.append((f"{f}.nonResourceURLs", "Invalid value: namespaced rules cannot apply to non-resource URLs"))
            if r.get("apiGroups") or r.get("resources") or r.get("resourceNames"):
                causes.append((f"{f}.nonResourceURLs",
                               "Invalid value: rules cannot apply to both regular resources and non-resource URLs"))
        else:
            if not r.get("resources"):
                causes.append((f"{f}.resources", "Required value: resource rules must supply at least one resource"))
            if r.get("apiGroups") is None or len(r.get("apiGroups")) == 0:
                causes.append((f"{f}.apiGroups", "Required value: resource rules must supply at least one api group"))
    agg = obj.get("aggregationRule")
    if agg is not None and kind == CLUSTER_ROLE and not agg.get("clusterRoleSelectors"):
        causes.append(("aggregationRule.clusterRoleSelectors", "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"))
    return causes


def validate_binding(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != GROUP:
        causes.append(("roleRef.apiGroup", f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{GROUP}"'))
    allowed_kinds = ("Role", "ClusterRole") if kind == "RoleBinding" else ("ClusterRole",)
    if ref.get("kind") not in allowed_kinds:
        causes.append(("roleRef.kind", f'Unsupported value: "{ref.get("kind", "")}": supported values: '
                                       + ", ".join(f'"{k}"' for k in allowed_kinds)))
    if not ref.get("name"):
        causes.append(("roleRef.name", "Required value"))
    if old is not None and (old.get("roleRef") or {}) != ref:
        causes.append(("roleRef", "Invalid value: cannot change roleRef"))
    for i, s in enumerate(obj.get("subjects") or []):
        f = f"subjects[{i}]"
        sk = s.get("kind")
        if not s.get("name"):
            causes.append((f"{f}.name", "Required value"))
        if sk in ("User", "Group"):
            if s.get("apiGroup") not in (GROUP,):
                causes.append((f"{f}.apiGroup", f'Unsupported value: "{s.get("apiGroup", "")}": supported values: "{GROUP}"'))
        elif sk == "ServiceAccount":
            if s.get("apiGroup"):
                causes.append((f"{f}.apiGroup", f'Unsupported value: "{s["apiGroup"]}": supported values: ""'))
            if kind == "ClusterRoleBinding" and not s.get("namespace"):
                causes.append((f"{f}.namespace", "Required value"))
        else:
            causes.append((f"{f}.kind", f'Unsupported value: "{sk or ""}": supported values: "ServiceAccount", "User", "Group"'))
    return causes
