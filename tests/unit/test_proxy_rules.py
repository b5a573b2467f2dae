"""Service proxy: Services + EndpointSlices → service ports → nftables rules (pure)."""

from __future__ import annotations

import pytest

from controlplane.network import addressing as A
from controlplane.proxy import model as M
from controlplane.proxy import rules as R

NETS = A.ClusterNetworks.parse("10.70.0.0/16", "10.71.0.0/16")
CTX = R.TableContext("cpx-t", "n1", NETS)


def svc(name="web", ip="10.71.0.5", ports=None, typ="ClusterIP", ann=None, labels=None, **spec):
    return {"metadata": {"name": name, "namespace": "default", "annotations": ann or {}, "labels": labels or {}},
            "spec": {"clusterIP": ip, "type": typ, "ports": ports or [{"port": 80, "protocol": "TCP"}], **spec}}


def ep(ip, ready=True, node="n1", serving=None, terminating=False):
    cond = {"ready": ready, "terminating": terminating}
    if serving is not None:
        cond["serving"] = serving
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def sl(*eps, port=8080, pname="", at="IPv4", svc_name="web", name="web-1"):
    return {"metadata": {"name": name, "namespace": "default", "labels": {M.SERVICE_NAME_LABEL: svc_name}},
            "addressType": at, "ports": [{"name": pname, "port": port, "protocol": "TCP"}], "endpoints": list(eps)}


def frag(s, *slices) -> R.Fragment:
    (sp,) = M.service_ports(s, list(slices))
    return R.service_fragment(sp, CTX)


def all_rules(f: R.Fragment) -> str:
    return "\n".join(r for rules in f.chains.values() for r in rules)


def test_random_is_the_default_and_round_robin_by_annotation():
    slices = [sl(ep("10.70.1.2"), ep("10.70.1.3"), ep("10.70.2.4"))]
    rnd = all_rules(frag(svc(), *slices))
    rr = all_rules(frag(svc(ann={M.ALGORITHM_ANNOTATION: "round-robin"}), *slices))
    assert "numgen random mod 3 vmap" in rnd and "numgen inc" not in rnd
    assert "numgen inc mod 3 vmap" in rr
    assert rnd.count("dnat to 10.70.") == 3 and "dnat to 10.70.2.4:8080" in rnd


@pytest.mark.parametrize("value,ok", [("random", True), ("round-robin", True), ("RoundRobin", True),
                                      ("", True), ("least-conn", False)])
def test_algorithm_annotation_values(value, ok):
    s = svc(ann={M.ALGORITHM_ANNOTATION: value})
    if ok:
        assert M.algorithm_of(s) in M.ALGORITHMS
    else:
        with pytest.raises(M.Unprogrammable, match="least-conn"):
            M.service_ports(s, [])


def test_one_endpoint_is_a_plain_goto_and_hairpin_masquerades():
    f = frag(svc(), sl(ep("10.70.1.2")))
    (svc_chain,) = [c for c in f.chains if c.startswith("svc-")]
    assert f.chains[svc_chain][-1].startswith("goto sep-")
    (sep,) = [c for c in f.chains if c.startswith("sep-")]
    assert f.chains[sep] == ["ip saddr 10.70.1.2 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.70.1.2:8080"]
    assert f.elements["service-ips"] == {"10.71.0.5 . tcp . 80": f"goto {svc_chain}"}
    assert f.elements["cluster-ips"] == {"10.71.0.5": ""}


def test_no_endpoints_means_reject():
    f = frag(svc(), sl())
    assert not [c for c in f.chains if c.startswith("svc-")]
    assert f.elements["no-endpoint-services"] == {"10.71.0.5 . tcp . 80": "goto reject-chain"}
    assert "service-ips" not in f.elements


def test_only_ready_endpoints_then_terminating_fallback():
    f = frag(svc(), sl(ep("10.70.1.2"), ep("10.70.1.3", ready=False)))
    assert "10.70.1.3" not in all_rules(f)
    # nothing ready: serving+terminating endpoints keep the Service working
    f = frag(svc(), sl(ep("10.70.1.2", ready=False, serving=True, terminating=True),
                       ep("10.70.1.3", ready=False, serving=False, terminating=True)))
    rules = all_rules(f)
    assert "dnat to 10.70.1.2:8080" in rules and "10.70.1.3" not in rules


