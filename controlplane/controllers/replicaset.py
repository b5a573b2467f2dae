"""ReplicaSet controller: keeps ``spec.replicas`` active pods matching the ReplicaSet's label
selector. The logic (claiming, expectations, slow-start creation, ranked deletion, status) is
``replicasetutil.ReplicaManager``, shared with the ReplicationController controller; this
module names what is ReplicaSet's: the resource, ``spec.selector`` as a LabelSelector, the
``replicaset-controller`` Event source. Neighbours: ``deployment`` (owns ReplicaSets),
``replicasetutil``.
"""

from __future__ import annotations

from controlplane.client import resources as R
from controlplane.client.manager import Manager
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import replicasetutil as rsu

KIND = rsu.ReplicaKind(R.REPLICASETS, "replicaset", "replicaset-controller", cu.selector_matcher,
                       service_account="replicaset-controller")
SERVICE_ACCOUNT = KIND.service_account


class ReplicaSetController(rsu.ReplicaManager):
    def __init__(self, manager: Manager, *, workers: int = 5, burst: int = rsu.BURST_REPLICAS) -> None:
        super().__init__(manager, KIND, workers=workers, burst=burst)


def setup(manager: Manager, workers: int = 5) -> ReplicaSetController:
    return ReplicaSetController(manager, workers=workers)
