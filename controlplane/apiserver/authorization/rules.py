"""RBAC ``PolicyRule`` semantics: does a rule allow a request (``rule_allows``), a role's rules
compiled into an index for fast matching (``CompiledRules``), and Kubernetes' ``Covers``
(``covers``: does one set of rules hold every permission of another) used by the escalation
and ``bind`` checks on role and binding writes.

Matching follows ``k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go``: ``*`` matches
any verb, group, resource or URL; ``resources`` may name ``res/sub``, ``*/sub`` (that
subresource of every resource) or ``res/*``; an empty ``resourceNames`` means all names;
``nonResourceURLs`` match exactly or by a trailing ``*`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from controlplane.apiserver.authorization.attributes import Attributes

Rule = dict[str, Any]  # a PolicyRule as JSON


def _has(values: Iterable[str] | None, want: str) -> bool:
    if not values:
        return False
    for v in values:
        if v == "*" or v == want:
            return True
    return False


def resource_matches(rule_resources: Iterable[str] | None, resource: str, sub: str) -> bool:
    combined = f"{resource}/{sub}" if sub else resource
    for r in rule_resources or ():
        if r == "*" or r == combined:
            return True
        if sub and (r == f"*/{sub}" or r == f"{resource}/*"):
            return True
    return False


def url_matches(rule_urls: Iterable[str] | None, path: str) -> bool:
    for u in rule_urls or ():
        if u == "*" or u == path:
            return True
        if u.endswith("*") and path.startswith(u[:-1]):
            return True
    return False


def rule_allows(rule: Rule, a: Attributes) -> bool:
    if not _has(rule.get("verbs"), a.verb):
        return False
    if a.resource_request:
        if not _has(rule.get("apiGroups"), a.api_group):
            return False
        if not resource_matches(rule.get("resources"), a.resource, a.subresource):
            return False
        names = rule.get("resourceNames")
        return not names or a.name in names
    return url_matches(rule.get("nonResourceURLs"), a.path)


_ALL = None  # "every verb / every name" in compiled entries


@dataclass
class CompiledRules:
    """A role's rules indexed by (apiGroup, resource pattern): a request looks up at most
    eight keys (its group or ``*`` x its resource, ``*``, ``*/sub``, ``res/*``) instead of
    scanning rules. Entries are (verbs or None for ``*``, resourceNames or None for all)."""

    resources: dict[tuple[str, str], list[tuple[frozenset[str] | None, frozenset[str] | None]]] = field(default_factory=dict)
    non_resource: list[tuple[frozenset[str] | None, tuple[str, ...]]] = field(default_factory=list)

    @classmethod
    def compile(cls, rules: Iterable[Rule]) -> "CompiledRules":
        c = cls()
        for r in rules or ():
            verbs = r.get("verbs") or []
            vset: frozenset[str] | None = _ALL if "*" in verbs else frozenset(verbs)
            if r.get("nonResourceURLs"):
                c.non_resource.append((vset, tuple(r["nonResourceURLs"])))
                continue
            names = frozenset(r["resourceNames"]) if r.get("resourceNames") else _ALL
            for g in r.get("apiGroups") or ():
                for res in r.get("resources") or ():
                    c.resources.setdefault((g, res), []).append((vset, names))
        return c

    def allows(self, a: Attributes) -> bool:
        if not a.resource_request:
            for verbs, urls in self.non_resource:
                if (verbs is None or a.verb in verbs) and url_matches(urls, a.path):
                    return True
            return False
        idx = self.resources
        if not idx:
            return False
        res, sub = a.resource, a.subresource
        patterns = (f"{res}/{sub}", "*", f"*/{sub}", f"{res}/*") if sub else (res, "*")
        for g in (a.api_group, "*"):
            for p in patterns:
                entries = idx.get((g, p))
                if entries:
                    for verbs, names in entries:
                        if (verbs is None or a.verb in verbs) and (names is None or a.name in names):
                            return True
        return False


# -- Covers (escalation prevention) --------------------------------------------------------

def _breakdown(rule: Rule) -> Iterator[Rule]:
    """One simple rule per (group, resource, resourceName, verb) or (url, verb)."""
    verbs = rule.get("verbs") or []
    if rule.get("nonResourceURLs"):
        for url in rule["nonResourceURLs"]:
            for v in verbs:
                yield {"verbs": [v], "nonResourceURLs": [url]}
        return
    names = rule.get("resourceNames") or [None]
    for g in rule.get("apiGroups") or []:
        for res in rule.get("resources") or []:
            for n in names:
                for v in verbs:
                    out: Rule = {"verbs": [v], "apiGroups": [g], "resources": [res]}
                    if n is not None:
                        out["resourceNames"] = [n]
                    yield out


def _resource_covers(owner: Iterable[str], requested: str) -> bool:
    owner = list(owner or [])
    if "*" in owner or requested in owner:
        return True
    res, _, sub = requested.partition("/")
    if sub and (f"*/{sub}" in owner or f"{res}/*" in owner):
        return True
    return False


def _url_covers(owner: Iterable[str], requested: str) -> bool:
    for o in owner or []:
        if o == requested or o == "*":
            return True
        if o.endswith("*") and requested.startswith(o[:-1]):
            return True
    return False


def _rule_covers(owner: Rule, simple: Rule) -> bool:
    if not all(_has(owner.get("verbs"), v) for v in simple.get("verbs") or []):
        return False
    if simple.get("nonResourceURLs"):
        return all(_url_covers(owner.get("nonResourceURLs") or [], u) for u in simple["nonResourceURLs"])
    if owner.get("nonResourceURLs") and not owner.get("resources"):
        return False
    if not all(_has(owner.get("apiGroups"), g) for g in simple.get("apiGroups") or []):
        return False
    if not all(_resource_covers(owner.get("resources") or [], r) for r in simple.get("resources") or []):
        return False
    owner_names = owner.get("resourceNames") or []
    if not owner_names:
        return True
    return bool(simple.get("resourceNames")) and all(n in owner_names for n in simple["resourceNames"])


def covers(owner_rules: list[Rule], servant_rules: list[Rule]) -> tuple[bool, list[Rule]]:
    """(whether ``owner_rules`` hold every permission in ``servant_rules``, the simple rules
    they miss) -- Kubernetes' ``validation.Covers``."""
    missing: list[Rule] = []
    for rule in servant_rules:
        for simple in _breakdown(rule):
            if not any(_rule_covers(o, simple) for o in owner_rules):
                missing.append(simple)
    return not missing, missing


def format_rule(r: Rule) -> str:
    """Kubernetes' compact PolicyRule rendering used in escalation error messages."""
    parts = []
    if r.get("apiGroups") is not None and not r.get("nonResourceURLs"):
        parts.append("APIGroups:[" + " ".join(f'"{g}"' for g in r.get("apiGroups") or []) + "]")
    if r.get("resources"):
        parts.append("Resources:[" + " ".join(f'"{x}"' for x in r["resources"]) + "]")
    if r.get("resourceNames"):
        parts.append("ResourceNames:[" + " ".join(f'"{x}"' for x in r["resourceNames"]) + "]")
    if r.get("nonResourceURLs"):
        parts.append("NonResourceURLs:[" + " ".join(f'"{x}"' for x in r["nonResourceURLs"]) + "]")
    parts.append("Verbs:[" + " ".join(f'"{x}"' for x in r.get("verbs") or []) + "]")
    return "{" + ", ".join(parts) + "}"
