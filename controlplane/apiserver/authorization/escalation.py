"""RBAC's write-time checks (``pkg/registry/rbac``), pure functions over the authorizer:

- escalation: creating or updating a Role/ClusterRole is allowed only if the user already
  holds every permission in it (``rules.covers`` over the user's rules in that namespace),
  or may ``escalate`` roles/clusterroles, or is in ``system:masters``;
- bind: creating or updating a RoleBinding/ClusterRoleBinding is allowed only if the user
  may ``bind`` the referenced role (by name), or holds every permission of that role.

Each returns None (allowed) or the Forbidden message Kubernetes words. The server's
``Security`` offers them to the RBAC strategies (``strategy/rbac.py``) through the request
context. The objects' own validation is ``validation/rbac.py``.
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.authorization.chain import AuthorizerChain
from controlplane.apiserver.authorization.rbac import ROLE, RBACAuthorizer
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
