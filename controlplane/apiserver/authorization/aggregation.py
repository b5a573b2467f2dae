"""Aggregated ClusterRoles at bootstrap: ``aggregate_all`` fills ``admin``/``edit``/``view``
(and any role with an ``aggregationRule``) to a fixed point, resolving chains such as
admin <- edit <- view, so the policy the apiserver writes at start is complete even before
the controller-manager's clusterrole-aggregation controller runs. The rule itself is
``machinery.aggregation.aggregated_rules``.
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.aggregation import aggregated_rules


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
