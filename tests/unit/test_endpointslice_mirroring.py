"""The EndpointSliceMirroring controller's pure parts (``endpointslicemirroringutil``): which
Endpoints are mirrored, RepackSubsets, the endpoints per port list with the addresses skipped,
the slices' metadata, the plan over existing slices; and the Endpoints controller's
``truncate_subsets`` (the over-capacity cut of Kubernetes' endpoints controller)."""

from __future__ import annotations

import pytest

from controlplane.controllers import endpoints as EP
from controlplane.controllers import endpointslicemirroringutil as MU

HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}
HTTPS = {"name": "https", "port": 8443, "protocol": "TCP"}
SP_HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


def addr(ip, **kw):
    return {"ip": ip, **kw}


def endpoints(subsets, labels=None, annotations=None, name="db"):
    md = {"name": name, "namespace": "default", "uid": "ep-uid"}
    if labels is not None:
        md["labels"] = labels
    if annotations is not None:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": md, "subsets": subsets}


@pytest.mark.parametrize("labels,annotations,mirrored", [
    (None, None, True),
    ({"endpointslice.kubernetes.io/skip-mirror": "true"}, None, False),
    ({"endpointslice.kubernetes.io/skip-mirror": "false"}, None, True),
    (None, {"control-plane.alpha.kubernetes.io/leader": "{}"}, False),
], ids=["plain", "skip-mirror", "skip-mirror-false", "leader-election"])
def test_should_mirror(labels, annotations, mirrored):
    assert MU.should_mirror(endpoints([], labels, annotations)) is mirrored
    assert MU.should_mirror(None) is False


def _ips(s, field="addresses"):
    return [a["ip"] for a in s.get(field) or []]


@pytest.mark.parametrize("subsets,expected", [
    # two subsets with the same port merge, duplicates once
    ([{"addresses": [addr("10.0.0.2")], "ports": [HTTP]},
      {"addresses": [addr("10.0.0.1"), addr("10.0.0.2")], "ports": [HTTP]}],
     [(["10.0.0.1", "10.0.0.2"], [], [HTTP])]),
    # an address ready in one subset and not ready in the other is ready
    ([{"addresses": [addr("10.0.0.1")], "ports": [HTTP]},
      {"notReadyAddresses": [addr("10.0.0.1"), addr("10.0.0.3")], "ports": [HTTP]}],
     [(["10.0.0.1"], ["10.0.0.3"], [HTTP])]),
    # ports offered by the same addresses join one subset; others split
    ([{"addresses": [addr("10.0.0.1"), addr("10.0.0.2")], "ports": [HTTP, HTTPS]},
      {"addresses": [addr("10.0.0.3")], "ports": [HTTPS]}],
     [(["10.0.0.1", "10.0.0.2"], [], [HTTP]), (["10.0.0.1", "10.0.0.2", "10.0.0.3"], [], [HTTPS])]),
    # a subset without ports keeps its addresses
    ([{"addresses": [addr("10.0.0.1")]}], [(["10.0.0.1"], [], None)]),
    # the same IP with two targets is two addresses
    ([{"addresses": [addr("10.0.0.1", targetRef={"uid": "a"}), addr("10.0.0.1", targetRef={"uid": "b"})],
       "ports": [HTTP]}], [(["10.0.0.1", "10.0.0.1"], [], [HTTP])]),
    ([], []),
], ids=["merge-same-port", "ready-wins", "split-by-address-set", "no-ports", "ip-and-uid", "empty"])
def test_repack_subsets(subsets, expected):
    got = MU.repack_subsets(subsets)
    assert [(_ips(s), _ips(s, "notReadyAddresses"), s.get("ports")) for s in got] == expected


def _eps(d):
    return {k: [(e["addresses"][0], e["conditions"]["ready"]) for e in eps] for k, (_, eps) in d.groups.items()}


KEY_HTTP = MU.ports_key([SP_HTTP])


@pytest.mark.parametrize("subsets,limit,groups,counts", [
    ([{"addresses": [addr("10.0.0.1")], "notReadyAddresses": [addr("10.0.0.2")], "ports": [HTTP]}], 1000,
     {KEY_HTTP: [("10.0.0.1", True), ("10.0.0.2", False)]}, (0, 0, 0)),
    # over the limit: ready ones first, the rest counted as skipped
    ([{"addresses": [addr("10.0.0.1"), addr("10.0.0.2")], "notReadyAddresses": [addr("10.0.0.3")],
       "ports": [HTTP]}], 2, {KEY_HTTP: [("10.0.0.1", True), ("10.0.0.2", True)]}, (0, 0, 1)),
    # invalid and IPv6 addresses skipped, counted apart
    ([{"addresses": [addr("not-an-ip"), addr("127.0.0.1"), addr("169.254.1.1"), addr("fd00::1"),
                     addr("10.0.0.1")], "ports": [HTTP]}], 1000,
     {KEY_HTTP: [("10.0.0.1", True)]}, (3, 1, 4)),
    # skipped ones take no room; past the limit nothing more is looked at (sorted by IP)
    ([{"addresses": [addr("10.0.0.2"), addr("1.x"), addr("0.0.0.0"), addr("10.0.0.1")], "ports": [HTTP]}], 1,
     {KEY_HTTP: [("10.0.0.1", True)]}, (2, 0, 3)),
    # a subset whose addresses are all skipped gives no slice
    ([{"addresses": [addr("0.0.0.0")], "ports": [HTTP]}], 1000, {}, (1, 0, 1)),
    ([], 1000, {}, (0, 0, 0)),
], ids=["ready-and-not", "limit", "invalid-ipv6", "invalid-take-no-room", "all-invalid", "no-subsets"])
def test_desired_endpoints(subsets, limit, groups, counts):
    d = MU.desired_endpoints(endpoints(subsets), limit)
    assert _eps(d) == groups
    assert (d.invalid, d.ipv6, d.skipped) == counts


def test_endpoint_fields_and_ports():
    ref = {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u"}
    d = MU.desired_endpoints(endpoints([{"addresses": [addr("10.0.0.1", hostname="h", nodeName="n1", targetRef=ref)],
                                         "ports": [{"port": 5432}, {"name": "m", "port": 9, "protocol": "UDP",
                                                                    "appProtocol": "x"}]}]))
    ((ports, eps),) = d.groups.values()
    assert ports == [{"name": "", "port": 5432, "protocol": "TCP"},
                     {"name": "m", "port": 9, "protocol": "UDP", "appProtocol": "x"}]
    assert eps == [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "hostname": "h", "nodeName": "n1",
                    "targetRef": ref}]


def test_slice_meta_and_body():
    ep = endpoints([], labels={"app": "db", "endpointslice.kubernetes.io/skip-mirror": "false"},
                   annotations={"a": "1", "endpoints.kubernetes.io/last-change-trigger-time": "t",
                                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                "endpoints.kubernetes.io/over-capacity": "truncated"})
    body = MU.build_slice(ep, [SP_HTTP], [])
    md = body["metadata"]
    assert md["generateName"] == "db-" and md["namespace"] == "default"
    assert md["labels"] == {"app": "db", "kubernetes.io/service-name": "db",
                            "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert md["annotations"] == {"a": "1", "endpoints.kubernetes.io/over-capacity": "truncated"}
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints", "name": "db", "uid": "ep-uid",
                                      "controller": True, "blockOwnerDeletion": True}]
    assert body["addressType"] == "IPv4"
    # a stored copy of it is unchanged; a label change is not
    stored = {**body, "metadata": {**md, "name": "db-x", "resourceVersion": "7"}}
    assert MU.unchanged(stored, MU.build_slice(ep, [SP_HTTP], [], stored))
    ep["metadata"]["labels"]["tier"] = "backend"
    assert not MU.unchanged(stored, MU.build_slice(ep, [SP_HTTP], [], stored))


def _e(ip, ready=True):
    return {"addresses": [ip], "conditions": {"ready": ready}}


def _s(name, eps, ports=(SP_HTTP,), at="IPv4"):
    return {"metadata": {"name": name}, "addressType": at, "ports": list(ports), "endpoints": eps}


