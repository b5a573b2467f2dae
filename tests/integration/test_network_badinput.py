"""Bad networking input gets Kubernetes' answer from the apiserver (real kubectl, the session
apiserver, whose service CIDR is the default 10.43.0.0/16): a clusterIP outside the range or
taken, a nodePort outside the range or in use, unnamed ports among several, bad manual
EndpointSlices and NetworkPolicies — each a 422 naming the field, and nothing is lost (a freed
address or port can be taken again)."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

pytestmark = pytest.mark.integration


@pytest.fixture
def ns(kubectl):
    name = f"nb-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def create(kubectl, ns: str, obj: dict):  # type: ignore[no-untyped-def]
    return kubectl("create", "-n", ns, "-f", "-", input=yaml.safe_dump(obj), check=False)


def svc(name: str, **spec) -> dict:
    s = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": s}


def refused(r, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode != 0, r.stdout
    assert "is invalid" in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_cluster_ip_outside_the_range_or_taken(kubectl, ns):
    refused(create(kubectl, ns, svc("out", clusterIP="192.0.2.10")),
            'spec.clusterIPs: Invalid value: []string{"192.0.2.10"}: failed to allocate IP 192.0.2.10: '
            "the provided IP (192.0.2.10) is not in the valid range. The range of valid IPs is 10.43.0.0/16")
    ip = f"10.43.200.{uuid.uuid4().int % 200 + 20}"
    assert create(kubectl, ns, svc("first", clusterIP=ip)).returncode == 0
    refused(create(kubectl, ns, svc("second", clusterIP=ip)), f"failed to allocate IP {ip}: provided IP is already allocated")
    refused(create(kubectl, ns, svc("bad", clusterIP="10.43.999.1")), "spec.clusterIPs[0]")
    kubectl("delete", "svc", "first", "-n", ns)
    assert create(kubectl, ns, svc("second", clusterIP=ip)).returncode == 0  # freed, taken again


def test_node_ports_range_conflicts_and_release(kubectl, ns):
    port = 30000 + uuid.uuid4().int % 2700
    np = {"name": "http", "port": 80, "targetPort": 8080, "nodePort": port}
    assert create(kubectl, ns, svc("a", type="NodePort", ports=[np])).returncode == 0
    refused(create(kubectl, ns, svc("b", type="NodePort", ports=[np])),
            f"spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated")
    refused(create(kubectl, ns, svc("c", type="NodePort", ports=[dict(np, nodePort=29999)])),
            "spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. "
            "The range of valid ports is 30000-32767")
    # NodePort -> ClusterIP gives the port back
    kubectl("patch", "svc", "a", "-n", ns, "--type=merge", "-p",
            json.dumps({"spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
    a = json.loads(kubectl("get", "svc", "a", "-n", ns, "-o", "json").stdout)
    assert "nodePort" not in a["spec"]["ports"][0]
    assert create(kubectl, ns, svc("b", type="NodePort", ports=[np])).returncode == 0
    # ClusterIP -> NodePort allocates one
    kubectl("patch", "svc", "a", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"type": "NodePort"}}))
    a = json.loads(kubectl("get", "svc", "a", "-n", ns, "-o", "json").stdout)
    assert 30000 <= a["spec"]["ports"][0]["nodePort"] <= 32767 and a["spec"]["ports"][0]["nodePort"] != port


def _dns(name: str, type: str = "NodePort", tcp: int | None = None, udp: int | None = None, **spec) -> dict:
    ports = [{"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
             {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]
    for p, np in zip(ports, (tcp, udp)):
        if np:
            p["nodePort"] = np
    return svc(name, type=type, ports=ports, **spec)


def test_tcp_and_udp_of_one_port_share_one_node_port(kubectl, ns):
    """kube-apiserver's ``initNodePorts``: 53/TCP + 53/UDP get one node port, taken once; an
    update that omits it keeps it on both; a type change or the deletion gives it back once."""
    assert kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(_dns("dns"))).returncode == 0
    nps = [p["nodePort"] for p in get_spec(kubectl, ns, "dns")["ports"]]
    np = nps[0]
    assert nps == [np, np] and 30000 <= np <= 32767
    refused(create(kubectl, ns, svc("thief", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": np}])),
            f"spec.ports[0].nodePort: Invalid value: {np}: provided port is already allocated")
    # kubectl apply again (its patch has no nodePort) and a PUT without them keep the one port
    assert kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(_dns("dns", sessionAffinity="ClientIP"))
                   ).returncode == 0
    body = json.loads(kubectl("get", "svc", "dns", "-n", ns, "-o", "json").stdout)
    for p in body["spec"]["ports"]:
        p.pop("nodePort")
    assert kubectl("replace", "-n", ns, "-f", "-", input=json.dumps(body)).returncode == 0
    assert [p["nodePort"] for p in get_spec(kubectl, ns, "dns")["ports"]] == [np, np]
    # LoadBalancer asking for one node port for both protocols; a dry run shows one placeholder
    other = _port()
    assert create(kubectl, ns, _dns("lb", type="LoadBalancer", udp=other)).returncode == 0
    assert [p["nodePort"] for p in get_spec(kubectl, ns, "lb")["ports"]] == [other, other]
    dry = json.loads(kubectl("create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-",
                             input=yaml.safe_dump(_dns("dry"))).stdout)["spec"]
    assert [p["nodePort"] for p in dry["ports"]] == [32769, 32769]
    # NodePort -> ClusterIP gives it back; deleting the LoadBalancer gives its one back
    assert patch(kubectl, ns, "dns", {"spec": {"type": "ClusterIP"}}).returncode == 0
    assert create(kubectl, ns, _dns("again", tcp=np, udp=np)).returncode == 0
    kubectl("delete", "svc", "lb", "-n", ns)
    assert create(kubectl, ns, svc("taker", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": other}])
                  ).returncode == 0


def test_unnamed_ports_among_several(kubectl, ns):
    refused(create(kubectl, ns, svc("two", ports=[{"port": 80}, {"port": 81}])),
            "spec.ports[0].name: Required value", "spec.ports[1].name: Required value")


@pytest.mark.parametrize("slice_,needle", [
    ({"addressType": "IPv4", "endpoints": [{"addresses": ["not-an-ip"]}]},
     'endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IPv4 address'),
    ({"addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"]}]},
     "may not be in the loopback range"),
    ({"addressType": "IPv4", "endpoints": [{"addresses": []}]}, "endpoints[0].addresses: Required value"),
    ({"addressType": "Bogus", "endpoints": []}, 'addressType: Unsupported value: "Bogus"'),
    ({"addressType": "IPv4", "endpoints": [], "ports": [{"name": "a", "port": 1, "protocol": "TCP"},
                                                       {"name": "a", "port": 2, "protocol": "TCP"}]},
     'ports[1].name: Duplicate value: "a"'),
    ({"addressType": "IPv4", "endpoints": [], "ports": [{"name": "a", "port": 70000, "protocol": "TCP"}]},
     "ports[0].port: Invalid value: 70000"),
], ids=["not-an-ip", "loopback", "no-address", "address-type", "duplicate-port", "port-range"])
def test_bad_manual_slices(kubectl, ns, slice_, needle):
    obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "manual", "labels": {"kubernetes.io/service-name": "x"}}, **slice_}
    refused(create(kubectl, ns, obj), needle)


@pytest.mark.parametrize("spec,needle", [
    ({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/24"]}}]}]},
     "must be a strict subset of `cidr`"),
    ({"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
     "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`"),
    ({"podSelector": {}, "egress": [{"to": [{}]}]}, "spec.egress[0].to[0]: Required value"),
    ({"podSelector": {}, "policyTypes": ["Sideways"]}, 'spec.policyTypes[0]: Unsupported value: "Sideways"'),
], ids=["except", "endPort", "empty-peer", "policy-type"])
def test_bad_network_policies(kubectl, ns, spec, needle):
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": spec}
    refused(create(kubectl, ns, obj), needle)


def test_served_resources_and_defaults(kubectl, ns):
    out = kubectl("api-resources", "--api-group=discovery.k8s.io", "-o", "name").stdout
    assert "endpointslices.discovery.k8s.io" in out
    assert "networkpolicies.networking.k8s.io" in kubectl("api-resources", "-o", "name").stdout
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "ok"},
           "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                    "egress": [{"ports": [{"port": 53}]}]}}
    assert create(kubectl, ns, obj).returncode == 0
    got = json.loads(kubectl("get", "netpol", "ok", "-n", ns, "-o", "json").stdout)
    assert got["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert got["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    assert "app=web" in kubectl("get", "netpol", "-n", ns).stdout
    k = json.loads(kubectl("get", "svc", "kubernetes", "-n", "default", "-o", "json").stdout)
    assert k["spec"]["clusterIP"] == "10.43.0.1" and k["spec"]["ports"][0]["port"] == 443
    eps = json.loads(kubectl("get", "endpointslices", "kubernetes", "-n", "default", "-o", "json").stdout)
    assert eps["endpoints"][0]["addresses"] == ["10.42.255.254"]


def test_service_validation_and_type_changes_as_kube_apiserver(kubectl, ns):
    """Duplicate ports, a changed clusterIP and bad affinity get kube-apiserver's 422s; ClientIP
    affinity gets its default timeout; a type change drops what only the old type used."""
    refused(create(kubectl, ns, svc("dup", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}])),
            'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
            'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')
    refused(create(kubectl, ns, svc("etp", externalTrafficPolicy="Local")),
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services')
    assert create(kubectl, ns, svc("lb", type="LoadBalancer", sessionAffinity="ClientIP")).returncode == 0
    s = json.loads(kubectl("get", "svc", "lb", "-n", ns, "-o", "json").stdout)["spec"]
    assert s["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    r = kubectl("patch", "svc", "lb", "-n", ns, "-p", json.dumps({"spec": {"clusterIP": "10.43.0.77"}}), check=False)
    refused(r, 'spec.clusterIPs[0]: Invalid value: []string{"10.43.0.77"}: may not change once set')
    r = kubectl("patch", "svc", "lb", "-n", ns, "-p", json.dumps(
        {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}}), check=False)
    refused(r, "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: "
               "must be greater than 0 and less than 86400")
    kubectl("patch", "svc", "lb", "-n", ns, "-p", json.dumps({"spec": {"type": "ClusterIP"}}))
    s = json.loads(kubectl("get", "svc", "lb", "-n", ns, "-o", "json").stdout)["spec"]
    assert not {"externalTrafficPolicy", "allocateLoadBalancerNodePorts"} & set(s) and "nodePort" not in s["ports"][0]
    kubectl("patch", "svc", "lb", "-n", ns, "-p", json.dumps({"spec": {"type": "ExternalName", "externalName": "db.example"}}))
    s = json.loads(kubectl("get", "svc", "lb", "-n", ns, "-o", "json").stdout)["spec"]
    assert not {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(s), s


def _port() -> int:
    return 30000 + uuid.uuid4().int % 2700


def get_spec(kubectl, ns: str, name: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(kubectl("get", "svc", name, "-n", ns, "-o", "json").stdout)["spec"]


def patch(kubectl, ns: str, name: str, body: dict):  # type: ignore[no-untyped-def]
    return kubectl("patch", "svc", name, "-n", ns, "--type=merge", "-p", json.dumps(body), check=False)


def test_health_check_node_port_allocated_reserved_and_released(kubectl, ns):
    """A LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort from the node
    port range (a requested one is reserved; a taken one is kube-apiserver's InternalError); it
    is released when the policy turns Cluster or the Service goes, and may not change."""
    assert create(kubectl, ns, svc("lb", type="LoadBalancer", externalTrafficPolicy="Local")).returncode == 0
    hc = get_spec(kubectl, ns, "lb")["healthCheckNodePort"]
    assert 30000 <= hc <= 32767
    r = create(kubectl, ns, svc("lb2", type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=hc))
    assert r.returncode != 0 and "Error from server (InternalError)" in r.stderr, r.stderr
    assert f"Internal error occurred: failed to allocate requested HealthCheck NodePort {hc}: " \
           "provided port is already allocated" in r.stderr
    r = create(kubectl, ns, svc("lb2", type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=29000))
    assert "failed to allocate requested HealthCheck NodePort 29000: provided port is not in the valid range. " \
           "The range of valid ports is 30000-32767" in r.stderr, r.stderr
    np = get_spec(kubectl, ns, "lb")["ports"][0]["nodePort"]
    refused(create(kubectl, ns, svc("np", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": hc}])),
            f"spec.ports[0].nodePort: Invalid value: {hc}: provided port is already allocated")
    refused(patch(kubectl, ns, "lb", {"spec": {"healthCheckNodePort": np}}),
            f"spec.healthCheckNodePort: Invalid value: {np}: cannot change healthCheckNodePort on loadBalancer "
            "service with externalTraffic=Local during update")
    refused(create(kubectl, ns, svc("np2", type="NodePort", healthCheckNodePort=_port())),
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
    # Local -> Cluster drops and releases it; back to Local allocates one again
    assert patch(kubectl, ns, "lb", {"spec": {"externalTrafficPolicy": "Cluster"}}).returncode == 0
    assert "healthCheckNodePort" not in get_spec(kubectl, ns, "lb")
    assert create(kubectl, ns, svc("lb2", type="LoadBalancer", externalTrafficPolicy="Local",
                                   healthCheckNodePort=hc)).returncode == 0
    assert get_spec(kubectl, ns, "lb2")["healthCheckNodePort"] == hc
    assert patch(kubectl, ns, "lb", {"spec": {"externalTrafficPolicy": "Local"}}).returncode == 0
    hc2 = get_spec(kubectl, ns, "lb")["healthCheckNodePort"]
    assert 30000 <= hc2 <= 32767 and hc2 != hc
    # a dry run shows kube-apiserver's placeholder ports and takes nothing
    dry = json.loads(kubectl("create", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-", input=yaml.safe_dump(
        svc("dry", type="LoadBalancer", externalTrafficPolicy="Local"))).stdout)["spec"]
    assert (dry["ports"][0]["nodePort"], dry["healthCheckNodePort"]) == (32769, 32770)
    kubectl("delete", "svc", "lb2", "-n", ns)  # deletion gives it back
    assert create(kubectl, ns, svc("np", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": hc}])
                  ).returncode == 0


def test_a_refused_update_gives_back_what_it_took(kubectl, ns):
    """kube-apiserver's allocation transaction: an update that takes node ports (or frees a
    cluster IP) and then fails validation leaves the allocations as they were, at once."""
    assert create(kubectl, ns, svc("web")).returncode == 0
    port, hc = _port(), _port()
    bad = {"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": hc,
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": port}],
                    "sessionAffinity": "Sometimes"}}
    refused(patch(kubectl, ns, "web", bad), 'spec.sessionAffinity: Unsupported value: "Sometimes"')
    assert "nodePort" not in get_spec(kubectl, ns, "web")["ports"][0]
    # both ports are free again, without waiting for the repair loop
    assert create(kubectl, ns, svc("taker", type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=hc,
                                   ports=[{"name": "http", "port": 80, "nodePort": port}])).returncode == 0
    # ClusterIP -> ExternalName with a bad externalName keeps the cluster IP held
    ip = get_spec(kubectl, ns, "web")["clusterIP"]
    refused(patch(kubectl, ns, "web", {"spec": {"type": "ExternalName", "externalName": "-bad-"}}),
            'spec.externalName: Invalid value: "-bad-"')
    assert get_spec(kubectl, ns, "web")["clusterIP"] == ip
    refused(create(kubectl, ns, svc("thief", clusterIP=ip)), f"failed to allocate IP {ip}: provided IP is already allocated")


def test_cluster_ip_none_on_a_node_port_service(kubectl, ns):
    assert create(kubectl, ns, svc("np", type="NodePort")).returncode == 0
    r = patch(kubectl, ns, "np", {"spec": {"clusterIP": "None"}})
    refused(r, 'spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set',
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services")
    assert r.stderr.index("may not change once set") < r.stderr.index("may not be set to 'None'")


def test_server_side_apply_follows_the_traffic_policy(kubectl, ns):
    """``kubectl apply --server-side`` goes through the same rules: Local allocates the health
    check port, Cluster drops and releases it, a changed cluster IP is refused."""
    def apply(**spec):  # type: ignore[no-untyped-def]
        obj = svc("s", **spec)
        obj["metadata"]["namespace"] = ns
        return kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(obj), check=False)

    assert apply(type="LoadBalancer", externalTrafficPolicy="Local").returncode == 0
    first = get_spec(kubectl, ns, "s")
    assert 30000 <= first["healthCheckNodePort"] <= 32767
    r = apply(type="LoadBalancer", externalTrafficPolicy="Cluster")
    assert r.returncode == 0, r.stderr
    assert "healthCheckNodePort" not in get_spec(kubectl, ns, "s")
    assert create(kubectl, ns, svc("taker", type="LoadBalancer", externalTrafficPolicy="Local",
                                   healthCheckNodePort=first["healthCheckNodePort"])).returncode == 0
    refused(apply(type="LoadBalancer", clusterIP="10.43.250.250"),
            'spec.clusterIPs[0]: Invalid value: []string{"10.43.250.250"}: may not change once set')
    assert get_spec(kubectl, ns, "s")["clusterIP"] == first["clusterIP"]
