"""The address plan and the host-level names of the pod network (pure)."""

from __future__ import annotations

import ipaddress

import pytest

from controlplane.network import addressing as A


def test_defaults_and_well_known_addresses():
    n = A.ClusterNetworks.parse()
    assert str(n.cluster_cidr) == "10.42.0.0/16" and str(n.service_cidr) == "10.43.0.0/16"
    assert str(n.kubernetes_service_ip) == "10.43.0.1"
    assert str(n.dns_service_ip) == "10.43.0.10"
    assert str(n.host_address) == "10.42.255.254"
    subnets = n.node_subnets()
    assert str(subnets[0]) == "10.42.0.0/24" and len(subnets) == 255
    assert all(n.host_address not in s for s in subnets)


@pytest.mark.parametrize("cluster,service,mask,error", [
    ("10.42.0.0/16", "10.42.128.0/17", 24, "overlaps"),
    ("10.42.0.0/16", "10.43.0.0/16", 16, "node mask"),
    ("10.42.0.0/16", "10.43.0.0/29", 24, "too small"),
    ("fd00::/48", "10.43.0.0/16", 24, "IPv4"),
    ("10.42.0.1/16", "10.43.0.0/16", 24, "host bits"),
], ids=["overlap", "mask-too-short", "service-too-small", "ipv6", "host-bits"])
def test_bad_cidrs(cluster, service, mask, error):
    with pytest.raises(ValueError, match=error):
        A.ClusterNetworks.parse(cluster, service, mask)


@pytest.mark.parametrize("pod_cidr,gw,node,host,start,end", [
    ("10.42.3.0/24", "10.42.3.1", "10.42.3.252", "10.42.3.253", "10.42.3.2", "10.42.3.251"),
    ("10.70.0.64/26", "10.70.0.65", "10.70.0.124", "10.70.0.125", "10.70.0.66", "10.70.0.123"),
])
def test_node_addresses(pod_cidr, gw, node, host, start, end):
    a = A.NodeAddresses.parse(pod_cidr)
    assert (str(a.gateway), str(a.node_link_address), str(a.host_link_address)) == (gw, node, host)
    assert (str(a.range_start), str(a.range_end)) == (start, end)
    # the link is an aligned /31 inside the pod CIDR, outside the pods' range
    link = ipaddress.ip_network(f"{a.node_link_address}/31")
    assert link.network_address == a.node_link_address and a.host_link_address in link
    assert a.range_end < a.node_link_address


def test_names_derive_from_root_and_node(tmp_path):
    a = A.instance_id(tmp_path / "one", "host")
    b = A.instance_id(tmp_path / "two", "host")
    c = A.instance_id(tmp_path / "one", "other")
    assert len({a, b, c}) == 3 and A.instance_id(tmp_path / "one", "host") == a
    assert len(A.host_link_name(a)) <= 15  # IFNAMSIZ
    assert A.netns_name(a) == f"cpn-{a}" and A.proxy_table_name(a) == f"cpx-{a}"
    assert A.pod_netns_name("uid-1") != A.pod_netns_name("uid-2")


def test_route_metrics_encode_cluster_and_member():
    m = A.route_metric(A.METRIC_UNREACHABLE, 0xBEEF, 0x123)
    assert A.metric_tag(m) == 0xBEEF and m & 0xFFF == 0x123 and m >= A.METRIC_UNREACHABLE
    assert A.route_metric(A.METRIC_VIA_NODE, 1, 1) < A.route_metric(A.METRIC_UNREACHABLE, 1, 1)
    assert A.member_id("abc1234567", 0) != A.member_id("abc1234567", 1)


def test_cluster_tag_differs_per_instance():
    n = A.ClusterNetworks.parse()
    assert n.cluster_tag("http://127.0.0.1:6443") == n.cluster_tag("http://127.0.0.1:6443/")
    assert n.cluster_tag("http://127.0.0.1:6443") != n.cluster_tag("http://127.0.0.1:7443")


NETS = [ipaddress.ip_network("10.70.0.0/16"), ipaddress.ip_network("10.71.0.0/16")]
TAG = 0x1234


@pytest.mark.parametrize("route,conflict", [
    ({"dst": "default", "gateway": "192.0.2.1"}, False),
    ({"dst": "192.0.2.0/24", "dev": "eth0", "protocol": "kernel"}, False),
    ({"dst": "10.0.0.0/8", "dev": "eth0"}, True),
    ({"dst": "10.70.5.0/24", "dev": "docker0", "protocol": "kernel"}, True),
    ({"type": "unreachable", "dst": "10.70.0.0/16", "protocol": "211",
      "metric": A.route_metric(A.METRIC_UNREACHABLE, TAG, 7)}, False),
    ({"type": "unreachable", "dst": "10.70.0.0/16", "protocol": "211",
      "metric": A.route_metric(A.METRIC_UNREACHABLE, TAG + 1, 7)}, True),
    ({"type": "local", "dst": "10.70.3.253", "table": "local", "dev": "cph1"}, False),
    ({"dst": "10.71.0.9", "dev": "x", "protocol": "static"}, True),
], ids=["default", "other-net", "covering", "inside", "ours", "other-instance", "local-table", "host-route"])
def test_route_conflicts(route, conflict):
    assert bool(A.route_conflicts([route], NETS, TAG)) is conflict


def test_down_finds_every_node_network_of_the_data_dir(tmp_path):
    """`controlplane down`'s network cleanup is registered and finds the node networks an
    instance's data dir records (its agent and a second agent), nothing outside it."""
    import json

    from controlplane import hostcleanup
    from controlplane.network import node

    assert "network" in [c.name for c in hostcleanup.cleanups()]
    for rel, name in (("agent", "n1"), ("extra/agent-b", "n1-b")):
        (tmp_path / "data" / rel).mkdir(parents=True)
        (tmp_path / "data" / rel / "network.json").write_text(json.dumps({"node": name}))
    (tmp_path / "other" / "agent").mkdir(parents=True)
    (tmp_path / "other" / "agent" / "network.json").write_text(json.dumps({"node": "x"}))
    inst = hostcleanup.Instance(tmp_path / "data", "n1-abc", "n1")
    assert sorted(node._roots(inst)) == [((tmp_path / "data" / "agent").resolve(), "n1"),
                                         ((tmp_path / "data" / "extra" / "agent-b").resolve(), "n1-b")]
