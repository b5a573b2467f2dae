"""Which webhooks (and ValidatingAdmissionPolicies) a request goes to, as Kubernetes decides it
(``admission/plugin/webhook/predicates``): the rules (operations, API groups and versions,
resources with ``res/sub`` forms and ``*`` wildcards, scope), ``matchPolicy`` (``Equivalent``
also matches a rule naming the resource at another version -- this server serves one version
of each resource), the ``namespaceSelector`` (against the namespace's labels; a Namespace
request uses its own), the ``objectSelector`` (the new or the old object's labels) and the
admission configuration objects themselves, which no webhook is ever called for.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.admission.attributes import Attributes
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]
EXEMPT = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                    "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                    "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"})


def exempt(a: Attributes) -> bool:
    return a.info.group == "admissionregistration.k8s.io" and a.info.plural in EXEMPT


def _any(items: Any, value: str) -> bool:
    return isinstance(items, list) and ("*" in items or value in items)


def rule_matches(rule: Obj, a: Attributes, *, equivalent: bool, operations: bool = True) -> bool:
    scope = rule.get("scope") or "*"
    is_ns = a.info.group == "" and a.info.plural == "namespaces"
    if scope == "Namespaced" and (is_ns or not a.namespace):
        return False
    if scope == "Cluster" and not (is_ns or not a.namespace):
        return False
    if operations and not _any(rule.get("operations"), a.operation):
        return False
    if not _any(rule.get("apiGroups"), a.info.group):
        return False
    if not equivalent and not _any(rule.get("apiVersions"), a.info.version):
        return False
    for res in rule.get("resources") or []:
        r, _, sub = str(res).partition("/")
        if (r == "*" or r == a.info.plural) and (sub == "*" or sub == a.subresource):
            return True
    return False


def rules_match(rules: Any, a: Attributes, match_policy: str, *, operations: bool = True) -> bool:
    if not isinstance(rules, list):
        return False
    equivalent = match_policy != "Exact"
    return any(isinstance(r, dict) and rule_matches(r, a, equivalent=equivalent, operations=operations)
               for r in rules)


def namespace_labels_for(a: Attributes, lookups: Any) -> dict[str, str] | None:
    """The labels a namespaceSelector is matched against (None: cluster-scoped, always matches)."""
    if a.info.group == "" and a.info.plural == "namespaces" and not a.subresource:
        src = a.obj if a.operation in ("CREATE", "UPDATE") and a.obj is not None else a.old
        if src is not None:
            return ((src.get("metadata") or {}).get("labels")) or {}
        return lookups.namespace_labels(a.name) or {}
    if not a.namespace:
        return None
    return lookups.namespace_labels(a.namespace) or {}


async def namespace_matches(selector: LabelSelector, a: Attributes, lookups: Any) -> bool:
    if selector.empty:
        return True
    if a.info.group == "" and a.info.plural == "namespaces" or not a.namespace:
        labels = namespace_labels_for(a, lookups)
        return labels is None or selector.matches(labels)
    return selector.matches(await lookups.namespace_labels_live(a.namespace))


def object_matches(selector: LabelSelector, a: Attributes) -> bool:
    if selector.empty:
        return True
    for o in (a.obj, a.old):
        if isinstance(o, dict) and selector.matches(((o.get("metadata") or {}).get("labels")) or {}):
            return True
    return False
