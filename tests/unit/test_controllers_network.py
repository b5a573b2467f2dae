"""The network controllers' pure parts: node IPAM allocation, the EndpointSlice plan and
endpoint conditions, and ServiceLB's ingress addresses."""

from __future__ import annotations

import pytest

from controlplane.controllers import endpointslice as ES
from controlplane.controllers.nodeipam import in_use, next_free
from controlplane.controllers.servicelb import node_ingress
from controlplane.network.addressing import ClusterNetworks

NETS = ClusterNetworks.parse("10.70.0.0/22", "10.71.0.0/16")  # four /24s, the last holds the host address


@pytest.mark.parametrize("used,expected", [
    (set(), "10.70.0.0/24"),
    ({"10.70.0.0/24"}, "10.70.1.0/24"),
    ({"10.70.0.0/24", "10.70.2.0/24"}, "10.70.1.0/24"),
    ({"10.70.0.0/24", "10.70.1.0/24", "10.70.2.0/24"}, None),  # 10.70.3.0/24 holds 10.70.3.254
    ({"10.70.0.0/23"}, "10.70.2.0/24"),
    ({"192.0.2.0/24", "garbage"}, "10.70.0.0/24"),
])
def test_next_free(used, expected):
    assert next_free(NETS, used) == expected


def ipam_node(name, uid, cidr=None):
    return {"metadata": {"name": name, "uid": uid}, "spec": {"podCIDR": cidr} if cidr else {}}


@pytest.mark.parametrize("nodes,assigned,used,left", [
    # a's patch is answered but the watch has not brought it back: its CIDR stays taken
    ([ipam_node("a", "u1"), ipam_node("b", "u2")], {"a": ("u1", "10.70.0.0/24")}, {"10.70.0.0/24"}, {"a"}),
    # the cache shows it now: the cache's copy counts, the entry goes
    ([ipam_node("a", "u1", "10.70.0.0/24")], {"a": ("u1", "10.70.0.0/24")}, {"10.70.0.0/24"}, set()),
    # the node is gone, or is another object of that name: the range is free again
    ([ipam_node("b", "u2", "10.70.1.0/24")], {"a": ("u1", "10.70.0.0/24")}, {"10.70.1.0/24"}, set()),
    ([ipam_node("a", "u9")], {"a": ("u1", "10.70.0.0/24")}, set(), set()),
    ([], {}, set(), set()),
])
def test_in_use_covers_patches_the_cache_has_not_seen(nodes, assigned, used, left):
    assert in_use(nodes, assigned) == used
    assert set(assigned) == left


def test_two_nodes_reconciled_before_the_watch_get_different_ranges():
    assigned: dict = {}
    nodes = [ipam_node("a", "u1"), ipam_node("b", "u2")]
    first = next_free(NETS, in_use(nodes, assigned))
    assigned["a"] = ("u1", first)          # what reconcile records after a's patch
    second = next_free(NETS, in_use(nodes, assigned))
    assert (first, second) == ("10.70.0.0/24", "10.70.1.0/24")


def pod(name, ip, ready=True, deleting=False, node="n1", **spec):
    md = {"name": name, "namespace": "default", "uid": f"u-{name}", "labels": {"app": "web"}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
        {"name": "http", "containerPort": 8080}]}], **spec},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SVC = {"metadata": {"name": "web", "namespace": "default", "uid": "s1"},
       "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def test_endpoint_conditions():
    eps = ES.desired_groups(SVC, [pod("a", "10.70.0.2"), pod("b", "10.70.0.3", ready=False),
                                  pod("c", "10.70.0.4", deleting=True), pod("d", None)])
    ((ports, items),) = eps.values()
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    cond = {e["addresses"][0]: e["conditions"] for e in items}
    assert cond == {"10.70.0.2": {"ready": True, "serving": True, "terminating": False},
                    "10.70.0.3": {"ready": False, "serving": False, "terminating": False},
                    "10.70.0.4": {"ready": False, "serving": True, "terminating": True}}
    assert items[0]["nodeName"] == "n1" and items[0]["targetRef"]["name"] == "a"


def test_hostname_only_with_matching_subdomain():
    eps = ES.desired_groups(SVC, [pod("w0", "10.70.0.2", hostname="w0", subdomain="web"),
                                  pod("w1", "10.70.0.3", hostname="w1", subdomain="other")])
    items = next(iter(eps.values()))[1]
    assert items[0]["hostname"] == "w0" and "hostname" not in items[1]


def _slice(name, ips, ports=None):
    return {"metadata": {"name": name}, "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [i]} for i in ips]}


def test_plan_keeps_endpoints_in_place_and_splits_at_the_limit():
    pods = [pod(f"p{i}", f"10.70.0.{i + 2}") for i in range(5)]
    desired = ES.desired_groups(SVC, pods)
    p = ES.plan(desired, [], max_endpoints=2)
    assert [len(b["endpoints"]) for b in p.create] == [2, 2, 1] and not p.update and not p.delete
    # an existing slice keeps its endpoints; a removed pod leaves; room is refilled
    existing = [_slice("web-a", ["10.70.0.3", "10.70.0.99"])]
    p = ES.plan(desired, existing, max_endpoints=2)
    (s, _, eps), = p.update
    assert s is existing[0] and [e["addresses"][0] for e in eps] == ["10.70.0.3", "10.70.0.2"]
    assert sum(len(b["endpoints"]) for b in p.create) == 3


def test_plan_placeholder_and_stale_port_groups():
    p = ES.plan({}, [])
    assert p.create == [{"ports": [], "endpoints": []}]
    stale = _slice("web-old", ["10.70.0.2"], ports=[{"name": "x", "port": 1, "protocol": "TCP"}])
    placeholder = _slice("web-p", [], ports=[])
    p = ES.plan({}, [stale, placeholder])
    assert p.delete == [stale] and p.update == [(placeholder, [], [])] and not p.create


def node(addr, ready=True, simulated=False, ext=None):
    addrs = [{"type": "InternalIP", "address": addr}] + ([{"type": "ExternalIP", "address": ext}] if ext else [])
    return {"metadata": {"name": addr, "annotations": {"node.controlplane.io/simulated": "true"} if simulated else {}},
            "status": {"addresses": addrs, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_servicelb_ingress():
    assert node_ingress([node("127.0.0.1"), node("127.0.0.1"), node("10.0.0.9", ready=False),
                         node("10.0.0.8", simulated=True), node("10.0.0.7", ext="198.51.100.7")]) == \
        [{"ip": "127.0.0.1", "ipMode": "VIP"}, {"ip": "198.51.100.7", "ipMode": "VIP"}]


def test_trigger_time_is_the_newest_change():
    svc = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}
    p = pod("a", "10.70.0.2")
    p["metadata"]["creationTimestamp"] = "2026-01-01T00:00:05Z"
    p["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:00:09Z"
    assert ES.trigger_time(svc, [p]) == "2026-01-01T00:00:09Z"
    assert ES.trigger_time(svc, []) == "2026-01-01T00:00:00Z"
