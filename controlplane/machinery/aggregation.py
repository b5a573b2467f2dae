"""ClusterRole aggregation (``aggregationRule.clusterRoleSelectors``), shared by the apiserver's
bootstrap policy and the clusterrole-aggregation controller: an aggregated role's rules are
the union of the rules of every other ClusterRole its (non-empty) selectors match, taken in
name order, without duplicates -- what kube-controller-manager writes.
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.selectors import LabelSelector


def aggregated_rules(role: dict[str, Any], roles: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The rules ``role`` should have, or None if it has no aggregation rule."""
    agg = role.get("aggregationRule")
    if not agg:
        return None
    sels = []
    for s in agg.get("clusterRoleSelectors") or []:
        try:
            sel = LabelSelector.from_dict(s)
        except ValueError:
            continue
        if not sel.empty:
            sels.append(sel)
    name = (role.get("metadata") or {}).get("name")
    rules: list[dict[str, Any]] = []
    for other in sorted(roles, key=lambda o: (o.get("metadata") or {}).get("name", "")):
        meta = other.get("metadata") or {}
        if meta.get("name") == name:
            continue
        if any(s.matches(meta.get("labels") or {}) for s in sels):
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules
