"""NetworkPolicy → nftables rules (pure)."""

from __future__ import annotations

import pytest

from controlplane.proxy import policy as P


def pod(name, ip, ns="default", labels=None, ports=(), uid=None, phase="Running"):
    return {"metadata": {"name": name, "namespace": ns, "uid": uid or f"u-{name}", "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": n, "containerPort": p, "protocol": pr}
                                                          for n, pr, p in ports]}]},
            "status": {"podIP": ip, "phase": phase}}


def pol(name, selector=None, ingress=None, egress=None, types=None, ns="default"):
    spec: dict = {"podSelector": selector if selector is not None else {}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types:
        spec["policyTypes"] = types
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


WEB = pod("web", "10.70.1.2", labels={"app": "web"}, ports=[("http", "TCP", 8080)])
CLIENT = pod("client", "10.70.1.3", labels={"role": "client"})
OTHER = pod("other", "10.70.2.4", ns="prod", labels={"role": "client"})
NAMESPACES = {"default": {}, "prod": {"team": "a"}}
NODE = ["10.70.1.1", "10.70.1.252", "10.70.1.253"]


def run(policies, local=(WEB,), pods=(WEB, CLIENT, OTHER)):
    refs = [P.pod_ref(p) for p in pods]
    idx = P.PolicyIndex([r for r in refs if r], NAMESPACES)
    return P.fragments(policies, [P.pod_ref(p) for p in local], idx, NODE)


def chain(frags, direction="in", p=WEB):
    ref = P.pod_ref(p)
    return frags[f"policy/{ref.uid}"].chains[P.pod_chain(direction, ref)]


def test_default_deny_ingress():
    frags, bad = run([pol("deny", {"matchLabels": {"app": "web"}}, ingress=[])])
    rules = chain(frags)
    assert not bad and rules[-1] == "counter drop"
    assert rules[:2] == ["ip saddr 10.70.1.2 accept", "ip saddr { 10.70.1.1, 10.70.1.252, 10.70.1.253 } accept"]
    assert len(rules) == 3  # itself, the node, drop
    ref = P.pod_ref(WEB)
    assert frags[f"policy/{ref.uid}"].elements["pod-ingress"] == {"10.70.1.2": f"jump {P.pod_chain('in', ref)}"}


def test_unselected_pods_get_nothing():
    frags, _ = run([pol("deny", {"matchLabels": {"app": "db"}}, ingress=[])])
    assert frags == {}


@pytest.mark.parametrize("peer,expected", [
    ({"podSelector": {"matchLabels": {"role": "client"}}}, "ip saddr { 10.70.1.3 } tcp dport 8080 accept"),
    ({"namespaceSelector": {"matchLabels": {"team": "a"}}}, "ip saddr { 10.70.2.4 } tcp dport 8080 accept"),
    ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}},
     "ip saddr { 10.70.1.3, 10.70.2.4 } tcp dport 8080 accept"),
    ({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.70.2.0/24"]}},
     "ip saddr 10.0.0.0/8 ip saddr != { 10.70.2.0/24 } tcp dport 8080 accept"),
], ids=["podSelector", "namespaceSelector", "both", "ipBlock-except"])
def test_ingress_peers(peer, expected):
    frags, _ = run([pol("allow", {"matchLabels": {"app": "web"}},
                        ingress=[{"from": [peer], "ports": [{"port": 8080, "protocol": "TCP"}]}])])
    assert expected in chain(frags)


@pytest.mark.parametrize("ports,expected", [
    ([{"port": "http"}], ["tcp dport 8080 accept"]),
    ([{"port": 8000, "endPort": 8100}], ["tcp dport 8000-8100 accept"]),
    ([{"protocol": "UDP"}], ["meta l4proto udp accept"]),
    (None, ["accept"]),
    ([{"port": "nope"}], []),
], ids=["named", "range", "all-udp", "all", "unknown-named"])
def test_ingress_ports(ports, expected):
    rule = {"ports": ports} if ports is not None else {}
    frags, _ = run([pol("allow", {"matchLabels": {"app": "web"}}, ingress=[rule])])
    assert chain(frags)[2:-1] == expected


def test_peer_selecting_nobody_matches_nothing():
    frags, _ = run([pol("allow", {}, ingress=[{"from": [{"podSelector": {"matchLabels": {"x": "y"}}}]}])])
    assert chain(frags)[2:-1] == []


def test_egress_named_ports_resolve_on_peers_and_types_default():
    p = pol("eg", {"matchLabels": {"role": "client"}},
            egress=[{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http"}]}])
    assert P.policy_types(p) == {"Ingress", "Egress"}
    frags, _ = run([p], local=(CLIENT,))
    assert chain(frags, "eg", CLIENT) == ["ip daddr . tcp dport { 10.70.1.2 . 8080 } accept", "counter drop"]
    # an Ingress-only policy (no egress rules) also makes the pod default-deny for ingress
    assert chain(frags, "in", CLIENT)[-1] == "counter drop"


def test_egress_only_policy_type():
    p = pol("eg", {}, egress=[{"to": [{"ipBlock": {"cidr": "10.70.255.254/32"}}], "ports": [{"port": 53, "protocol": "UDP"}]}],
            types=["Egress"])
    frags, _ = run([p], local=(CLIENT,))
    ref = P.pod_ref(CLIENT)
    f = frags[f"policy/{ref.uid}"]
    assert "pod-ingress" not in f.elements
    assert f.chains[P.pod_chain("eg", ref)] == ["ip daddr 10.70.255.254/32 udp dport 53 accept", "counter drop"]


def test_policies_of_other_namespaces_do_not_apply_and_bad_ones_are_reported():
    bad_sel = pol("broken", {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, ingress=[])
    frags, bad = run([pol("deny", {}, ingress=[], ns="prod"), bad_sel])
    assert frags == {} and list(bad) == ["default/broken"]


def test_finished_pods_are_not_peers():
    assert P.pod_ref(pod("done", "10.70.1.9", phase="Succeeded")) is None
    assert P.pod_ref(pod("v6", "fd00::1")) is None
