"""Node IPAM controller (kube-controller-manager's range allocator): gives every Node without
one a ``spec.podCIDR``/``podCIDRs`` — the lowest free /24 (``--node-cidr-mask-size``) of the
cluster CIDR (``--cluster-cidr``, 10.42.0.0/16 by default), never the /24 that holds the
cluster's host address (``controlplane.network.addressing``). Level-based: the CIDRs in use
are read from the Node cache on every reconcile, so a deleted Node frees its range, together
with the ranges this controller has written that the cache does not show yet (the range
allocator's in-memory CIDR set): the watch brings a patched Node back some time after the
patch's answer, and a second Node reconciled in between must not get the same range (seen in
CI: two nodes on one /24). One worker. A Node whose CIDR lies outside the cluster CIDR
is left alone (an agent started with ``--pod-cidr``); when the range is exhausted the Node
gets a ``CIDRNotAvailable`` Event and is retried. Simulated nodes
(``node.controlplane.io/simulated``) run no pods and get none.
Neighbours: the node agent (waits for the CIDR, builds its pod network).
"""

from __future__ import annotations

import ipaddress

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger
from controlplane.network.addressing import DEFAULT_CLUSTER_CIDR, DEFAULT_NODE_MASK, ClusterNetworks

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:node-controller (bootstrap_policy)
SERVICE_ACCOUNT = "node-controller"

log = get_logger(__name__)
SIMULATED = "node.controlplane.io/simulated"


def next_free(nets: ClusterNetworks, used: set[str]) -> str | None:
    """The lowest node subnet not in ``used`` (pure)."""
    taken = set()
    for u in used:
        try:
            taken.add(ipaddress.ip_network(u, strict=False))
        except ValueError:
            continue
    for n in nets.node_subnets():
        if not any(n.overlaps(t) for t in taken):
            return str(n)
    return None


def in_use(nodes: list[dict], assigned: dict[str, tuple[str, str]]) -> set[str]:
    """The CIDRs taken: every cached Node's, plus those in ``assigned`` (node key -> (uid,
    CIDR) written by this controller) that the cache does not show yet. ``assigned`` is pruned
    in place of the entries the cache now covers: the Node shows a CIDR, is gone, or is
    another object of the same name (pure apart from that pruning)."""
    used = set()
    cached: dict[str, tuple[str, str | None]] = {}
    for n in nodes:
        md, spec = n.get("metadata") or {}, n.get("spec") or {}
        cidr = spec.get("podCIDR")
        if cidr:
            used.add(cidr)
        cached[object_key(n)] = (md.get("uid") or "", cidr)
    for key, (uid, cidr) in list(assigned.items()):
        seen = cached.get(key)
        if seen is None or seen[0] != uid or seen[1]:
            del assigned[key]
        else:
            used.add(cidr)
    return used


class NodeIPAMController:
    def __init__(self, manager: Manager, cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
                 node_mask: int = DEFAULT_NODE_MASK, service_cidr: str | None = None) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.nets = ClusterNetworks.parse(cluster_cidr, service_cidr or _disjoint(cluster_cidr), node_mask)
        self.nodes = manager.informer(R.NODES)
        self.recorder = manager.recorder("node-ipam-controller", SERVICE_ACCOUNT)
        self.assigned: dict[str, tuple[str, str]] = {}  # written, not in the cache yet
        self.controller = Controller("nodeipam", self.reconcile, workers=1)
        self.nodes.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        manager.add(self.controller)

    async def reconcile(self, key: str) -> Result | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        md, spec = node.get("metadata") or {}, node.get("spec") or {}
        if spec.get("podCIDR") or (md.get("annotations") or {}).get(SIMULATED) == "true":
            return None
        used = in_use(self.nodes.list(), self.assigned)
        if key in self.assigned:
            return None  # patched already; the watch has not brought it back yet
        cidr = next_free(self.nets, used)
        if cidr is None:
            self.recorder.event(node, "Normal", "CIDRNotAvailable",
                                f"Node {key} status is now: CIDRNotAvailable (cluster CIDR {self.nets.cluster_cidr} is full)")
            return Result(requeue_after=30.0)
        try:
            await self.client.patch(R.NODES, key, {"metadata": {"resourceVersion": md.get("resourceVersion")},
                                                   "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except ApiStatusError as e:
            if e.not_found:
                return None
            if e.conflict or e.code == 409:
                return Result(requeue=True)  # the cache was behind; look again
            self.recorder.event(node, "Warning", "CIDRAssignmentFailed", f"assigning {cidr}: {e.message}")
            raise
        self.assigned[key] = (md.get("uid") or "", cidr)
        log.info("pod CIDR assigned", node=key, cidr=cidr)
        self.recorder.event(node, "Normal", "CIDRAssigned", f"Node {key} got pod CIDR {cidr}")
        return None


def _disjoint(cluster_cidr: str) -> str:
    """A service CIDR that cannot overlap (IPAM never uses it; only for validation)."""
    c = ipaddress.ip_network(cluster_cidr)
    return "192.0.2.0/24" if not c.overlaps(ipaddress.ip_network("192.0.2.0/24")) else "198.51.100.0/24"


def setup(manager: Manager, workers: int = 1, cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
          node_mask: int = DEFAULT_NODE_MASK, **_: object) -> NodeIPAMController:
    return NodeIPAMController(manager, cluster_cidr, node_mask)
