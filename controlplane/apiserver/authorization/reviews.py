"""The ``authorization.k8s.io/v1`` review APIs, as pure functions over the authorizer chain:
SubjectAccessReview (may user U do X?), SelfSubjectAccessReview (may I?),
LocalSubjectAccessReview (SubjectAccessReview bound to the URL's namespace) and
SelfSubjectRulesReview (what may I do in namespace N? -- ``kubectl auth can-i --list``).

Each takes the request body (already decoded), returns the object with its ``status`` filled,
or raises ``ReviewInvalid`` (422 with field causes) for a malformed spec. The endpoints layer
does the routing and answers 201.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.machinery.userinfo import UserInfo, user_from_api
from controlplane.apiserver.authorization.attributes import Attributes, Decision
from controlplane.apiserver.authorization.chain import AuthorizerChain
from controlplane.apiserver.authorization.rbac import RBACAuthorizer

GROUP = "authorization.k8s.io"


class ReviewInvalid(ValueError):
    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.kind = kind
        self.field = field
        self.message = message


def _attrs(kind: str, user: UserInfo, spec: dict[str, Any], namespace: str | None = None) -> Attributes:
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (ra is None) == (nra is None):
        raise ReviewInvalid(kind, "spec.resourceAttributes",
                            "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if nra is not None:
        return Attributes(user, nra.get("verb") or "", resource_request=False, path=nra.get("path") or "")
    ns = ra.get("namespace") or ""
    if namespace is not None:
        if ns and ns != namespace:
            raise ReviewInvalid(kind, "spec.resourceAttributes.namespace",
                                f'must match metadata.namespace "{namespace}"')
        ns = namespace
    return Attributes(user, ra.get("verb") or "", ns, ra.get("group") or "", ra.get("version") or "",
                      ra.get("resource") or "", ra.get("subresource") or "", ra.get("name") or "")


def _answer(body: dict[str, Any], kind: str, chain: AuthorizerChain, a: Attributes) -> dict[str, Any]:
    res = chain.authorize(a)
    out = copy.deepcopy(body) if body else {}
    out["apiVersion"] = f"{GROUP}/v1"
    out["kind"] = kind
    out.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    status: dict[str, Any] = {"allowed": res.decision is Decision.ALLOW}
    if res.decision is Decision.DENY:
        status["denied"] = True
    if res.reason:
        status["reason"] = res.reason
    out["status"] = status
    return out


def subject_access_review(chain: AuthorizerChain, body: dict[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
    kind = "LocalSubjectAccessReview" if namespace is not None else "SubjectAccessReview"
    spec = body.get("spec") or {}
    if not spec.get("user") and not spec.get("groups"):
        raise ReviewInvalid(kind, "spec.user", "at least one of user or group must be specified")
    user = user_from_api(spec)
    return _answer(body, kind, chain, _attrs(kind, user, spec, namespace))


def self_subject_access_review(chain: AuthorizerChain, user: UserInfo, body: dict[str, Any]) -> dict[str, Any]:
    kind = "SelfSubjectAccessReview"
    return _answer(body, kind, chain, _attrs(kind, user, body.get("spec") or {}))


def self_subject_rules_review(chain: AuthorizerChain, rbac: RBACAuthorizer | None, user: UserInfo,
                              body: dict[str, Any], node_rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Rules from the Node authorizer (for nodes: its static rules, ``incomplete`` because the
    graph is not listed) and RBAC, as Kubernetes lists them. The privileged-group short cut
    (``system:masters``) authorizes but lists no rules: kube-apiserver adds it to its
    authorizers and not to its rule resolvers, so an admin sees cluster-admin's rules once
    (``kubectl auth can-i --list`` printed ``[*]`` twice)."""
    spec = body.get("spec") or {}
    ns = spec.get("namespace") or ""
    rules: list[dict[str, Any]] = []
    incomplete = False
    if user.node_name() is not None and node_rules:
        rules += node_rules
        incomplete = True
    if rbac is not None:
        rules += rbac.rules_for(user, ns)
    resource_rules, non_resource_rules = [], []
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(r.get("verbs") or []), "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            rr: dict[str, Any] = {"verbs": list(r.get("verbs") or []), "apiGroups": list(r.get("apiGroups") or []),
                                  "resources": list(r.get("resources") or [])}
            if r.get("resourceNames"):
                rr["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(rr)
    out = copy.deepcopy(body) if body else {}
    out["apiVersion"] = f"{GROUP}/v1"
    out["kind"] = "SelfSubjectRulesReview"
    out.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    out["status"] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                     "incomplete": incomplete}
    return out
