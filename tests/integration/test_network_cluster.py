"""Must-show (issue 13): the cluster network with real runc pods, the real kubectl, real CNI
plugins and nftables — two agents on this machine, the node IPAM controller, the EndpointSlice
controller, each agent's service proxy, the cluster DNS (its upstream a dnsmasq on loopback).

Pod to pod across nodes by IP and by name; DNS for Services, headless Services, StatefulSet
pods and upstream names; random / round-robin / ClientIP-affinity balancing over 300 requests;
readiness taking a pod out of the rotation and back; a Service without a selector routed through
its hand-written Endpoints (EndpointSliceMirroring); NodePort, LoadBalancer and hostPort on
127.0.0.1; the apiserver through the ``kubernetes`` Service; NetworkPolicy deny and allow;
Service deletion removing every rule; the proxy surviving an object it cannot program; a
second instance side by side. The module fixture checks the hosts' leftovers at the end."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from controlplane.etcd_process import free_port
from controlplane.network import addressing as A

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.slow, pytest.mark.timeout(600)]

HTTPD = "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"


def deployment(name: str, replicas: int, node: str | None = None, labels: dict | None = None,
               readiness: bool = False, ports: list | None = None) -> dict:
    labels = labels or {"app": name}
    c = {"name": "web", "image": "busybox", "command": ["sh", "-c", HTTPD],
         "ports": ports or [{"name": "http", "containerPort": 8080}]}
    if readiness:
        c["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    spec = {"containers": [c], "terminationGracePeriodSeconds": 1}
    if node:
        spec["nodeSelector"] = {"test-node": node}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def client_pod(name: str = "client", node: str = "a", labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"role": "client"}},
            "spec": {"nodeSelector": {"test-node": node}, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def service(name: str, selector: dict | None, port: int = 80, target=8080, typ: str = "ClusterIP",
            ann: dict | None = None, **spec) -> dict:
    s = {"type": typ, "ports": [{"name": "http", "port": port, "targetPort": target, "protocol": "TCP"}], **spec}
    if selector is not None:
        s["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "annotations": ann or {}}, "spec": s}


def ip_of(c, ns: str, kind: str, name: str) -> str:
    obj = c.get(kind, name, ns)
    return obj["spec"]["clusterIP"] if kind in ("svc", "service") else obj["status"]["podIP"]


def fetch_in(c, ns: str, url: str, pod: str = "client", timeout: float = 20) -> str:
    """One request from a pod, retried until it answers (the slice and the rules follow the
    pods' readiness by a few hundred milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.exec(ns, pod, f"timeout 5 wget -q -O - {url}", check=False)
        if r.returncode == 0:
            return r.stdout.strip()
        assert time.monotonic() < deadline, f"{url} from {pod}: {r.stdout}{r.stderr}"
        time.sleep(0.3)


def requests(c, ns: str, url: str, n: int) -> list[str]:
    out = c.exec(ns, "client", f"for i in $(seq {n}); do timeout 5 wget -q -O - {url} || echo FAIL; done",
                 timeout=180).stdout.split()
    assert len(out) == n, out[:10]
    return out


@pytest.fixture(scope="module")
def ns(net_cluster):
    ns = net_cluster.namespace()
    net_cluster.apply([deployment("web", 3, readiness=True), client_pod()], ns)
    net_cluster.wait_ready(ns, "app=web", 3)
    net_cluster.wait_ready(ns, "role=client", 1)
    return ns


def test_pod_to_pod_across_nodes_and_cluster_dns(net_cluster, ns):
    c = net_cluster
    c.apply([deployment("far", 1, node="b", labels={"app": "far"}),
             service("far", {"app": "far"}),
             service("far-headless", {"app": "far"}, clusterIP="None"),
             {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
              "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                       "template": {"metadata": {"labels": {"app": "db"}},
                                    "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                        {"name": "db", "image": "busybox", "command": ["sh", "-c", HTTPD],
                                         "ports": [{"name": "http", "containerPort": 8080}]}]}}}},
             service("db", {"app": "db"}, clusterIP="None")], ns)
    far = c.wait_ready(ns, "app=far", 1)[0]
    dbs = c.wait_ready(ns, "app=db", 2)
    client = c.get("pod", "client", ns)
    assert far["spec"]["nodeName"] != client["spec"]["nodeName"]
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    assert len(set(cidrs.values())) == 2 and all(v.startswith(c.net.cluster_cidr.rsplit(".", 2)[0]) for v in cidrs.values())
    far_ip = far["status"]["podIP"]
    assert far["status"]["podIPs"] == [{"ip": far_ip}]
    # by pod IP, across the two agents
    assert fetch_in(c, ns, f"http://{far_ip}:8080/") == far["metadata"]["name"]
    # the host reaches every pod IP
    with urllib.request.urlopen(f"http://{far_ip}:8080/", timeout=5) as r:
        assert r.read().decode().strip() == far["metadata"]["name"]
    # by name, through the cluster DNS and the Service
    assert fetch_in(c, ns, f"http://far.{ns}.svc.cluster.local/") == far["metadata"]["name"]
    ns_out = c.exec(ns, "client", "nslookup -type=a far", check=False).stdout
    assert ip_of(c, ns, "svc", "far") in ns_out, ns_out
    resolv = c.exec(ns, "client", "cat /etc/resolv.conf").stdout
    assert f"nameserver {c.net.dns_ip}" in resolv and f"search {ns}.svc.cluster.local svc.cluster.local" in resolv
    # a headless Service lists every ready pod; StatefulSet pods resolve as db-0.db
    headless = c.exec(ns, "client", "nslookup -type=a db", check=False).stdout
    assert all(p["status"]["podIP"] in headless for p in dbs), headless
    # busybox nslookup applies search domains to dotless names only: the FQDN here, and the
    # short name "db-0.db" through the C resolver (ndots:5 search list) with wget
    one = c.exec(ns, "client", f"nslookup -type=a db-0.db.{ns}.svc.cluster.local", check=False).stdout
    db0 = next(p for p in dbs if p["metadata"]["name"] == "db-0")
    assert db0["status"]["podIP"] in one, one
    assert fetch_in(c, ns, "http://db-0.db:8080/") == "db-0"
    assert fetch_in(c, ns, "http://db-1.db:8080/") == "db-1"
    assert c.exec(ns, "db-0", "hostname -f 2>/dev/null || cat /etc/hosts").stdout.count(f"db-0.db.{ns}.svc.cluster.local") >= 1
    # other names go to the upstream (a dnsmasq on loopback), never the host's resolver
    up = c.exec(ns, "client", "nslookup -type=a upstream.test", check=False).stdout
    assert c.upstream_ip in up, up
    # Service environment variables
    env = c.exec(ns, "client", "env").stdout
    _ = env  # the client started before "far": kubelet semantics, no variables for later Services
    c.apply(client_pod("envcheck"), ns)
    c.wait_ready(ns, "role=client", 2)
    env = c.exec(ns, "envcheck", "env").stdout
    assert f"FAR_SERVICE_HOST={ip_of(c, ns, 'svc', 'far')}" in env and "FAR_SERVICE_PORT_HTTP=80" in env
    assert "KUBERNETES_SERVICE_HOST=" in env
    c.kubectl("delete", "pod", "envcheck", "-n", ns, "--wait=false")


def test_random_round_robin_and_affinity(net_cluster, ns):
    c = net_cluster
    c.apply([service("rnd", {"app": "web"}),
             service("rr", {"app": "web"}, ann={"networking.controlplane.io/load-balancing": "round-robin"}),
             service("sticky", {"app": "web"}, sessionAffinity="ClientIP")], ns)
    names = {p["metadata"]["name"] for p in c.wait_ready(ns, "app=web", 3)}
    for svc in ("rnd", "rr", "sticky"):
        fetch_in(c, ns, f"http://{ip_of(c, ns, 'svc', svc)}/")  # programmed everywhere
    rnd = Counter(requests(c, ns, f"http://{ip_of(c, ns, 'svc', 'rnd')}/", 300))
    assert set(rnd) == names and all(60 <= v <= 140 for v in rnd.values()), rnd  # ~100 each (sd ~8)
    seq = requests(c, ns, f"http://{ip_of(c, ns, 'svc', 'rr')}/", 300)
    assert set(seq) == names and all(seq[i] == seq[i % 3] for i in range(300)), seq[:9]  # strict rotation
    assert Counter(seq) == {n: 100 for n in names}
    # hairpin: a backend reaching its own Service lands on itself in its turn too
    me = sorted(names)[0]
    mine = set(c.exec(ns, me, f"for i in 1 2 3; do timeout 5 wget -q -O - http://{ip_of(c, ns, 'svc', 'rr')}/; done").stdout.split())
    assert mine == names, mine
    sticky = Counter(requests(c, ns, f"http://{ip_of(c, ns, 'svc', 'sticky')}/", 300))
    assert len(sticky) == 1 and sum(sticky.values()) == 300, sticky