OTHER = {"name": "other", "port": 1, "protocol": "TCP"}


@pytest.mark.parametrize("desired,existing,creates,updates,deletes", [
    # nothing yet: one new slice
    ({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1"), _e("10.0.0.2")])}, [], [["10.0.0.1", "10.0.0.2"]], [], []),
    # one slice per port list: the first (by name) rewritten with every endpoint, the other deleted
    ({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1"), _e("10.0.0.2"), _e("10.0.0.3")])},
     [_s("b", [_e("10.0.0.1", ready=False)]), _s("a", [_e("10.0.0.2"), _e("10.0.0.9")])],
     [], [("a", ["10.0.0.1", "10.0.0.2", "10.0.0.3"])], ["b"]),
    # ports changed: the old slice is reused for the new one
    ({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1")])}, [_s("a", [_e("10.0.0.1")], ports=[OTHER])],
     [], [("a", ["10.0.0.1"])], []),
    # a new port list next to a kept one
    ({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1")]), MU.ports_key([OTHER]): ([OTHER], [_e("10.0.0.2")])},
     [_s("a", [_e("10.0.0.1")])], [["10.0.0.2"]], [("a", ["10.0.0.1"])], []),
    # duplicates once
    ({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1"), _e("10.0.0.1", ready=False)])}, [], [["10.0.0.1"]], [], []),
    # nothing desired: every slice goes, an IPv6 one too
    ({}, [_s("a", [_e("10.0.0.1")]), _s("v6", [_e("fd00::1")], at="IPv6")], [], [], ["a", "v6"]),
], ids=["create", "one-slice-per-ports", "recycle", "second-port-list", "duplicates", "delete-all"])
def test_plan(desired, existing, creates, updates, deletes):
    p = MU.plan(desired, existing)
    assert [[e["addresses"][0] for e in eps] for _, eps in p.create] == creates
    assert [(s["metadata"]["name"], [e["addresses"][0] for e in eps]) for s, _, eps in p.update] == updates
    assert sorted(s["metadata"]["name"] for s in p.delete) == deletes


def test_plan_updates_carry_the_desired_version_of_an_endpoint():
    p = MU.plan({KEY_HTTP: ([SP_HTTP], [_e("10.0.0.1", ready=False)])}, [_s("a", [_e("10.0.0.1")])])
    ((_, ports, eps),) = p.update
    assert ports == [SP_HTTP] and eps == [_e("10.0.0.1", ready=False)]


def _subset(ready, not_ready):
    return {"addresses": [addr(f"10.1.0.{i}") for i in range(ready)],
            "notReadyAddresses": [addr(f"10.2.0.{i}") for i in range(not_ready)]}


def _counts(subsets):
    return [(len(s.get("addresses") or []), len(s.get("notReadyAddresses") or [])) for s in subsets]


@pytest.mark.parametrize("shape,cap,cut,expected", [
    ([(2, 1)], 3, False, [(2, 1)]),
    # not-ready ones shared out (rounded up), ready ones kept
    ([(2, 2), (2, 4)], 6, True, [(2, 1), (2, 1)]),
    # more ready than room: ready shared out, not-ready all gone
    ([(4, 1), (2, 1)], 3, True, [(2, 0), (1, 0)]),
    ([(3, 0), (3, 0)], 5, True, [(3, 0), (2, 0)]),
], ids=["under", "cut-not-ready", "cut-ready", "last-gets-the-rest"])
def test_truncate_subsets(shape, cap, cut, expected):
    subsets = [_subset(r, n) for r, n in shape]
    assert EP.truncate_subsets(subsets, cap) is cut
    assert _counts(subsets) == expected


@pytest.mark.parametrize("text,value", [("1", 1), ("1000", 1000), ("0", None), ("1001", None), ("x", None)])
def test_mirroring_max_endpoints_flag(text, value):
    import argparse

    from controlplane.cmd.controller_manager import _int_in
    if value is None:
        with pytest.raises(argparse.ArgumentTypeError):
            _int_in(1, 1000)(text)
    else:
        assert _int_in(1, 1000)(text) == value