def test_session_affinity_sets_and_lookups():
    f = frag(svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
             sl(ep("10.70.1.2"), ep("10.70.1.3")))
    assert len(f.sets) == 2 and all("timeout 60s" in d and "dynamic" in d for d in f.sets.values())
    (svc_chain,) = [c for c in f.chains if c.startswith("svc-")]
    lookups = [r for r in f.chains[svc_chain] if r.startswith("ip saddr @aff-")]
    assert len(lookups) == 2 and f.chains[svc_chain][-1].startswith("numgen random mod 2")
    assert all(any(r.startswith("update @aff-") for r in f.chains[c]) for c in f.chains if c.startswith("sep-"))
    # default timeout
    f = frag(svc(sessionAffinity="ClientIP"), sl(ep("10.70.1.2")))
    assert all("timeout 10800s" in d for d in f.sets.values())


def test_nodeport_and_loadbalancer_ports():
    s = svc(typ="LoadBalancer", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}
    f = frag(s, sl(ep("10.70.1.2"), ep("10.70.2.3", node="n2")))
    ext = [c for c in f.chains if c.startswith("ext-")]
    assert f.elements["node-ports"] == {"tcp . 30080": f"goto {ext[0]}", "tcp . 80": f"goto {ext[0]}"}
    assert f.chains[ext[0]][0] == "jump mark-for-masquerade"


def test_tcp_and_udp_on_one_node_port():
    """53/TCP + 53/UDP sharing the node port the apiserver gave both: one map entry per
    protocol, each to its own port's chain (and DNAT of its own protocol)."""
    s = svc(typ="LoadBalancer", ports=[{"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053},
                                       {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}
    slice_ = sl(ep("10.70.1.2"))
    slice_["ports"] = [{"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
                       {"name": "dns", "port": 5353, "protocol": "UDP"}]
    frags = {sp.key: R.service_fragment(sp, CTX) for sp in M.service_ports(s, [slice_])}
    assert len(frags) == 2
    node_ports = {k: v for f in frags.values() for k, v in f.elements["node-ports"].items()}
    assert set(node_ports) == {"tcp . 30053", "udp . 30053", "tcp . 53", "udp . 53"}
    assert node_ports["tcp . 30053"] != node_ports["udp . 30053"]
    for f in frags.values():
        (proto,) = {k.split(" . ")[0] for k in f.elements["node-ports"]}
        assert f"meta l4proto {proto} dnat to 10.70.1.2:5353" in all_rules(f)


@pytest.mark.parametrize("status,spec", [
    ({}, {}),  # pending: ServiceLB gave it no address (a port conflict, or ServiceLB disabled)
    ({"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}, {"loadBalancerClass": "example.com/lb"}),
], ids=["pending", "other-class"])
def test_load_balancer_port_only_once_servicelb_gave_an_address(status, spec):
    s = svc(typ="LoadBalancer", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}], **spec)
    s["status"] = status
    f = frag(s, sl(ep("10.70.1.2")))
    assert set(f.elements["node-ports"]) == {"tcp . 30080"}  # the NodePort only


def test_external_traffic_policy_local_uses_local_endpoints_only():
    s = svc(typ="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": 30080}], externalTrafficPolicy="Local")
    f = frag(s, sl(ep("10.70.1.2"), ep("10.70.2.3", node="n2")))
    (loc,) = [c for c in f.chains if c.startswith("loc-")]
    assert "10.70.2.3" not in " ".join(f.chains[loc]) and "10.70.1.2" in " ".join(f.chains[loc])
    (ext,) = [c for c in f.chains if c.startswith("ext-")]
    assert f.chains[ext][0].startswith("ip saddr 10.70.0.0/16 goto all-")
    # no local endpoint: external traffic is dropped, pods still reach the cluster-wide ones
    f = frag(s, sl(ep("10.70.2.3", node="n2")))
    (ext,) = [c for c in f.chains if c.startswith("ext-")]
    assert f.chains[ext][-1] == "drop"


def test_external_ips_and_named_ports():
    s = svc(ports=[{"name": "http", "port": 80, "protocol": "TCP"}], externalIPs=["10.70.255.1"])
    f = frag(s, sl(ep("10.70.1.2"), pname="http"))
    assert any(k.startswith("10.70.255.1 . tcp . 80") for k in f.elements["service-ips"])
    # a slice port whose name does not match the Service port gives no endpoints
    f = frag(s, sl(ep("10.70.1.2"), pname="other"))
    assert "no-endpoint-services" in f.elements


@pytest.mark.parametrize("s,slices,error", [
    (svc(), [sl(ep("fd00::1"), at="IPv6")], "IPv6"),
    (svc(), [sl(ep("not-an-ip"))], "not an IP"),
    (svc(ports=[{"port": 80, "protocol": "ICMP"}]), [], "protocol"),
    (svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 100000}}), [], "range"),
], ids=["ipv6-slice", "bad-address", "bad-protocol", "affinity-timeout"])
def test_unprogrammable(s, slices, error):
    with pytest.raises(M.Unprogrammable, match=error):
        M.service_ports(s, slices)


