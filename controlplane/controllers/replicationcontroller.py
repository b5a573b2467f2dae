"""ReplicationController controller: keeps ``spec.replicas`` active pods matching the
controller's equality-based selector (``spec.selector``, a map of labels). The logic is the
ReplicaSet's (``replicasetutil.ReplicaManager``: claiming, expectations, slow-start creation,
ranked deletion, status with observedGeneration and the ReplicaFailure condition), as in
kube-controller-manager, where the replication manager wraps the ReplicaSet controller; this
module names what is the ReplicationController's: the core/v1 resource, the map selector and
the ``replication-controller`` Event source. Neighbours: ``replicasetutil``, the apiserver's
``strategy/replicationcontroller.py`` (defaults: selector from the template's labels).
"""

from __future__ import annotations

from typing import Callable

from controlplane.client import resources as R
from controlplane.client.manager import Manager
from controlplane.controllers import replicasetutil as rsu


def equality_selector(selector: dict | None) -> Callable[[dict], bool]:
    """A predicate on a labels dict for an RC's selector map; an empty selector matches nothing
    (the apiserver rejects one; it would otherwise claim every pod of the namespace)."""
    if not selector:
        return lambda labels: False
    wanted = dict(selector)
    return lambda labels: all(labels.get(k) == v for k, v in wanted.items())


KIND = rsu.ReplicaKind(R.REPLICATIONCONTROLLERS, "replicationcontroller", "replication-controller",
                       equality_selector, service_account="replication-controller")
SERVICE_ACCOUNT = KIND.service_account


class ReplicationControllerController(rsu.ReplicaManager):
    def __init__(self, manager: Manager, *, workers: int = 5, burst: int = rsu.BURST_REPLICAS) -> None:
        super().__init__(manager, KIND, workers=workers, burst=burst)


def setup(manager: Manager, workers: int = 5) -> ReplicationControllerController:
    return ReplicationControllerController(manager, workers=workers)
