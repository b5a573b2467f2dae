"""Which node port each Service port gets (``apiserver/strategy/nodeports.py``), table by table
against kube-apiserver's ``initNodePorts``, ``patchAllocatedValues`` and ``updateNodePorts``:
ports sharing a number (53/TCP + 53/UDP) share one node port taken once, requested ports,
``allocateLoadBalancerNodePorts: false``, and the errors. The allocator here is a set of taken
ports handing out the lowest free one (kube-apiserver's tests use an in-memory bitmap too);
the etcd-backed one is exercised in tests/integration/test_network_badinput.py."""

from __future__ import annotations

import copy

import pytest

from controlplane.apiserver.strategy import nodeports as npa

LO, HI = 30000, 32767


class PortOp:
    def __init__(self, taken=()):
        self.taken = set(taken)
        self.allocated: list[int] = []  # what this operation took, in order

    async def claim(self, port):
        if not isinstance(port, int) or not LO <= port <= HI:
            return f"provided port is not in the valid range. The range of valid ports is {LO}-{HI}"
        if port in self.taken:
            return "provided port is already allocated"
        self.taken.add(port)
        self.allocated.append(port)
        return None

    async def next_port(self):
        port = next(p for p in range(LO, HI + 1) if p not in self.taken)
        self.taken.add(port)
        self.allocated.append(port)
        return port


def port(number, protocol="TCP", node_port=None, name=None):
    p = {"name": name or f"p{number}-{protocol.lower()}", "port": number, "protocol": protocol}
    if node_port:
        p["nodePort"] = node_port
    return p


def spec(*ports, type="NodePort", **kw):
    return {"type": type, "ports": copy.deepcopy(list(ports)), **kw}


def node_ports(s):
    return [p.get("nodePort") for p in s["ports"]]


DNS = (port(53, "TCP"), port(53, "UDP"))


@pytest.mark.parametrize("s,taken,want,allocated", [
    (spec(*DNS), (), [30000, 30000], [30000]),
    (spec(*DNS, type="LoadBalancer"), (), [30000, 30000], [30000]),
    (spec(port(53, "TCP"), port(53, "UDP", 30053)), (), [30053, 30053], [30053]),
    (spec(port(53, "TCP", 30053), port(53, "UDP")), (), [30053, 30053], [30053]),
    (spec(port(53, "TCP", 30053), port(53, "UDP", 30053)), (), [30053, 30053], [30053]),
    (spec(port(53, "TCP", 30053), port(53, "UDP", 30054)), (), [30053, 30054], [30053, 30054]),
    (spec(*DNS, port(80)), (), [30000, 30000, 30001], [30000, 30001]),
    (spec(port(53, "TCP"), port(80), port(53, "UDP"), port(53, "SCTP")), (30000,), [30001, 30002, 30001, 30001],
     [30001, 30002]),
    (spec(*DNS, type="LoadBalancer", allocateLoadBalancerNodePorts=False), (), [None, None], []),
    (spec(port(53, "TCP"), port(53, "UDP", 30053), type="LoadBalancer", allocateLoadBalancerNodePorts=False), (),
     [None, 30053], [30053]),
    (spec(port(80, "TCP", 30080), port(81, "UDP", 30081)), (), [30080, 30081], [30080, 30081]),
], ids=["dns", "dns-lb", "udp-asks", "tcp-asks", "both-ask-same", "both-ask-different", "dns-and-http",
        "three-protocols", "lb-no-alloc", "lb-no-alloc-requested", "distinct"])
async def test_init_node_ports(s, taken, want, allocated):
    op = PortOp(taken)
    await npa.init_node_ports(s, op.claim, op.next_port)
    assert node_ports(s) == want
    assert op.allocated == allocated


@pytest.mark.parametrize("s,taken,field,value,message", [
    (spec(port(80, "TCP", 30080)), (30080,), "spec.ports[0].nodePort", 30080, "provided port is already allocated"),
    # the first port takes the node port a later port of its number asks for: the error is its own
    (spec(port(53, "TCP"), port(53, "UDP", 30100)), (30100,), "spec.ports[0].nodePort", 30100,
     "provided port is already allocated"),
    (spec(port(53, "TCP"), port(53, "UDP", 29999)), (), "spec.ports[0].nodePort", 29999,
     "provided port is not in the valid range. The range of valid ports is 30000-32767"),
    # one node port asked by two port numbers: taken by the first, refused to the second
    (spec(port(80, "TCP", 30053), port(53, "UDP", 30053)), (), "spec.ports[1].nodePort", 30053,
     "provided port is already allocated"),
    (spec(port(53, "TCP", 30053), port(53, "UDP", 30054)), (30054,), "spec.ports[1].nodePort", 30054,
     "provided port is already allocated"),
], ids=["taken", "later-request-taken", "out-of-range", "two-numbers-one-node-port", "second-taken"])
async def test_init_node_ports_refused(s, taken, field, value, message):
    op = PortOp(taken)
    with pytest.raises(npa.NodePortInvalid) as e:
        await npa.init_node_ports(s, op.claim, op.next_port)
    assert (e.value.field, e.value.value, e.value.message) == (field, value, message)