@pytest.mark.parametrize("s,proxied", [
    (svc(ip="None"), False), (svc(typ="ExternalName"), False),
    (svc(labels={M.PROXY_NAME_LABEL: "other"}), False), (svc(), True),
], ids=["headless", "externalname", "other-proxy", "plain"])
def test_which_services_are_proxied(s, proxied):
    assert M.proxied(s) is proxied


def test_fqdn_slices_are_ignored():
    assert M.endpoints_for([sl(ep("a.example"), at="FQDN")], "", "tcp") == []


def test_diff_script_orders_deletes_after_their_users():
    a = frag(svc(), sl(ep("10.70.1.2"), ep("10.70.1.3")))
    b = frag(svc(), sl(ep("10.70.1.2")))
    script = R.diff_script(CTX, {"k": (a, b)}).splitlines()
    flush = next(i for i, l in enumerate(script) if l.startswith("flush chain ip cpx-t svc-"))
    delete = next(i for i, l in enumerate(script) if l.startswith("delete chain"))
    assert flush < delete and "10.70.1.3" in script[delete]
    assert R.diff_script(CTX, {"k": (a, a)}) == ""
    gone = R.diff_script(CTX, {"k": (a, None)})
    assert gone.startswith("delete element ip cpx-t") and gone.count("delete chain") == 3


def test_diff_recreates_changed_affinity_sets():
    a = frag(svc(sessionAffinity="ClientIP"), sl(ep("10.70.1.2")))
    b = frag(svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}}),
             sl(ep("10.70.1.2")))
    lines = R.diff_script(CTX, {"k": (a, b)}).splitlines()
    i_flush = min(i for i, l in enumerate(lines) if l.startswith("flush chain"))
    i_del = next(i for i, l in enumerate(lines) if l.startswith("delete set"))
    i_add = next(i for i, l in enumerate(lines) if l.startswith("add set") and "timeout 30s" in l)
    i_rule = next(i for i, l in enumerate(lines) if "update @aff-" in l)
    assert i_flush < i_del < i_add < i_rule


def test_full_script_replaces_the_table():
    s = R.full_script(CTX, {"k": frag(svc(), sl(ep("10.70.1.2")))})
    lines = s.splitlines()
    assert lines[:3] == ["add table ip cpx-t", "delete table ip cpx-t", "add table ip cpx-t"]
    assert "add rule ip cpx-t cluster-ips-check ip daddr 10.71.0.0/16 drop" in lines
    assert any(l.startswith("add element ip cpx-t service-ips") for l in lines)


def test_host_script_publishes_only_what_is_asked():
    s = R.host_script("cpx-h", "cphX", "10.70.3.252", "10.70.255.254", {("tcp", 30080)}, {("udp", 53, 45000)})
    assert "add element ip cpx-h node-ports { tcp . 30080 }" in s
    assert 'iifname "cphX" ip daddr 10.70.255.254 udp dport 53 dnat to 127.0.0.1:45000' in s
    assert s.count("dnat to 127.0.0.1") == 1


def test_host_published_ports_need_our_label():
    mk = lambda labels, ann=None: {"metadata": {"name": "x", "labels": labels, "annotations": ann or {}},  # noqa: E731
                                   "endpoints": [{"addresses": ["10.70.255.254"]}],
                                   "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    ours = {"endpointslice.kubernetes.io/managed-by": M.HOST_SERVICES_MANAGER}
    assert M.host_published_ports([mk(ours, {M.LOOPBACK_PORTS_ANNOTATION: "dns=45000"})], "10.70.255.254") == \
        {("udp", 53, 45000)}
    assert M.host_published_ports([mk({"endpointslice.kubernetes.io/managed-by": "someone"})], "10.70.255.254") == set()
    assert M.host_published_ports([mk(ours)], "10.70.255.254") == {("udp", 53, 53)}
