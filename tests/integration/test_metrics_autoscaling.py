"""Resource metrics and autoscaling on a private cluster with a real runc node agent, the
metrics component behind its APIService and a controller-manager running the HPA controller
every 2 s (metrics resolution 3 s), driven with the real kubectl:

- a busybox pod spinning under a 500m CPU limit: ``kubectl top pod`` shows what its cgroup
  used, 450-550m after 30 s when the pod ran against its quota (a busy machine may starve it:
  then the reading must still match the cgroup); its memory agrees with the cgroup within
  5 %; ``kubectl top node`` is non-zero, includes the pod and is within capacity, its memory
  below capacity; the agent's metrics through
  ``nodes/NAME/proxy``;
- ``kubectl autoscale deploy burn --cpu-percent=50 --min=1 --max=4``: the first rescale is
  the number Kubernetes' formula gives for the utilization it reports, and back to 1 once the
  load stops (scale-down window 0 s through ``behavior``); ``kubectl describe hpa`` shows the
  conditions and events;
- a memory (AverageValue) target scales; an HPA on a custom resource with a scale subresource
  scales it;
- bad input: a missing target, a kind without a scale subresource, an unknown kind, a metric
  without requests, min > max: conditions and Events say so and nothing is scaled.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from controlplane.client.rest import RestClient
from controlplane.etcd_process import free_port
from controlplane.metrics.register import SERVICE_DNS, register
from controlplane.runtime import cgroups
from tests.fixtures.agent import HAVE_RUNC, AgentProcess, leftovers
from tests.fixtures.apiserver import _start, make_kubectl
from tests.fixtures.controllers import ControllerManagerProcess
from tests.fixtures.network import allocate_test_net
from tests.fixtures.scheduler import ProcessRunner

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(600)]


class Cluster:
    def __init__(self, work: Path, api, kubectl, node: str) -> None:
        self.work, self.api, self.kubectl, self.node = work, api, kubectl, node

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def raw(self, path: str) -> str:
        return self.kubectl("get", "--raw", path).stdout

    def apply(self, manifest: str, ns: str) -> None:
        self.kubectl("apply", "-n", ns, "-f", "-", input=manifest)

    def wait(self, what: str, fn, timeout: float = 90.0, interval: float = 0.25):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last={last!r}")

    def events(self, ns: str, name: str) -> list[dict]:
        return self.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]

    def running(self, ns: str, selector: str) -> list[dict]:
        return [p for p in self.json("get", "pods", "-n", ns, "-l", selector)["items"]
                if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, local_registry):
    if not HAVE_RUNC:
        pytest.fail("needs root, runc and busybox-static")
    work = tmp_path_factory.mktemp("metrics")
    net = allocate_test_net()  # never the default CIDRs: other instances share this machine
    api = _start(work / "apiserver", ["--compaction-interval", "0", "--service-cluster-ip-range", net.service_cidr],
                 service_ip=str(ipaddress.ip_network(net.service_cidr).network_address + 1))
    procs: list = []
    agent = None
    try:
        node = f"m-{uuid.uuid4().hex[:6]}"
        agent = AgentProcess(work / "agent", api, node, local_registry.url, net=net)
        agent.start()
        # the metrics-server as `up` runs it: its own identity, a serving certificate of the
        # cluster CA, the front-proxy CA; the APIService registered with the admin's credentials
        pki, ms_port = api.pki, free_port()
        pki.serving("metrics-server-serving", "metrics-server", ["127.0.0.1", "localhost", SERVICE_DNS])
        ms = ProcessRunner(work, [
            "metrics-server", "--kubeconfig", str(api.component_kubeconfig("metrics-server")),
            "--metric-resolution", "3s", "--data-dir", str(work), "--secure-port", str(ms_port),
            "--tls-cert-file", str(pki.crt("metrics-server-serving")),
            "--tls-private-key-file", str(pki.key("metrics-server-serving")),
            "--requestheader-client-ca-file", str(pki.crt("front-proxy-ca")),
            "--requestheader-allowed-names", "front-proxy-client", "--client-ca-file", str(pki.ca_file),
            "--kubelet-certificate-authority", str(pki.ca_file),
            "--kubelet-client-certificate", str(pki.crt("metrics-server")),
            "--kubelet-client-key", str(pki.key("metrics-server"))], "metrics-server").start()
        procs.append(ms)
        asyncio.run(_register(api, ms_port))
        cm = ControllerManagerProcess(work / "cm", api.component_kubeconfig("controller-manager"), [
            "--cluster-cidr", net.cluster_cidr, "--root-ca-file", str(pki.ca_file),
            "--leader-elect=false", "--horizontal-pod-autoscaler-sync-period", "2s"]).start()
        procs.append(cm)
        c = Cluster(work, api, make_kubectl(api.kubeconfig, work / "kubectl-cache"), node)
        assert cm.wait_log("caches synced", 60), cm.log_tail()
        assert "horizontalpodautoscaling" in cm.log_path.read_text(), cm.log_tail()

        def ready():
            assert agent.alive(), agent.log_tail()
            r = c.kubectl("get", "node", node, "-o", "json", check=False)
            conds = {x["type"]: x["status"] for x in json.loads(r.stdout).get("status", {}).get("conditions", [])} \
                if r.returncode == 0 else {}
            return conds.get("Ready") == "True"
        c.wait(f"node {node} Ready", ready, 60)

        def available():
            r = c.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json", check=False)
            if r.returncode != 0:
                return False
            return any(x["type"] == "Available" and x["status"] == "True"
                       for x in json.loads(r.stdout).get("status", {}).get("conditions", []))
        c.wait("the Metrics API available", available, 60)
        yield c
    finally:
        problems = []
        if agent is not None:
            agent.stop()
            agent.cleanup()
            problems = leftovers(agent.root / "runtime", agent.node)
        for p in reversed(procs):
            p.stop()
        api.stop()
        api.etcd.stop()
        assert not problems, f"left behind on the host: {problems}"


async def _register(api, port: int) -> None:  # type: ignore[no-untyped-def]
    client = RestClient.from_kubeconfig(str(api.kubeconfig))
    try:
        await register(client, "127.0.0.1", port, api.pki.ca_file)
    finally:
        await client.close()


def _ns(c: Cluster) -> str:
    ns = f"t-{uuid.uuid4().hex[:6]}"
    c.kubectl("create", "namespace", ns)
    return ns


def _cpu_milli(text: str) -> float:
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def _bytes(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for u, f in units.items():
        if text.endswith(u):
            return int(float(text[: -len(u)]) * f)
    return int(text)


def test_top_pod_and_node_agree_with_the_cgroup(cluster: Cluster) -> None:
    c, ns = cluster, _ns(cluster)
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: spin}}
spec:
  nodeName: {c.node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
    resources:
      limits: {{cpu: 500m, memory: 64Mi}}
      requests: {{cpu: 500m, memory: 64Mi}}
""", ns)
    c.wait("spin running", lambda: c.running(ns, "") and True, 60)
    started = time.monotonic()
    uid = c.json("get", "pod", "spin", "-n", ns)["metadata"]["uid"]
    c.wait("pod metrics", lambda: c.kubectl("top", "pod", "spin", "-n", ns, check=False).returncode == 0, 45)
    time.sleep(max(0.0, 30 - (time.monotonic() - started)))
    cg = next(p for p in (cgroups.CGROUP_ROOT / "memory" / cgroups.PREFIX).glob(f"*/pod{uid}/*") if p.is_dir())
    cg_path = "/" + str(cg.relative_to(cgroups.CGROUP_ROOT / "memory"))
    # the cgroup's own counter, sampled every 0.2 s the whole time: a reading covers one
    # resolution (3 s, longer when a scrape is late) that ends at the last scrape, a few seconds
    # before it is read, so what the pod really used over any window it may cover is known
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            st = cgroups.read(cg_path)
            if st is not None:
                samples.append((time.monotonic(), st.cpu_usage_ns))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        time.sleep(8)
        readings, spans = [], []
        for _ in range(3):
            time.sleep(3.2)
            out = c.kubectl("top", "pod", "spin", "-n", ns, "--no-headers").stdout.split()
            readings.append(_cpu_milli(out[1]))
            spans.append(time.monotonic())
    finally:
        stop.set()
        sampler.join()

    def rates(end: float) -> list[float]:
        """The pod's real rate (millicores) over every 3 s window inside the 8 s before ``end``."""
        inside = [s for s in samples if end - 8 <= s[0] <= end]
        return [(b[1] - a[1]) / 1e6 / (b[0] - a[0]) for i, a in enumerate(inside) for b in inside[i + 1:]
                if 2.6 <= b[0] - a[0] <= 4.0]

    windows = [rates(end) for end in spans]
    assert all(windows), f"the sampler fell behind: {len(samples)} samples"
    lo, hi = [min(w) for w in windows], [max(w) for w in windows]
    cpu, real = sorted(readings)[1], sorted(sum(windows, []))[len(sum(windows, [])) // 2]
    # what top shows is what the cgroup used over a window it may cover (+-40m: rounding, clock)
    for r, a, b in zip(readings, lo, hi):
        assert a - 40 <= r <= b + 40, f"top {readings} vs the cgroup's own rate over its windows {list(zip(lo, hi))}"
    if min(lo) >= 450:
        # the machine gave the pod its limit over every window: 450-550m, as the issue asks
        assert 450 <= cpu <= 550, f"kubectl top pod: {readings} (median {cpu}m) under a 500m limit"
    else:  # a starved machine cannot give the pod its 500m; say so rather than pretend
        print(f"machine busy: the pod got {min(lo):.0f}-{max(hi):.0f}m; top showed {readings}")

    pm = json.loads(c.raw(f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/spin"))
    mem = _bytes(pm["containers"][0]["usage"]["memory"])
    ws = cgroups.read(cg_path).working_set_bytes
    assert abs(mem - ws) <= 0.05 * ws, f"PodMetrics memory {mem} vs cgroup working set {ws}"

    node = c.json("get", "node", c.node)
    top = c.kubectl("top", "node", c.node, "--no-headers").stdout.split()
    cpu_node, mem_node = _cpu_milli(top[1]), _bytes(top[3])
    # the node is the machine (the root cgroup, as the kubelet reports it): it includes the pod,
    # and on a machine busy with other work it may reach (never pass) its capacity
    assert real * 0.8 <= cpu_node <= 1.05 * _cpu_milli(node["status"]["capacity"]["cpu"]), (cpu_node, real)
    assert 0 < mem_node < _bytes(node["status"]["capacity"]["memory"])
    listed = c.kubectl("top", "pods", "-A", "--containers", "--sort-by=cpu").stdout
    assert re.search(rf"^{ns}\s+spin\s+spin\s+\d+m", listed, re.M), listed
    # kubectl found the group in aggregated discovery: metrics-server's resources, fetched by the apiserver
    with c.api.http() as h:
        doc = h.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}).json()
    (metrics,) = [v for i in doc["items"] if i["metadata"].get("name") == "metrics.k8s.io" for v in i["versions"]]
    assert metrics["version"] == "v1beta1" and metrics["freshness"] == "Current", metrics
    assert {(r["resource"], r["scope"]) for r in metrics["resources"]} == {("nodes", "Cluster"), ("pods", "Namespaced")}

    # the Metrics API is authorized like any API (the apiserver, then metrics-server's own
    # SubjectAccessReview for the user the front proxy names): view in the namespace may read
    # PodMetrics there (system:aggregated-metrics-reader is aggregated into view), not elsewhere
    c.kubectl("create", "rolebinding", "jane-view", "-n", ns, "--clusterrole=view", "--user=jane")
    jane = make_kubectl(c.api.kubeconfig_for("jane"), c.work / "jane-cache")
    c.wait("jane may read PodMetrics", lambda: jane("top", "pod", "spin", "-n", ns, check=False).returncode == 0, 15)
    denied = jane("top", "node", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    port = json.loads(c.raw("/api/v1/namespaces/kube-system/endpoints/metrics-server"))["subsets"][0]["ports"][0]["port"]
    with httpx.Client(verify=str(c.api.pki.ca_file)) as direct:  # straight to it with no credentials: 401
        r = direct.get(f"https://127.0.0.1:{port}/apis/metrics.k8s.io/v1beta1/nodes")
        assert r.status_code == 401, r.text

    # the agent's own endpoints through the apiserver's node proxy
    res = c.raw(f"/api/v1/nodes/{c.node}/proxy/metrics/resource")
    assert f'container_cpu_usage_seconds_total{{container="spin",namespace="{ns}",pod="spin"}}' in res
    assert "kubelet_running_pods" in c.raw(f"/api/v1/nodes/{c.node}/proxy/metrics")
    summary = json.loads(c.raw(f"/api/v1/nodes/{c.node}/proxy/stats/summary"))
    assert any(p["podRef"]["uid"] == uid for p in summary["pods"])
    assert "container_network_receive_bytes_total" in c.raw(f"/api/v1/nodes/{c.node}/proxy/metrics/cadvisor")
    c.kubectl("delete", "namespace", ns, "--wait=false")


BURN = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      nodeName: {node}
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        command: ["sh", "-c", "{script}"]
        resources:
          requests: {{cpu: 50m, memory: 32Mi}}
          limits: {{cpu: 150m, memory: 256Mi}}
"""
SPIN_UNTIL_STOPPED = "while [ ! -f /tmp/stop ]; do :; done; exec sleep 3600"


def _hpa(c: Cluster, ns: str, name: str) -> dict:
    return c.json("get", "horizontalpodautoscalers.v2.autoscaling", name, "-n", ns)


def _cond(h: dict, ctype: str) -> dict:
    return next((x for x in h.get("status", {}).get("conditions") or [] if x["type"] == ctype), {})


def test_autoscale_cpu_by_the_formula_and_back_to_one(cluster: Cluster) -> None:
    c, ns = cluster, _ns(cluster)
    c.apply(BURN.format(name="burn", node=c.node, script=SPIN_UNTIL_STOPPED), ns)
    c.kubectl("autoscale", "deploy", "burn", "-n", ns, "--cpu-percent=50", "--min=1", "--max=4")
    assert c.json("get", "horizontalpodautoscalers.v1.autoscaling", "burn", "-n", ns)["spec"]["targetCPUUtilizationPercentage"] == 50
    c.kubectl("patch", "hpa", "burn", "-n", ns, "--type=merge",
              "-p", '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":0}}}}')

    def first_rescale():
        h = _hpa(c, ns, "burn")
        st = h.get("status") or {}
        return h if st.get("desiredReplicas", 0) > 1 and st.get("currentReplicas") == 1 else None
    h = c.wait("the first scale-up", first_rescale, 90, 0.1)
    util = h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    want = min(4, math.ceil(1 * util / 50))
    assert abs(util / 50 - 1) > 0.1 and h["status"]["desiredReplicas"] == want, (util, h["status"])
    ev = c.wait("SuccessfulRescale", lambda: [e for e in c.events(ns, "burn") if e["reason"] == "SuccessfulRescale"])
    assert ev[0]["message"] == f"New size: {want}; reason: cpu resource utilization (percentage of request) above target"
    assert ev[0]["source"]["component"] == "horizontal-pod-autoscaler"
    assert c.json("get", "deploy", "burn", "-n", ns)["spec"]["replicas"] >= want

    c.wait("the new pods running", lambda: len(c.running(ns, "app=burn")) >= want, 60)
    def stopped_and_back_to_one() -> bool:
        for p in c.running(ns, "app=burn"):  # the load stops (pods started meanwhile stop too)
            c.kubectl("exec", "-n", ns, p["metadata"]["name"], "--", "touch", "/tmp/stop", check=False)
        return c.json("get", "deploy", "burn", "-n", ns)["spec"]["replicas"] == 1
    c.wait("back to 1 replica", stopped_and_back_to_one, 90, 1.0)
    # the Event is written by the recorder after the scale write: wait for it too
    c.wait("the scale-down Event", lambda: [e for e in c.events(ns, "burn") if e["reason"] == "SuccessfulRescale"
                                           and e["message"] == "New size: 1; reason: All metrics below target"], 30)

    out = c.kubectl("describe", "hpa", "burn", "-n", ns).stdout
    assert re.search(r"Reference:\s+Deployment/burn", out), out
    assert re.search(r"resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\d+m\) / 50%", out), out
    assert re.search(r"Min replicas:\s+1", out) and re.search(r"Max replicas:\s+4", out), out
    assert re.search(r"Conditions:\n\s+Type\s+Status\s+Reason\s+Message\n", out), out
    assert re.search(r"AbleToScale\s+True\s+\w+", out) and re.search(r"ScalingActive\s+True\s+ValidMetricFound\s+"
                                                                      r"the HPA was able to successfully calculate a replica "
                                                                      r"count from cpu resource utilization", out), out
    assert re.search(r"Normal\s+SuccessfulRescale\s+.*horizontal-pod-autoscaler\s+New size: 1; reason: All metrics "
                     r"below target", out), out
    assert re.search(r"Scale Down:\n\s+Stabilization Window: 0 seconds", out), out
    c.kubectl("delete", "namespace", ns, "--wait=false")


def test_memory_target_scales(cluster: Cluster) -> None:
    c, ns = cluster, _ns(cluster)
    # 40 MiB written to a memory-backed emptyDir: shared memory charged to the container's cgroup
    c.apply(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hog}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: hog}}}}
  template:
    metadata: {{labels: {{app: hog}}}}
    spec:
      nodeName: {c.node}
      terminationGracePeriodSeconds: 1
      volumes: [{{name: mem, emptyDir: {{medium: Memory}}}}]
      containers:
      - name: app
        image: busybox
        command: ["sh", "-c", "dd if=/dev/zero of=/mem/fill bs=1048576 count=40 2>/dev/null; exec sleep 3600"]
        volumeMounts: [{{name: mem, mountPath: /mem}}]
        resources:
          requests: {{memory: 32Mi}}
          limits: {{memory: 128Mi}}
""", ns)
    c.apply("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hog}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hog}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 20Mi}}
""", ns)
    ev = c.wait("a memory scale-up", lambda: [e for e in c.events(ns, "hog") if e["reason"] == "SuccessfulRescale"], 90)
    assert re.fullmatch(r"New size: [23]; reason: memory resource above target", ev[0]["message"]), ev[0]["message"]
    h = _hpa(c, ns, "hog")
    assert h["status"]["currentMetrics"][0]["resource"]["name"] == "memory"
    assert "memory:" in c.kubectl("get", "hpa", "hog", "-n", ns).stdout
    c.kubectl("delete", "namespace", ns, "--wait=false")


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: burners.hpa.example.com}
spec:
  group: hpa.example.com
  scope: Namespaced
  names: {plural: burners, singular: burner, kind: Burner}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""


def test_hpa_scales_a_custom_resource(cluster: Cluster) -> None:
    c, ns = cluster, _ns(cluster)
    c.kubectl("apply", "-f", "-", input=CRD)
    c.kubectl("wait", "--for", "condition=established", "crd/burners.hpa.example.com", "--timeout=30s")
    c.apply("apiVersion: hpa.example.com/v1\nkind: Burner\nmetadata: {name: b1}\nspec: {replicas: 1}\n", ns)
    c.kubectl("patch", "burner", "b1", "-n", ns, "--subresource=status", "--type=merge",
              "-p", '{"status":{"replicas":1,"selector":"app=crburn"}}')
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: crburn-0, labels: {{app: crburn}}}}
spec:
  nodeName: {c.node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "{SPIN_UNTIL_STOPPED}"]
    resources:
      requests: {{cpu: 50m}}
      limits: {{cpu: 150m}}
""", ns)
    c.apply("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: b1}
spec:
  scaleTargetRef: {apiVersion: hpa.example.com/v1, kind: Burner, name: b1}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
""", ns)

    def first_rescale():
        h = _hpa(c, ns, "b1")
        st = h.get("status") or {}
        return h if st.get("desiredReplicas", 0) > 1 and st.get("currentReplicas") == 1 else None
    h = c.wait("the custom resource's first scale-up", first_rescale, 90, 0.1)
    util = h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    wish = math.ceil(1 * util / 50)
    # without behavior Kubernetes also caps a scale-up at max(2 x current, 4)
    assert h["status"]["desiredReplicas"] == min(5, max(2 * 1, 4), wish), h["status"]
    if wish > 4:
        assert _cond(h, "ScalingLimited")["reason"] == "ScaleUpLimit", h["status"]
    scale = json.loads(c.raw(f"/apis/hpa.example.com/v1/namespaces/{ns}/burners/b1/scale"))
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] >= h["status"]["desiredReplicas"]
    assert c.json("get", "burner", "b1", "-n", ns)["spec"]["replicas"] == scale["spec"]["replicas"]
    c.kubectl("exec", "-n", ns, "crburn-0", "--", "touch", "/tmp/stop")
    c.kubectl("delete", "namespace", ns, "--wait=false")


def test_bad_input_conditions_and_events_nothing_scaled(cluster: Cluster) -> None:
    c, ns = cluster, _ns(cluster)
    # no CPU request (nor limit, which would default it): a CPU target has nothing to divide by
    c.apply(BURN.format(name="idle", node=c.node, script="exec sleep 3600").replace(
        "requests: {cpu: 50m, memory: 32Mi}", "requests: {memory: 32Mi}").replace(
        "limits: {cpu: 150m, memory: 256Mi}", "limits: {memory: 256Mi}"), ns)

    def hpa(name: str, ref: str, lo: int = 1, hi: int = 3) -> str:
        return f"""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: {name}}}
spec:
  scaleTargetRef: {ref}
  minReplicas: {lo}
  maxReplicas: {hi}
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
"""
    c.apply(hpa("missing", "{apiVersion: apps/v1, kind: Deployment, name: nope}"), ns)
    c.apply(hpa("noscale", "{apiVersion: v1, kind: ConfigMap, name: kube-root-ca}"), ns)
    c.apply(hpa("badkind", "{apiVersion: example.com/v1, kind: Frobnicator, name: x}"), ns)
    c.apply(hpa("nometric", "{apiVersion: apps/v1, kind: Deployment, name: idle}"), ns)
    bad = c.kubectl("apply", "-n", ns, "-f", "-", input=hpa("minmax", "{apiVersion: apps/v1, kind: Deployment, name: idle}",
                                                                  5, 2), check=False)
    assert bad.returncode != 0
    assert 'The HorizontalPodAutoscaler "minmax" is invalid: spec.maxReplicas: Invalid value: 2: must be greater ' \
           "than or equal to `minReplicas`" in bad.stderr, bad.stderr
    r = c.kubectl("autoscale", "deploy", "idle", "-n", ns, "--min=5", "--max=2", check=False)
    assert r.returncode != 0 and "--max=MAXPODS must be larger or equal to --min=MINPODS" in r.stderr, r.stderr

    want = {
        "missing": ("AbleToScale", "False", "FailedGetScale", 'deployments.apps "nope" not found'),
        "noscale": ("AbleToScale", "False", "FailedGetScale", "the server could not find the requested resource"),
        "badkind": ("AbleToScale", "False", "FailedGetScale", 'no matches for kind "Frobnicator" in group "example.com"'),
        "nometric": ("ScalingActive", "False", "FailedGetResourceMetric", "missing request for cpu in container app of Pod idle-"),
    }
    for name, (ctype, status, reason, text) in want.items():
        def conditioned(name=name, ctype=ctype, text=text):
            cond = _cond(_hpa(c, ns, name), ctype)
            # (before its pod has metrics, "nometric" first says no metrics were returned)
            return cond if text in cond.get("message", "") else None
        try:
            cond = c.wait(f"{name}: {ctype}", conditioned, 60)
        except AssertionError:
            raise AssertionError(f"{name}: {_cond(_hpa(c, ns, name), ctype)}\n"
                                 f"{c.kubectl('get', 'pods', '-n', ns, '-o', 'wide').stdout}\n"
                                 f"{c.raw(f'/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods')}\n"
                                 f"{[l for l in c.raw(f'/api/v1/nodes/{c.node}/proxy/metrics/resource').splitlines() if ns in l]}") from None
        assert (cond["status"], cond["reason"]) == (status, reason), (name, cond)
        assert text in cond["message"], (name, cond["message"])
        reasons = c.wait(f"{name}: events", lambda name=name: {e["reason"]: e["message"] for e in c.events(ns, name)}, 30)
        assert reason in reasons and text in reasons[reason], (name, reasons)
    assert "FailedComputeMetricsReplicas" in {e["reason"] for e in c.events(ns, "nometric")}
    assert c.kubectl("get", "hpa", "minmax", "-n", ns, check=False).returncode != 0
    time.sleep(4)  # two more syncs: still nothing scaled
    assert c.json("get", "deploy", "idle", "-n", ns)["spec"]["replicas"] == 1
    assert "SuccessfulRescale" not in {e["reason"] for e in c.json("get", "events", "-n", ns)["items"]}
    c.kubectl("delete", "namespace", ns, "--wait=false")