@pytest.mark.parametrize("old,new,taken,want,allocated", [
    # an update that omits the node ports keeps them, by port name: the shared one stays shared
    (spec(port(53, "TCP", 30053, "dns-tcp"), port(53, "UDP", 30053, "dns")),
     spec(port(53, "TCP", name="dns-tcp"), port(53, "UDP", name="dns")), (30053,), [30053, 30053], []),
    # a port added later asking for the number's node port shares it, nothing taken
    (spec(port(53, "TCP", 30053, "dns-tcp")),
     spec(port(53, "TCP", 30053, "dns-tcp"), port(53, "UDP", 30053, "dns")), (30053,), [30053, 30053], []),
    # one asking for none gets a new one (updateNodePorts allocates, it does not share)
    (spec(port(53, "TCP", 30053, "dns-tcp")),
     spec(port(53, "TCP", name="dns-tcp"), port(53, "UDP", name="dns")), (30053,), [30053, 30000], [30000]),
    # ClusterIP -> NodePort asking for one node port for both protocols: taken once
    (spec(*DNS, type="ClusterIP"), spec(port(53, "TCP", 30053), port(53, "UDP", 30053)), (), [30053, 30053], [30053]),
    (spec(*DNS, type="ClusterIP"), spec(*DNS), (), [30000, 30001], [30000, 30001]),
    # a port renamed keeps nothing; a port whose number changed keeps its name's node port
    (spec(port(80, "TCP", 30080, "http")), spec(port(8080, "TCP", name="http")), (30080,), [30080], []),
    (spec(port(80, "TCP", 30080, "http")), spec(port(80, "TCP", name="web")), (30080,), [30000], [30000]),
    # a node port the update gives to another port is not put back on its old port
    (spec(port(80, "TCP", 30001, "a"), port(81, "TCP", 30002, "b")),
     spec(port(80, "TCP", 30002, "a"), port(81, "TCP", name="b")), (30001, 30002), [30002, 30000], [30000]),
    # allocateLoadBalancerNodePorts turned false: the allocated ones stay
    (spec(*DNS[:1], type="LoadBalancer"),
     spec(port(53, "TCP"), type="LoadBalancer", allocateLoadBalancerNodePorts=False),
     (), [None], []),
    (spec(port(53, "TCP", 30053), type="LoadBalancer"),
     spec(port(53, "TCP"), port(53, "UDP"), type="LoadBalancer", allocateLoadBalancerNodePorts=False), (30053,),
     [30053, None], []),
], ids=["omitted-kept", "added-asks-shared", "added-new", "clusterip-to-nodeport-shared",
        "clusterip-to-nodeport", "number-changed", "renamed", "given-to-another", "lb-no-alloc-none",
        "lb-no-alloc-kept"])
async def test_update_node_ports(old, new, taken, want, allocated):
    op = PortOp(taken)
    npa.patch_allocated_node_ports(old, new)
    await npa.update_node_ports(old, new, op.claim, op.next_port)
    assert node_ports(new) == want
    assert op.allocated == allocated


async def test_update_duplicate_pair_is_an_internal_error():
    old = spec(port(53, "TCP", 30053))
    new = spec(port(53, "TCP", 30053, "a"), port(54, "TCP", 30053, "b"))
    op = PortOp({30053})
    with pytest.raises(npa.DuplicateNodePort, match=r"^duplicate nodePort: \{TCP 30053\}$"):
        await npa.update_node_ports(old, new, op.claim, op.next_port)


async def test_update_refused_request():
    op = PortOp({30099})
    with pytest.raises(npa.NodePortInvalid) as e:
        await npa.update_node_ports(spec(port(80, "TCP", 30080)), spec(port(80, "TCP", 30080), port(53, "UDP", 30099)),
                                    op.claim, op.next_port)
    assert (e.value.field, e.value.value) == ("spec.ports[1].nodePort", 30099)


@pytest.mark.parametrize("s,want", [
    (spec(), True), (spec(type="LoadBalancer"), True),
    (spec(type="LoadBalancer", allocateLoadBalancerNodePorts=False), False), (spec(type="ClusterIP"), False),
    (spec(type="ExternalName"), False),
], ids=["nodeport", "lb", "lb-no-alloc", "clusterip", "externalname"])
def test_should_allocate(s, want):
    assert npa.should_allocate(s) is want