def test_readiness_takes_a_pod_out_and_back(net_cluster, ns):
    c = net_cluster
    c.apply(service("rr2", {"app": "web"}, ann={"networking.controlplane.io/load-balancing": "round-robin"}), ns)
    pods = c.wait_ready(ns, "app=web", 3)
    url = f"http://{ip_of(c, ns, 'svc', 'rr2')}/"
    victim = pods[0]["metadata"]["name"]
    fetch_in(c, ns, url)
    assert victim in requests(c, ns, url, 6)
    c.exec(ns, victim, "rm /tmp/ready")
    t0 = time.monotonic()
    while victim in requests(c, ns, url, 6):
        assert time.monotonic() - t0 < 15, "the not-ready pod stayed in the rotation"
    left_after = time.monotonic() - t0
    assert set(requests(c, ns, url, 30)) == {p["metadata"]["name"] for p in pods[1:]}
    c.exec(ns, victim, "touch /tmp/ready")
    t0 = time.monotonic()
    while victim not in requests(c, ns, url, 6):
        assert time.monotonic() - t0 < 15, "the pod did not come back"
    assert left_after < 15


def test_selectorless_service_with_manual_endpoints(net_cluster, ns):
    """A Service without a selector and an Endpoints written by hand (pointing at one of this
    test's pods, as one would at a database outside the cluster): the EndpointSliceMirroring
    controller mirrors it into a slice, so the proxy and the DNS route it; changing the
    Endpoints moves the traffic, deleting it stops it."""
    c = net_cluster
    pods = sorted(c.wait_ready(ns, "app=web", 3), key=lambda p: p["metadata"]["name"])

    def manual(pod: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                "subsets": [{"addresses": [{"ip": pod["status"]["podIP"]}],
                             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}
    c.apply([service("ext", None), manual(pods[0])], ns)
    url = f"http://{ip_of(c, ns, 'svc', 'ext')}/"
    assert fetch_in(c, ns, url) == pods[0]["metadata"]["name"]
    assert fetch_in(c, ns, f"http://ext.{ns}.svc.cluster.local/") == pods[0]["metadata"]["name"]
    rows = [r.split() for r in c.kubectl("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=ext",
                                         "-L", "endpointslice.kubernetes.io/managed-by").stdout.splitlines()[1:]]
    assert [(r[1], r[2], r[3], r[-1]) for r in rows] == [
        ("IPv4", "8080", pods[0]["status"]["podIP"], "endpointslicemirroring-controller.k8s.io")], rows
    # the Endpoints now names another pod: the traffic follows
    c.apply(manual(pods[1]), ns)
    deadline = time.monotonic() + 20
    while set(requests(c, ns, url, 3)) != {pods[1]["metadata"]["name"]}:
        assert time.monotonic() < deadline, "the traffic did not follow the Endpoints"
    # deleting the Endpoints removes the slice: the Service has no endpoints (refused)
    c.kubectl("delete", "endpoints", "ext", "-n", ns)
    deadline = time.monotonic() + 20
    while c.exec(ns, "client", f"timeout 5 wget -q -O - {url}", check=False).returncode == 0:
        assert time.monotonic() < deadline, "the Service still answered without its Endpoints"
        time.sleep(0.3)
    assert not c.kubectl("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=ext",
                         "-o", "name").stdout.strip()


def test_nodeport_loadbalancer_hostport_and_the_apiserver(net_cluster, ns):
    c = net_cluster
    lb_port = free_port()
    host_port = free_port()
    c.apply([service("np", {"app": "web"}, typ="NodePort"),
             service("lb", {"app": "web"}, port=lb_port, typ="LoadBalancer"),
             deployment("hp", 1, node="a", labels={"app": "hp"},
                        ports=[{"name": "http", "containerPort": 8080, "hostPort": host_port}])], ns)
    names = {p["metadata"]["name"] for p in c.wait_ready(ns, "app=web", 3)}
    hp = c.wait_ready(ns, "app=hp", 1)[0]
    node_port = c.get("svc", "np", ns)["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767

    def fetch(url: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    return r.read().decode().strip()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    assert fetch(f"http://127.0.0.1:{node_port}/") in names
    deadline = time.monotonic() + 30
    while not (((c.get("svc", "lb", ns).get("status") or {}).get("loadBalancer") or {}).get("ingress")):
        assert time.monotonic() < deadline, "no LoadBalancer ingress"
        time.sleep(0.3)
    assert c.get("svc", "lb", ns)["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1"
    assert fetch(f"http://127.0.0.1:{lb_port}/") in names
    assert fetch(f"http://127.0.0.1:{host_port}/") == hp["metadata"]["name"]
    # a pod reaches the apiserver through the kubernetes Service over TLS, its certificate
    # verified for kubernetes.default.svc: the name resolves in the pod; the TLS client runs in
    # the pod's network namespace (Python's: busybox's built-in TLS offers no
    # signature_algorithms, which OpenSSL 3 servers refuse — docs/networking.md)
    kip = c.get("svc", "kubernetes", "default")["spec"]["clusterIP"]
    assert kip in c.exec(ns, "client", "nslookup kubernetes.default.svc.cluster.local").stdout
    client = c.get("pod", "client", ns)
    netns = A.pod_netns_name(client["metadata"]["uid"])
    script = ("import socket, ssl, sys\n"
              "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
              "s = ctx.wrap_socket(socket.create_connection((sys.argv[2], 443), timeout=5),"
              " server_hostname='kubernetes.default.svc')\n"
              "s.sendall(b'GET /version HTTP/1.1\\r\\nHost: kubernetes.default.svc\\r\\nConnection: close\\r\\n\\r\\n')\n"
              "out = b''\n"
              "while chunk := s.recv(65536):\n"
              "    out += chunk\n"
              "print(out.decode())\n")
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", script, str(c.api.pki.ca_file), kip],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            break
        assert time.monotonic() < deadline, r.stderr[-1000:]
        time.sleep(0.3)
    assert r.stdout.startswith("HTTP/1.1 200") and '"gitVersion"' in r.stdout, r.stdout


def wait_for(check, what: str, timeout: float = 20):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (out := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return out


def test_a_load_balancer_port_held_by_an_older_service_stays_pending(net_cluster, ns):
    """k3s's ServiceLB opens a port once: the younger Service stays <pending> (its cluster IP
    works), with a Warning; it gets the port when the older one goes."""
    c = net_cluster
    port = free_port()
    c.apply(service("lb-first", {"app": "web"}, port=port, typ="LoadBalancer"), ns)

    def ingress(name):  # type: ignore[no-untyped-def]
        return ((c.get("svc", name, ns).get("status") or {}).get("loadBalancer") or {}).get("ingress")

    wait_for(lambda: ingress("lb-first"), "no ingress for the first Service")
    c.apply(service("lb-second", {"app": "web"}, port=port, typ="LoadBalancer"), ns)
    ev = wait_for(lambda: c.events(ns, "lb-second", "PortInUse"), "no PortInUse Event")
    assert f"port {port}/TCP is already used by LoadBalancer Service {ns}/lb-first" in ev[0]["message"]
    assert not ingress("lb-second")
    names = {p["metadata"]["name"] for p in c.pods(ns, "app=web")}
    assert fetch_in(c, ns, f"http://{ip_of(c, ns, 'svc', 'lb-second')}:{port}/") in names
    c.kubectl("delete", "svc", "lb-first", "-n", ns)
    assert wait_for(lambda: ingress("lb-second"), "the freed port was not given")[0]["ip"] == "127.0.0.1"
    c.kubectl("delete", "svc", "lb-second", "-n", ns)


def test_external_name_to_a_cluster_service_and_endpoint_ptr(net_cluster, ns):
    """A pod reaches an ExternalName alias of an in-cluster Service (the DNS follows the CNAME, as
    CoreDNS does; a stub resolver would not), and an endpoint IP without a hostname has a PTR."""
    c = net_cluster
    c.apply([service("aliased", {"app": "web"}),
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias"},
              "spec": {"type": "ExternalName", "externalName": f"aliased.{ns}.svc.cluster.local"}}], ns)
    pods = c.pods(ns, "app=web")
    assert fetch_in(c, ns, "http://alias/") in {p["metadata"]["name"] for p in pods}
    ip = pods[0]["status"]["podIP"]
    arpa = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    out = c.exec(ns, "client", f"nslookup -type=ptr {arpa}").stdout
    assert f"{ip.replace('.', '-')}.aliased.{ns}.svc.cluster.local" in out, out
    c.kubectl("delete", "svc", "alias", "aliased", "-n", ns)


def test_health_check_node_port_and_the_dns_zone_records(net_cluster, ns):
    """kube-proxy's health check: each node's proxy answers on a LoadBalancer Service's
    healthCheckNodePort (externalTrafficPolicy Local) with its own ready endpoints, 200 or 503,
    in the node's namespace and on the host's 127.0.0.1; a policy back to Cluster closes it.
    The cluster DNS answers the zone's NS, ns.dns and dns-version records as CoreDNS does."""
    c = net_cluster
    c.apply([service("local", {"app": "web"}, port=free_port(), typ="LoadBalancer", externalTrafficPolicy="Local"),
             service("nobody", {"app": "nobody"}, port=free_port(), typ="LoadBalancer",
                     externalTrafficPolicy="Local")], ns)
    hc = c.get("svc", "local", ns)["spec"]["healthCheckNodePort"]
    hc_nobody = c.get("svc", "nobody", ns)["spec"]["healthCheckNodePort"]
    assert 30000 <= hc <= 32767 and hc != hc_nobody
    nodes = {n["metadata"]["name"]: str(A.NodeAddresses.parse(n["spec"]["podCIDR"]).node_link_address)
             for n in json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"]}

    def health(addr: str, port: int):  # type: ignore[no-untyped-def]
        try:
            with urllib.request.urlopen(f"http://{addr}:{port}/healthz", timeout=3) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return None

    def expected(name: str, count: int) -> tuple[int, dict]:
        return (200 if count else 503), {"service": {"namespace": ns, "name": name}, "localEndpoints": count,
                                         "serviceProxyHealthy": True}

    def per_node() -> Counter:
        return Counter(p["spec"]["nodeName"] for p in c.pods(ns, "app=web") if any(
            x.get("type") == "Ready" and x.get("status") == "True" for x in (p.get("status") or {}).get("conditions") or []))

    for node, addr in nodes.items():
        wait_for(lambda: health(addr, hc) == expected("local", per_node()[node]), f"health check of {node}")
        wait_for(lambda: health(addr, hc_nobody) == expected("nobody", 0), f"empty health check of {node}")
    on_host = wait_for(lambda: health("127.0.0.1", hc), "no health check on 127.0.0.1")
    assert on_host in [expected("local", n) for n in per_node().values()] + [expected("local", 0)], on_host
    c.kubectl("patch", "svc", "local", "-n", ns, "--type=merge", "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}')
    assert "healthCheckNodePort" not in c.get("svc", "local", ns)["spec"]
    for addr in nodes.values():
        wait_for(lambda: health(addr, hc) is None, "the health check was not closed")
    c.kubectl("delete", "svc", "local", "nobody", "-n", ns)

    from dnslib import DNSRecord

    port = int((c.work / "dns-port").read_text())

    def ask(name: str, qtype: str) -> DNSRecord:
        return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, timeout=3))

    zone = ask("cluster.local", "NS")
    assert [(str(r.rname), str(r.rdata)) for r in zone.rr] == [("cluster.local.", "ns.dns.cluster.local.")]
    assert [str(r.rdata) for r in zone.ar] == [c.net.dns_ip]
    assert [str(r.rdata) for r in ask("ns.dns.cluster.local", "A").rr] == [c.net.dns_ip]
    assert [str(r.rdata) for r in ask("dns-version.cluster.local", "TXT").rr] == ['"1.1.0"']
    out = c.exec(ns, "client", "nslookup -type=txt dns-version.cluster.local", check=False).stdout
    assert "1.1.0" in out, out


def test_ingress_controller_routes_hosts_paths_and_tls(net_cluster, ns, tmp_path):
    """The ingress controller (as ``up`` runs it, under its own identity) on free loopback ports:
    Ingress hosts and paths to Services' cluster IPs, 404 and 503 answers, the status it writes,
    HTTPS with the Secret a ``tls`` entry names (chosen by SNI)."""
    import base64
    import datetime
    import http.client
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.fixtures.scheduler import ProcessRunner

    c = net_cluster
    cls = f"test-{uuid.uuid4().hex[:6]}"
    work = tmp_path / "ingress"
    ing = ProcessRunner(work, ["ingress-controller", "--kubeconfig", str(c.api.component_kubeconfig("ingress-controller")),
                               "--data-dir", str(work), "--http-port", "0", "--https-port", "0",
                               "--ingress-class", cls, "--no-default-class"], "ingress-controller").start()
    try:
        deadline = time.monotonic() + 30
        while not (work / "ingress-address").exists():
            assert time.monotonic() < deadline and ing.proc.poll() is None, ing.log_tail()
            time.sleep(0.2)
        http_url, https_url = (work / "ingress-address").read_text().split()
        assert c.get("ingressclass", cls)["spec"]["controller"] == "controlplane.io/ingress-controller"
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.test")]), critical=False)
                .sign(key, hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        (tmp_path / "ca.pem").write_bytes(pem)
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "secure-tls"}, "type": "kubernetes.io/tls",
                  "data": {"tls.crt": base64.b64encode(pem).decode(),
                           "tls.key": base64.b64encode(key.private_bytes(
                               serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())).decode()}}

        def backend(svc, port):
            return {"service": {"name": svc, "port": {"number": port}}}
        ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site"},
                   "spec": {"ingressClassName": cls,
                            "tls": [{"hosts": ["secure.test"], "secretName": "secure-tls"}],
                            "rules": [{"host": "web.test", "http": {"paths": [
                                          {"path": "/", "pathType": "Prefix", "backend": backend("web", 80)},
                                          {"path": "/missing", "pathType": "Prefix", "backend": backend("nosuch", 80)}]}},
                                      {"host": "secure.test", "http": {"paths": [
                                          {"path": "/", "pathType": "Prefix", "backend": backend("web", 80)}]}}]}}
        c.apply([service("web", {"app": "web"}), secret, ingress], ns)
        names = {p["metadata"]["name"] for p in c.wait_ready(ns, "app=web", 3)}

        def get(url, host, timeout=20.0, context=None):
            req = urllib.request.Request(url, headers={"Host": host})
            end = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(req, timeout=3, context=context) as r:
                        return r.status, r.read().decode().strip()
                except urllib.error.HTTPError as e:
                    if e.code not in (404, 503) or time.monotonic() > end or host != "web.test" or "missing" in url:
                        return e.code, e.read().decode().strip()
                except OSError:
                    if time.monotonic() > end:
                        raise
                time.sleep(0.3)
        status, body = get(http_url + "/", "web.test")
        assert status == 200 and body in names, body
        assert get(http_url + "/", "other.test")[0] == 404            # no rule, no default backend
        code, body = get(http_url + "/missing", "web.test")
        assert code == 503 and "nosuch" in body, body                  # the Service does not exist
        deadline = time.monotonic() + 20
        while (((c.get("ingress", "site", ns).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []) \
                != [{"ip": "127.0.0.1"}]:
            assert time.monotonic() < deadline, c.get("ingress", "site", ns).get("status")
            time.sleep(0.3)
        # HTTPS: the certificate of secure.test's Secret, chosen by SNI and verified against it
        port = int(https_url.rsplit(":", 1)[1])
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPSConnection("secure.test", port, context=ctx, timeout=5)
                conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                            server_hostname="secure.test")
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read().decode().strip()
                conn.close()
                break
            except (ssl.SSLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert r.status == 200 and body in names
    finally:
        ing.stop()
        c.kubectl("delete", "ingressclass", cls, check=False)


def test_network_policy_default_deny_then_allow_by_label(net_cluster, ns):
    c = net_cluster
    c.apply([deployment("guarded", 1, node="b", labels={"app": "guarded"}),
             client_pod("intruder", node="a", labels={"role": "other"})], ns)
    target = c.wait_ready(ns, "app=guarded", 1)[0]["status"]["podIP"]
    c.wait_ready(ns, "role=other", 1)
    url = f"http://{target}:8080/"
    fetch_in(c, ns, url)
    c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
             "spec": {"podSelector": {"matchLabels": {"app": "guarded"}}, "policyTypes": ["Ingress"]}}, ns)
    deadline = time.monotonic() + 15
    while c.exec(ns, "client", f"timeout 2 wget -q -O - {url}", check=False).returncode == 0:
        assert time.monotonic() < deadline, "default deny did not block"
    c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-clients"},
             "spec": {"podSelector": {"matchLabels": {"app": "guarded"}},
                      "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                                   "ports": [{"port": "http"}]}]}}, ns)
    deadline = time.monotonic() + 15
    while c.exec(ns, "client", f"timeout 2 wget -q -O - {url}", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the allow rule did not open"
    assert c.exec(ns, "intruder", f"timeout 2 wget -q -O - {url}", check=False).returncode != 0
    c.kubectl("delete", "networkpolicy", "deny", "allow-clients", "-n", ns)


def test_deleting_a_service_removes_its_rules_and_bad_objects_are_skipped(net_cluster, ns):
    c = net_cluster
    c.apply(service("gone", {"app": "web"}), ns)
    agent = c.agents[0]
    marker = f"{ns}/gone/"
    deadline = time.monotonic() + 15
    while marker not in c.proxy_table(agent):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    c.kubectl("delete", "svc", "gone", "-n", ns)
    deadline = time.monotonic() + 15
    while marker in c.proxy_table(agent):
        assert time.monotonic() < deadline, "rules of a deleted Service stayed"
        time.sleep(0.2)
    # a selector-less Service with a manual IPv6 slice: the proxy logs, emits an Event, goes on
    c.apply([service("v6", None),
             {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "v6-manual", "labels": {"kubernetes.io/service-name": "v6"}},
              "addressType": "IPv6", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
              "endpoints": [{"addresses": ["fd00::1"]}]},
             service("after", {"app": "web"})], ns)
    deadline = time.monotonic() + 20
    while not c.events(ns, "v6", "FailedToProgramService"):
        assert time.monotonic() < deadline, "no Event for the unprogrammable Service"
        time.sleep(0.3)
    names = {p["metadata"]["name"] for p in c.pods(ns, "app=web")}
    deadline = time.monotonic() + 15
    while c.exec(ns, "client", f"timeout 2 wget -q -O - http://{ip_of(c, ns, 'svc', 'after')}/", check=False).stdout.strip() not in names:
        assert time.monotonic() < deadline, "a Service created after the bad one was not programmed"
    assert all(a.alive() for a in c.agents)


def test_a_second_instance_side_by_side(net_cluster, ns, tmp_path, local_registry):
    """Another control plane on this machine (its own CIDRs, data dir, names): both serve their
    Services at once, and the second one leaves nothing behind."""
    from tests.fixtures.network import start_net_cluster, stop_net_cluster

    other = start_net_cluster(tmp_path / "second", local_registry.url, n_agents=1, scheduler=True, dns=False)
    try:
        ns2 = other.namespace()
        other.apply([deployment("web", 2, labels={"app": "web"}), client_pod(node="a"), service("web", {"app": "web"})], ns2)
        names2 = {p["metadata"]["name"] for p in other.wait_ready(ns2, "app=web", 2)}
        other.wait_ready(ns2, "role=client", 1)
        assert A.ClusterNetworks.parse(other.net.cluster_cidr, other.net.service_cidr).cluster_cidr != \
            A.ClusterNetworks.parse(net_cluster.net.cluster_cidr, net_cluster.net.service_cidr).cluster_cidr
        ip2 = ip_of(other, ns2, "svc", "web")
        deadline = time.monotonic() + 20
        while set(requests(other, ns2, f"http://{ip2}/", 6)) - {"FAIL"} != names2:
            assert time.monotonic() < deadline
        names1 = {p["metadata"]["name"] for p in net_cluster.pods(ns, "app=web")}
        net_cluster.apply(service("first", {"app": "web"}), ns)
        deadline = time.monotonic() + 15
        while "FAIL" in requests(net_cluster, ns, f"http://{ip_of(net_cluster, ns, 'svc', 'first')}/", 3):
            assert time.monotonic() < deadline
        c1 = Counter(requests(net_cluster, ns, f"http://{ip_of(net_cluster, ns, 'svc', 'first')}/", 30))
        assert set(c1) <= names1 and sum(c1.values()) == 30
    finally:
        left = stop_net_cluster(other)
    assert not left, left
