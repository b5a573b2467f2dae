"""Service defaults, validation and type changes as kube-apiserver 1.32 answers them
(``ValidateService``, ``SetDefaults_Service``, ``dropTypeDependentFields``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.strategy.service import drop_type_dependent_fields
from controlplane.apiserver.validation.objects import validate
from tests.unit.apiserver_kinds import apply_defaults

SVC = ("", "v1", "Service")


def svc(**spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


def causes(obj: dict, old: dict | None = None) -> list[str]:
    obj = apply_defaults(obj, SVC)
    try:
        validate(obj, SVC, strict=True, is_update=old is not None, old=old)
    except ApiError as e:
        assert e.code == 422
        return [f'{c["field"]}: {c["message"]}' for c in e.details["causes"]]
    return []


@pytest.mark.parametrize("obj,want", [
    (svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
     'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'),
    (svc(type="NodePort", ports=[{"name": "a", "port": 80, "nodePort": 30100},
                                 {"name": "b", "port": 81, "nodePort": 30100}]),
     "spec.ports[1].nodePort: Duplicate value: 30100"),
    (svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"),
    (svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}}),
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"),
    (svc(externalIPs=["abc"]),
     'spec.externalIPs[0]: Invalid value: "abc": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    (svc(externalIPs=["127.0.0.1"]),
     'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'),
    (svc(externalTrafficPolicy="Local"),
     'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'),
    (svc(type="NodePort", externalTrafficPolicy="Both"),
     'spec.externalTrafficPolicy: Unsupported value: "Both": supported values: "Cluster", "Local"'),
    (svc(internalTrafficPolicy="Node"),
     'spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"'),
    (svc(loadBalancerSourceRanges=["10.0.0.0/8"]),
     "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"),
    (svc(type="LoadBalancer", loadBalancerSourceRanges=["10.0.0.0"]),
     'spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    (svc(type="NodePort", clusterIP="None"),
     "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    (svc(type="LoadBalancer", ports=[{"port": 10250}]),
     "spec.ports[0]: Invalid value: 10250: may not expose port 10250 externally since it is used by kubelet"),
    (svc(type="ExternalName", externalName="foo_bar.example", ports=[]),
     'spec.externalName: Invalid value: "foo_bar.example": a lowercase RFC 1123 subdomain'),
    (svc(type="ExternalName", externalName="db.example.", ipFamilies=["IPv4"], ports=[]),
     "spec.ipFamilies: Forbidden: may not be set for ExternalName services"),
    (svc(loadBalancerClass="example.com/lb"),
     "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"),
    (svc(ports=[{"port": 80, "appProtocol": "-bad"}]),
     'spec.ports[0].appProtocol: Invalid value: "-bad": name part must consist of'),
], ids=["dup-port", "dup-nodeport", "affinity-0", "affinity-max", "extip-bad", "extip-loopback", "etp-clusterip",
        "etp-value", "itp-value", "lbsr-type", "lbsr-cidr", "headless-nodeport", "kubelet-port", "externalname-dns",
        "externalname-families", "lbclass-type", "appprotocol"])
def test_invalid_services(obj, want):
    got = causes(obj)
    assert any(c.startswith(want) for c in got), got


@pytest.mark.parametrize("obj", [
    svc(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
    svc(type="NodePort", externalTrafficPolicy="Local"),
    svc(externalIPs=["192.0.2.7"], externalTrafficPolicy="Local"),
    svc(type="LoadBalancer", loadBalancerSourceRanges=[" 10.0.0.0/8 "], loadBalancerClass="example.com/lb"),
    svc(type="ExternalName", externalName="db.example.", ports=[]),
    svc(clusterIP="None", ports=[]),
    svc(sessionAffinity="ClientIP"),
], ids=["same-port-two-protocols", "nodeport-local", "externalips-local", "lb", "externalname", "headless",
        "affinity-default"])
def test_valid_services(obj):
    assert causes(obj) == []


@pytest.mark.parametrize("spec,want", [
    ({"sessionAffinity": "ClientIP"}, {"clientIP": {"timeoutSeconds": 10800}}),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     {"clientIP": {"timeoutSeconds": 60}}),
    ({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}, None),
], ids=["clientip-default", "clientip-kept", "none-dropped"])
def test_session_affinity_defaults(spec, want):
    assert apply_defaults(svc(**spec), SVC)["spec"].get("sessionAffinityConfig") == want


def test_external_traffic_policy_defaults_for_external_ips_only():
    assert apply_defaults(svc(externalIPs=["192.0.2.7"]), SVC)["spec"]["externalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in apply_defaults(svc(), SVC)["spec"]


def test_changing_the_cluster_ip_is_refused_with_kubernetes_message():
    old = apply_defaults(svc(clusterIP="10.43.0.50", clusterIPs=["10.43.0.50"]), SVC)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.43.0.99"
    assert 'spec.clusterIPs[0]: Invalid value: []string{"10.43.0.99"}: may not change once set' in causes(new, old)


@pytest.mark.parametrize("old_spec,patch,want", [
    # a `clusterIP: None` patch on a NodePort Service: both of ValidateServiceUpdate's errors,
    # the update's first (the plural follows the changed singular: normalizeClusterIPs)
    (dict(type="NodePort", clusterIP="10.43.0.50", clusterIPs=["10.43.0.50"]), {"clusterIP": "None"},
     ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set',
      "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]),
    (dict(type="LoadBalancer", clusterIP="10.43.0.50", clusterIPs=["10.43.0.50"]),
     {"clusterIP": "None", "clusterIPs": ["None"]},
     ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set',
      "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"]),
    (dict(clusterIP="None", clusterIPs=["None"]), {"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9"]},
     ['spec.clusterIPs[0]: Invalid value: []string{"10.43.0.9"}: may not change once set']),
    (dict(clusterIP="None", clusterIPs=["None"]), {"selector": {"a": "b"}}, []),  # headless stays headless
    (dict(clusterIP="10.43.0.50", clusterIPs=["10.43.0.50"]), {"type": "ExternalName", "externalName": "db.example",
                                                              "clusterIP": None, "clusterIPs": None}, []),
], ids=["none-on-nodeport", "none-on-lb", "headless-gets-ip", "headless-kept", "to-externalname"])
def test_cluster_ip_update_rules(old_spec, patch, want):
    old = apply_defaults(svc(**old_spec), SVC)
    new = copy.deepcopy(old)
    for k, v in patch.items():
        if v is None:
            new["spec"].pop(k, None)
            new["spec"].pop("ipFamilies", None)
            new["spec"].pop("ipFamilyPolicy", None)
            new["spec"].pop("internalTrafficPolicy", None)
        else:
            new["spec"][k] = v
    assert [c for c in causes(new, old) if c.startswith("spec.clusterIPs")] == want


def _stored(**spec: Any) -> dict:
    s = apply_defaults(svc(**spec), SVC)
    s["spec"].setdefault("clusterIP", "10.43.0.50")
    s["spec"]["clusterIPs"] = [s["spec"]["clusterIP"]]
    return s


@pytest.mark.parametrize("old,patch,gone,kept", [
    (_stored(type="LoadBalancer", ports=[{"port": 80, "nodePort": 30100}]), {"type": "ClusterIP"},
     ["externalTrafficPolicy", "allocateLoadBalancerNodePorts", "ports.0.nodePort"], ["clusterIP", "ipFamilies"]),
    (_stored(type="NodePort", ports=[{"port": 80, "nodePort": 30100}]), {"type": "ExternalName",
                                                                       "externalName": "db.example"},
     ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "externalTrafficPolicy", "ports.0.nodePort"],
     ["internalTrafficPolicy", "sessionAffinity"]),
    (_stored(type="NodePort", externalTrafficPolicy="Local"), {"type": "ClusterIP", "externalTrafficPolicy": "Cluster"},
     [], ["externalTrafficPolicy"]),  # changed by the user too: validation answers
    (_stored(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30200),
     {"externalTrafficPolicy": "Cluster"}, ["healthCheckNodePort"], ["ports.0.port"]),
    (_stored(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30200),
     {"type": "NodePort"}, ["healthCheckNodePort"], ["externalTrafficPolicy"]),
    (_stored(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=30200),
     {"externalTrafficPolicy": "Cluster", "healthCheckNodePort": 30201}, [], ["healthCheckNodePort"]),
], ids=["lb-to-clusterip", "nodeport-to-externalname", "etp-changed", "local-to-cluster-drops-hc",
        "lb-to-nodeport-drops-hc", "hc-changed-too"])
def test_type_changes_drop_what_only_the_old_type_used(old, patch, gone, kept):
    new = copy.deepcopy(old)
    new["spec"].update(patch)
    drop_type_dependent_fields(old, new)

    def has(path: str) -> bool:
        cur: Any = new["spec"]
        for part in path.split("."):
            cur = cur[int(part)] if part.isdigit() else cur.get(part) if isinstance(cur, dict) else None
            if cur is None:
                return False
        return True

    assert [g for g in gone if has(g)] == []
    assert [k for k in kept if not has(k)] == []
