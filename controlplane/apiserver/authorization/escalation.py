"""RBAC's write-time checks (``pkg/registry/rbac``), pure functions over the authorizer:

- escalation: creating or updating a Role/ClusterRole is allowed only if the user already
  holds every permission in it (``rules.covers`` over the user's rules in that namespace),
  or may ``escalate`` roles/clusterroles, or is in ``system:masters``;
- bind: creating or updating a RoleBinding/ClusterRoleBinding is allowed only if the user
  may ``bind`` the referenced role (by name), or holds every permission of that role.

Each returns None (allowed) or the Forbidden message Kubernetes words. Also here: the
validation of RBAC objects (``validate_role``, ``validate_binding``: field causes for a 422).
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.authorization.chain import AuthorizerChain
from controlplane.apiserver.authorization.rbac import CLUSTER_ROLE, ROLE, RBACAuthorizer
from controlplane.apiserver.authorization.rules import covers, format_rule

GROUP = "rbac.authorization.k8s.io"


def _who(user: UserInfo) -> str:
    return f'user "{user.name}" (groups={json.dumps(list(user.groups)).replace(", ", " ")})'


def _held(chain: AuthorizerChain, rbac: RBACAuthorizer, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
    if any(g in chain.privileged for g in user.groups):
        return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    return rbac.rules_for(user, namespace)


def _escalation_message(resource: str, name: str, user: UserInfo, missing: list[dict[str, Any]]) -> str:
    lines = "\n".join(format_rule(r) for r in missing)
    return (f'{resource}.{GROUP} "{name}" is forbidden: {_who(user)} is attempting to grant RBAC permissions '
            f"not currently held:\n{lines}")


def check_role(chain: AuthorizerChain, rbac: RBACAuthorizer, user: UserInfo, kind: str, obj: dict[str, Any]) -> str | None:
    resource = "roles" if kind == ROLE else "clusterroles"
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "" if kind == ROLE else ""
    if chain.allowed(user, "escalate", group=GROUP, resource=resource, namespace=ns, name=meta.get("name", "")):
        return None
    rules = list(obj.get("rules") or [])
    ok, missing = covers(_held(chain, rbac, user, ns), rules)
    if ok:
        return None
    return _escalation_message(resource, meta.get("name", ""), user, missing)


def check_binding(chain: AuthorizerChain, rbac: RBACAuthorizer, user: UserInfo, kind: str,
                  obj: dict[str, Any]) -> str | None:
    resource = "rolebindings" if kind == "RoleBinding" else "clusterrolebindings"
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "" if kind == "RoleBinding" else ""
    ref = obj.get("roleRef") or {}
    ref_kind, ref_name = ref.get("kind") or "", ref.get("name") or ""
    ref_resource = "roles" if ref_kind == ROLE else "clusterroles"
    if chain.allowed(user, "bind", group=GROUP, resource=ref_resource, namespace=ns if ref_kind == ROLE else ns,
                     name=ref_name):
        return None
    role = rbac.store.role_rules(ref_kind, ns if ref_kind == ROLE else "", ref_name)
    if role is None:
        return f'{resource}.{GROUP} "{meta.get("name", "")}" is forbidden: {ref_resource}.{GROUP} "{ref_name}" not found'
    ok, missing = covers(_held(chain, rbac, user, ns), role[1])
    if ok:
        return None
    return _escalation_message(resource, meta.get("name", ""), user, missing)


# -- validation -----------------------------------------------------------------------------

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
