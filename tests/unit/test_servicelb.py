"""ServiceLB's pure rules: which Service holds a LoadBalancer port, and Go's list format."""

from __future__ import annotations

import pytest

from controlplane.controllers.servicelb import go_strings, port_conflicts


def lb(name: str, created: str, *ports: tuple[int, str], typ: str = "LoadBalancer", cls: str | None = None) -> dict:
    spec = {"type": typ, "ports": [{"port": p, "protocol": proto} for p, proto in ports]}
    if cls:
        spec["loadBalancerClass"] = cls
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}


OLD = lb("old", "2026-01-01T00:00:00Z", (8080, "TCP"), (53, "UDP"))


@pytest.mark.parametrize("svc,others,want", [
    (lb("new", "2026-01-02T00:00:00Z", (8080, "TCP")), [OLD], [("TCP", 8080, "default/old")]),
    (lb("new", "2026-01-02T00:00:00Z", (53, "TCP")), [OLD], []),  # another protocol
    (OLD, [OLD, lb("new", "2026-01-02T00:00:00Z", (8080, "TCP"))], []),  # the older one keeps it
    (lb("new", "2026-01-02T00:00:00Z", (8080, "TCP")), [lb("np", "2026-01-01T00:00:00Z", (8080, "TCP"), typ="NodePort")],
     []),
    (lb("new", "2026-01-02T00:00:00Z", (8080, "TCP")), [lb("c", "2026-01-01T00:00:00Z", (8080, "TCP"), cls="x.io/lb")],
     []),
    (lb("b", "2026-01-01T00:00:00Z", (8080, "TCP")), [lb("a", "2026-01-01T00:00:00Z", (8080, "TCP"))],
     [("TCP", 8080, "default/a")]),  # same second: by name
    # DNS's 53/TCP + 53/UDP (one node port for both): two ports, no conflict with itself
    (lb("dns", "2026-01-02T00:00:00Z", (53, "TCP"), (53, "UDP")), [], []),
    (lb("dns", "2026-01-02T00:00:00Z", (53, "TCP"), (53, "UDP")), [lb("t", "2026-01-01T00:00:00Z", (53, "TCP"))],
     [("TCP", 53, "default/t")]),
    (lb("u", "2026-01-03T00:00:00Z", (53, "UDP")), [lb("dns", "2026-01-02T00:00:00Z", (53, "TCP"), (53, "UDP"))],
     [("UDP", 53, "default/dns")]),
], ids=["conflict", "other-protocol", "older-wins", "nodeport-ignored", "other-class-ignored", "tie-by-name",
        "tcp-udp-pair", "pair-blocked-on-tcp", "pair-holds-udp"])
def test_port_conflicts(svc, others, want):
    assert port_conflicts(svc, others + [svc]) == want


def test_go_strings():
    assert go_strings([]) == "[]" and go_strings(["127.0.0.1", "10.0.0.2"]) == "[127.0.0.1 10.0.0.2]"


def test_the_oldest_holder_is_named_once():
    mid = lb("mid", "2026-01-02T00:00:00Z", (8080, "TCP"))
    new = lb("new", "2026-01-03T00:00:00Z", (8080, "TCP"))
    assert port_conflicts(new, [mid, OLD, new]) == [("TCP", 8080, "default/old")]


@pytest.mark.parametrize("services, c_ports, want", [
    # b is pending (a holds 80), so b holds neither of its ports: c gets 443
    ([lb("a", "2026-01-01T00:00:00Z", (80, "TCP")), lb("b", "2026-01-02T00:00:00Z", (80, "TCP"), (443, "TCP"))],
     [(443, "TCP")], []),
    # b holds 443 (nothing older holds its ports): c is pending on it
    ([lb("a", "2026-01-01T00:00:00Z", (81, "TCP")), lb("b", "2026-01-02T00:00:00Z", (80, "TCP"), (443, "TCP"))],
     [(443, "TCP")], [("TCP", 443, "default/b")]),
    # a holds 80 and b is pending on it: c (443, 80) is pending on a only
    ([lb("a", "2026-01-01T00:00:00Z", (80, "TCP")), lb("b", "2026-01-02T00:00:00Z", (443, "TCP"), (80, "TCP"))],
     [(443, "TCP"), (80, "TCP")], [("TCP", 80, "default/a")]),
], ids=["pending-holds-nothing", "holder-blocks", "only-the-real-holder"])
def test_a_pending_service_holds_no_port(services, c_ports, want):
    c = lb("c", "2026-01-03T00:00:00Z", *c_ports)
    assert port_conflicts(c, services + [c]) == want
