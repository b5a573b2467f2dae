"""Kubernetes' audit policy (``audit.k8s.io/v1`` ``Policy``): which requests are logged at which
level (None, Metadata, Request, RequestResponse) and which stages are left out.

The first rule that matches a request decides its level and stages (the rule's
``omitStages`` added to the policy's); no match means None. A rule matches when every field it
sets matches: ``users``, ``userGroups``, ``verbs``, ``namespaces`` (``""`` = cluster-scoped),
``resources`` (``{group, resources, resourceNames}``; ``pods`` is the resource alone,
``pods/log`` a subresource, ``pods/*`` every subresource of pods, ``*/scale`` that subresource
of everything, ``*`` everything) and ``nonResourceURLs`` (trailing ``*`` = prefix). A rule
with resources or namespaces never matches a non-resource request and vice versa.
``DEFAULT_POLICY`` is what ``controlplane up`` uses (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml


LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Decision:
    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    @property
    def enabled(self) -> bool:
        return self.level != "None"

    def at_least(self, level: str) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(level)


NONE = Decision("None")


@dataclass
class Rule:
    level: str
    users: frozenset[str] | None = None
    groups: frozenset[str] | None = None
    verbs: frozenset[str] | None = None
    namespaces: frozenset[str] | None = None
    resources: list[tuple[str, tuple[str, ...], frozenset[str] | None]] | None = None
    urls: tuple[str, ...] | None = None
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None

    def matches(self, a: Any) -> bool:
        if self.users is not None and a.user.name not in self.users:
            return False
        if self.groups is not None and not any(g in self.groups for g in a.user.groups):
            return False
        if self.verbs is not None and a.verb not in self.verbs:
            return False
        if a.resource_request:
            if self.urls is not None:
                return False
            if self.namespaces is not None and a.namespace not in self.namespaces:
                return False
            if self.resources is not None:
                return any(_group_resource_matches(gr, a) for gr in self.resources)
            return True
        if self.resources is not None or self.namespaces is not None:
            return False
        if self.urls is not None:
            return any(u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])) for u in self.urls)
        return True


def _group_resource_matches(gr: tuple[str, tuple[str, ...], frozenset[str] | None], a: Any) -> bool:
    group, resources, names = gr
    if group != a.api_group and group != "*":
        return False
    if resources:
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        ok = False
        for r in resources:
            if r == "*" or r == combined:
                ok = True
            elif a.subresource and (r == f"{a.resource}/*" or r == f"*/{a.subresource}"):
                ok = True
            if ok:
                break
        if not ok:
            return False
    if names is not None and a.name not in names:
        return False
    return True


@dataclass
class Policy:
    rules: list[Rule] = field(default_factory=list)
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False
    _memo: dict[tuple, Decision] = field(default_factory=dict, repr=False)

    def decide(self, a: Any) -> Decision:
        """``a``: the request's authorization attributes (``authorization.attributes.Attributes``);
        decisions are remembered per (user, groups, request) -- the policy never changes."""
        key = (a.user.name, a.user.groups, a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name,
               a.resource_request, a.path)
        d = self._memo.get(key)
        if d is None:
            if len(self._memo) > 50_000:
                self._memo.clear()
            d = self._memo[key] = self._decide(a)
        return d

    def _decide(self, a: Any) -> Decision:
        for r in self.rules:
            if r.matches(a):
                if r.level == "None":
                    return NONE
                omf = self.omit_managed_fields if r.omit_managed_fields is None else r.omit_managed_fields
                return Decision(r.level, self.omit_stages | r.omit_stages, omf)
        return NONE

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> "Policy":
        if (doc.get("kind") or "Policy") != "Policy":
            raise PolicyError(f"audit policy kind must be Policy, not {doc.get('kind')!r}")
        api_version = doc.get("apiVersion") or "audit.k8s.io/v1"
        if api_version not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
            raise PolicyError(f"unsupported audit policy apiVersion {api_version!r}")
        rules = []
        for i, r in enumerate(doc.get("rules") or []):
            level = r.get("level")
            if level not in LEVELS:
                raise PolicyError(f"rules[{i}].level: unsupported value {level!r} (want one of {', '.join(LEVELS)})")
            res = None
            if r.get("resources") is not None:
                res = []
                for gr in r["resources"]:
                    names = frozenset(gr["resourceNames"]) if gr.get("resourceNames") else None
                    res.append((gr.get("group", ""), tuple(gr.get("resources") or ()), names))
            if r.get("nonResourceURLs") is not None and (res is not None or r.get("namespaces") is not None):
                raise PolicyError(f"rules[{i}]: rules cannot apply to both regular resources and non-resource URLs")
            rules.append(Rule(
                level=level,
                users=frozenset(r["users"]) if r.get("users") is not None else None,
                groups=frozenset(r["userGroups"]) if r.get("userGroups") is not None else None,
                verbs=frozenset(r["verbs"]) if r.get("verbs") is not None else None,
                namespaces=frozenset(r["namespaces"]) if r.get("namespaces") is not None else None,
                resources=res,
                urls=tuple(r["nonResourceURLs"]) if r.get("nonResourceURLs") is not None else None,
                omit_stages=_stages(r.get("omitStages"), f"rules[{i}].omitStages"),
                omit_managed_fields=r.get("omitManagedFields"),
            ))
        return cls(rules, _stages(doc.get("omitStages"), "omitStages"), bool(doc.get("omitManagedFields")))

    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        return cls.parse(yaml.safe_load(Path(path).read_text()) or {})


def _stages(values: list[str] | None, where: str) -> frozenset[str]:
    for s in values or []:
        if s not in STAGES:
            raise PolicyError(f"{where}: unsupported stage {s!r}")
    return frozenset(values or [])


# What `controlplane up` writes to DATA_DIR/audit-policy.yaml when none exists: everything at
# Metadata (Secrets and TokenReviews never above it), the noisy read-only system traffic left
# out, as GKE's and kube-up's policies do.
DEFAULT_POLICY_TEMPLATE = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
omitManagedFields: true
rules:
  # health checks, metrics and discovery documents are not interesting
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/version/", "/metrics", "/openapi*",
                      "/api", "/api/*", "/apis", "/apis/*"]
  # components reading and watching, leases and events: high volume, no news
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get", "list", "watch"]
  - level: None
    users: ["system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy"]
    verbs: ["get", "list", "watch"]
{controllers}  - level: None
    resources: [{{group: "coordination.k8s.io", resources: ["leases"]}}]
    verbs: ["get", "update", "patch"]
  - level: None
    resources: [{{group: "", resources: ["events"]}}, {{group: "events.k8s.io", resources: ["events"]}}]
  # secrets, configmaps and token requests hold credentials: metadata only
  - level: Metadata
    resources:
      - {{group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"]}}
      - {{group: "authentication.k8s.io", resources: ["tokenreviews"]}}
  # exec, attach, port-forward, logs
  - level: Metadata
    resources: [{{group: "", resources: ["pods/exec", "pods/attach", "pods/portforward", "pods/log", "pods/proxy",
                                        "nodes/proxy", "services/proxy"]}}]
  # writes by people and workloads with their bodies
  - level: Request
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
    userGroups: ["system:masters", "system:serviceaccounts", "system:authenticated"]
    resources: [{{group: "rbac.authorization.k8s.io"}}]
  - level: Metadata
"""


def default_policy_yaml(controller_users: Iterable[str] = ()) -> str:
    """The default policy; ``controller_users``: the controllers' own identities
    (``system:serviceaccount:kube-system:<name>`` under controller-manager
    ``--use-service-account-credentials``), whose reads it leaves out like the
    controller-manager's (the caller knows them: the bootstrap RBAC policy's controller roles)."""
    users = sorted(controller_users)
    controllers = ""
    if users:
        controllers = ("  # the controllers' own identities (controller-manager --use-service-account-credentials)\n"
                       "  - level: None\n    users:"
                       + "".join(f'\n      - "{u}"' for u in users)
                       + '\n    verbs: ["get", "list", "watch"]\n')
    return DEFAULT_POLICY_TEMPLATE.format(controllers=controllers)


def default_policy(controller_users: Iterable[str] = ()) -> Policy:
    return Policy.parse(yaml.safe_load(default_policy_yaml(controller_users)))
