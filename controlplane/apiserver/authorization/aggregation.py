"""ClusterRole aggregation (``aggregationRule.clusterRoleSelectors``): an aggregated role's rules
are the union of the rules of every ClusterRole its selectors match, in name order, without
duplicates -- what kube-controller-manager's clusterrole-aggregation controller writes.
``aggregate_all`` resolves chains (admin <- edit <- view) to a fixed point, for the bootstrap
policy written at start; the controller (``controllers/clusterroleaggregation.py``) keeps
roles current afterwards, one level per change as Kubernetes' does.
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.selectors import LabelSelector


def selectors(role: dict[str, Any]) -> list[LabelSelector] | None:
    agg = role.get("aggregationRule")
    if not agg:
        return None
    out = []
    for s in agg.get("clusterRoleSelectors") or []:
        try:
            out.append(LabelSelector.from_dict(s))
        except ValueError:
            continue
    return out


def aggregated_rules(role: dict[str, Any], all_roles: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The rules ``role`` should have, or None if it is not an aggregated role."""
    sels = selectors(role)
    if sels is None:
        return None
    name = (role.get("metadata") or {}).get("name")
    rules: list[dict[str, Any]] = []
    for other in sorted(all_roles, key=lambda o: (o.get("metadata") or {}).get("name", "")):
        oname = (other.get("metadata") or {}).get("name")
        if oname == name:
            continue
        labels = (other.get("metadata") or {}).get("labels") or {}
        if any(s.matches(labels) for s in sels if not s.empty):
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


def aggregate_all(roles: list[dict[str, Any]], max_rounds: int = 10) -> list[dict[str, Any]]:
    roles = [dict(r) for r in roles]
    for _ in range(max_rounds):
        changed = False
        for role in roles:
            rules = aggregated_rules(role, roles)
            if rules is not None and rules != (role.get("rules") or []):
                role["rules"] = rules
                changed = True
        if not changed:
            break
    return roles
