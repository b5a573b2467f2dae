"""ClusterRole aggregation controller (kube-controller-manager's ``clusterrole-aggregation``):
a ClusterRole with an ``aggregationRule`` gets as rules the union of the rules of the
ClusterRoles its selectors match (``admin``/``edit``/``view`` pick up every role labelled
``rbac.authorization.k8s.io/aggregate-to-<name>: "true"``, e.g. one a CRD's operator adds).

``reconcile(name)`` recomputes one aggregated role from the informer's cache and writes it
when it differs; any ClusterRole change wakes every aggregated role (chains such as
admin <- edit settle in a few rounds, as in Kubernetes). Neighbours: the apiserver's
bootstrap policy writes the initial rules; ``apiserver/authorization/aggregation`` has the rule.
"""

from __future__ import annotations

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger
from controlplane.machinery.aggregation import aggregated_rules

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:clusterrole-aggregation-controller (bootstrap_policy)
SERVICE_ACCOUNT = "clusterrole-aggregation-controller"

log = get_logger(__name__)


class ClusterRoleAggregationController:
    def __init__(self, manager: Manager, *, workers: int = 1) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.roles = manager.informer(R.CLUSTERROLES)
        self.controller = Controller("clusterrole-aggregation", self.reconcile, workers=workers)
        self.roles.add_handler(self._on_role)
        manager.add(self.controller)

    def _on_role(self, etype: str, obj: dict, old: dict | None) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule"):
                self.controller.enqueue(role["metadata"]["name"])

    async def reconcile(self, name: str) -> Result | None:
        role = self.roles.get(name)
        if role is None:
            return None
        rules = aggregated_rules(role, self.roles.list())
        if rules is None or rules == (role.get("rules") or []):
            return None
        try:
            await self.client.update(R.CLUSTERROLES, {**role, "rules": rules})
        except ApiStatusError as e:
            if e.not_found:
                return None
            raise
        log.info("aggregated cluster role updated", name=name, rules=len(rules))
        return None


def setup(manager: Manager, workers: int = 1) -> ClusterRoleAggregationController:
    return ClusterRoleAggregationController(manager, workers=workers)
