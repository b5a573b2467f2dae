"""The RBAC authorizer (kube-apiserver's ``--authorization-mode=RBAC``).

``RBACStore`` holds Roles, ClusterRoles, RoleBindings and ClusterRoleBindings as the apiserver
sees them (fed object by object from its watch caches: ``apply``/``remove``) and indexes the
bindings **by subject**: ClusterRoleBindings by subject, RoleBindings by (namespace, subject),
so a request only looks at the bindings naming its user or one of its groups, however many
bindings exist. Each role's rules are compiled once (``rules.CompiledRules``).

``RBACAuthorizer.authorize`` never denies (RBAC is additive): ALLOW with Kubernetes' reason
(``RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to Group "z"``) or NO_OPINION.
Decisions are cached per (user, attributes) and the cache is dropped whenever the store's
``version`` moves (any RBAC object changed), so a request that repeats costs one dict look-up.
``rules_for`` lists a user's rules in a namespace (SelfSubjectRulesReview, escalation checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from controlplane.machinery.userinfo import SA_PREFIX, UserInfo
from controlplane.apiserver.authorization.attributes import NO_OPINION, Attributes, Decision, Result
from controlplane.apiserver.authorization.rules import CompiledRules, Rule

ROLE, CLUSTER_ROLE, ROLE_BINDING, CLUSTER_ROLE_BINDING = "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"
KINDS = (ROLE, CLUSTER_ROLE, ROLE_BINDING, CLUSTER_ROLE_BINDING)
DECISION_CACHE_MAX = 200_000


def subject_key(subject: dict[str, Any], binding_ns: str = "") -> tuple[str, str] | None:
    """("u", user name) or ("g", group name) a binding subject grants to."""
    kind = subject.get("kind")
    name = subject.get("name") or ""
    if not name:
        return None
    if kind == "User":
        return ("u", name)
    if kind == "Group":
        return ("g", name)
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return ("u", f"{SA_PREFIX}{ns}:{name}") if ns else None
    return None


def describe_subject(subject: dict[str, Any]) -> str:
    kind = subject.get("kind", "")
    if kind == "ServiceAccount":
        return f'ServiceAccount "{subject.get("namespace", "")}/{subject.get("name", "")}"'
    return f'{kind} "{subject.get("name", "")}"'


@dataclass(frozen=True, slots=True)
class _Grant:
    binding: str  # "name" or "name/namespace" (Kubernetes' wording)
    binding_kind: str
    role_kind: str
    role_name: str
    subject: str  # for the reason


class RBACStore:
    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], tuple[CompiledRules, list[Rule]]] = {}
        self.cluster_roles: dict[str, tuple[CompiledRules, list[Rule]]] = {}
        self.cluster_role_objects: dict[str, dict[str, Any]] = {}
        self._crb: dict[tuple[str, str], dict[str, _Grant]] = {}  # subject -> binding name -> grant
        self._rb: dict[tuple[str, tuple[str, str]], dict[str, _Grant]] = {}  # (ns, subject) -> ...
        self._bindings: dict[tuple[str, str, str], list[Any]] = {}  # (kind, ns, name) -> index keys
        self.version = 0

    def __len__(self) -> int:
        return len(self._bindings)

    # -- feeding -------------------------------------------------------------------------
    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        if kind == ROLE:
            rules = list(obj.get("rules") or [])
            self.roles[(ns, name)] = (CompiledRules.compile(rules), rules)
        elif kind == CLUSTER_ROLE:
            rules = list(obj.get("rules") or [])
            self.cluster_roles[name] = (CompiledRules.compile(rules), rules)
            self.cluster_role_objects[name] = obj
        elif kind in (ROLE_BINDING, CLUSTER_ROLE_BINDING):
            self._unbind(kind, ns, name)
            ref = obj.get("roleRef") or {}
            rkind, rname = ref.get("kind") or "", ref.get("name") or ""
            keys: list[Any] = []
            for s in obj.get("subjects") or []:
                sk = subject_key(s, ns)
                if sk is None:
                    continue
                if kind == CLUSTER_ROLE_BINDING:
                    grant = _Grant(name, kind, rkind, rname, describe_subject(s))
                    self._crb.setdefault(sk, {})[name] = grant
                    keys.append(sk)
                else:
                    grant = _Grant(f"{name}/{ns}", kind, rkind, rname, describe_subject(s))
                    self._rb.setdefault((ns, sk), {})[name] = grant
                    keys.append((ns, sk))
            self._bindings[(kind, ns, name)] = keys
        else:
            raise ValueError(f"not an RBAC kind: {kind}")
        self.version += 1

    def remove(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        if kind == ROLE:
            self.roles.pop((ns, name), None)
        elif kind == CLUSTER_ROLE:
            self.cluster_roles.pop(name, None)
            self.cluster_role_objects.pop(name, None)
        else:
            self._unbind(kind, ns, name)
        self.version += 1

    def _unbind(self, kind: str, ns: str, name: str) -> None:
        for key in self._bindings.pop((kind, ns, name), []):
            index = self._crb if kind == CLUSTER_ROLE_BINDING else self._rb
            grants = index.get(key)
            if grants is not None:
                grants.pop(name, None)
                if not grants:
                    del index[key]

    # -- reading -------------------------------------------------------------------------
    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[CompiledRules, list[Rule]] | None:
        if kind == CLUSTER_ROLE:
            return self.cluster_roles.get(name)
        if kind == ROLE:
            return self.roles.get((namespace, name))
        return None

    def grants(self, user: UserInfo, namespace: str) -> Iterable[tuple[_Grant, str]]:
        """(grant, namespace of its role) for every binding naming the user or its groups:
        cluster-wide first, then those in ``namespace``."""
        keys = [("u", user.name)] + [("g", g) for g in user.groups]
        crb, rb = self._crb, self._rb
        for k in keys:
            gs = crb.get(k)
            if gs:
                for g in gs.values():
                    yield g, ""
        if namespace:
            for k in keys:
                gs = rb.get((namespace, k))
                if gs:
                    for g in gs.values():
                        yield g, namespace


class RBACAuthorizer:
    def __init__(self, store: RBACStore) -> None:
        self.store = store
        self._cache: dict[tuple, Result] = {}
        self._cache_version = -1

    def authorize(self, a: Attributes) -> Result:
        store = self.store
        if self._cache_version != store.version:
            self._cache.clear()
            self._cache_version = store.version
        key = (a.user, a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name,
               a.resource_request, a.path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = self.authorize_uncached(a)
        if len(self._cache) >= DECISION_CACHE_MAX:
            self._cache.clear()
        self._cache[key] = result
        return result

    def authorize_uncached(self, a: Attributes) -> Result:
        store = self.store
        ns = a.namespace if a.resource_request else ""
        for grant, role_ns in store.grants(a.user, ns):
            role = store.role_rules(grant.role_kind, role_ns, grant.role_name)
            if role is not None and role[0].allows(a):
                return Result(Decision.ALLOW, f'RBAC: allowed by {grant.binding_kind} "{grant.binding}" of '
                                              f'{grant.role_kind} "{grant.role_name}" to {grant.subject}')
        return NO_OPINION

    def rules_for(self, user: UserInfo, namespace: str = "") -> list[Rule]:
        """Every rule the user holds in ``namespace`` (cluster-wide ones included)."""
        out: list[Rule] = []
        seen: set[tuple[str, str, str]] = set()
        for grant, role_ns in self.store.grants(user, namespace):
            ident = (grant.role_kind, role_ns, grant.role_name)
            if ident in seen:
                continue
            seen.add(ident)
            role = self.store.role_rules(grant.role_kind, role_ns, grant.role_name)
            if role is not None:
                out.extend(role[1])
        return out
