"""The README is true: its "first workload" commands, run as written (read from README.md)
with the real kubectl, and every file under ``manifests/`` applied with the real kubectl, on a
running cluster of its own: etcd, the apiserver, the controller-manager, the scheduler and a
runc node agent pulling from a local registry (so ``busybox`` resolves without a download).

Resources the apiserver does not serve yet are skipped, named, after a look at discovery.
"""

from __future__ import annotations

import json
import shlex
import ssl
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.fixtures.agent import HAVE_RUNC, AgentProcess, leftovers
from tests.fixtures.apiserver import REPO, _start, make_kubectl
from tests.fixtures.controllers import ControllerManagerProcess
from tests.fixtures.scheduler import ProcessRunner

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.slow, pytest.mark.timeout(600)]

MANIFESTS = REPO / "manifests"


class Cluster:
    def __init__(self, work: Path, api, kubectl, node: str) -> None:
        self.work, self.api, self.kubectl, self.node = work, api, kubectl, node

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def wait(self, what: str, fn, timeout: float = 120.0, interval: float = 0.3):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last={last!r}")

    def running_pods(self, *args: str) -> list[dict]:
        items = self.json("get", "pods", *args)["items"]
        return [p for p in items if (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]

    def served(self, api_version: str, kind: str) -> bool:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        r = self.kubectl("get", "--raw", path, check=False)
        return r.returncode == 0 and any(res.get("kind") == kind and "/" not in res["name"]
                                         for res in json.loads(r.stdout).get("resources", []))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, local_registry):
    if not HAVE_RUNC:
        pytest.fail("the README tests run a runc node agent: they need root, runc and busybox-static")
    work = tmp_path_factory.mktemp("readme")
    api = _start(work / "apiserver", ["--compaction-interval", "0"])
    procs: list = []
    agent = None
    try:
        # (as `up` runs it: the CA published as kube-root-ca.crt, which every pod's token volume needs)
        cm = ControllerManagerProcess(work / "controller-manager", api.component_kubeconfig("controller-manager"),
                                      ["--data-dir", str(work), "--root-ca-file", str(api.pki.ca_file)]).start()
        procs.append(cm)
        sched = ProcessRunner(work, ["scheduler", "--kubeconfig", str(api.component_kubeconfig("scheduler")),
                                     "--data-dir", str(work)],
                              "scheduler").start()
        procs.append(sched)
        node = f"readme-{uuid.uuid4().hex[:6]}"
        agent = AgentProcess(work / "agent", api, node, local_registry.url, ["--data-dir", str(work)])
        agent.start()
        c = Cluster(work, api, make_kubectl(api.kubeconfig, work / "kubectl-cache"), node)
        assert cm.wait_log("caches synced", 60), cm.log_tail()
        assert sched.wait_log("scheduler started", 60), sched.log_tail()

        def node_ready():
            assert agent.alive(), agent.log_tail()
            r = c.kubectl("get", "node", node, "-o", "json", check=False)
            conds = {x["type"]: x["status"] for x in json.loads(r.stdout)["status"].get("conditions", [])} \
                if r.returncode == 0 else {}
            return conds.get("Ready") == "True"
        c.wait(f"node {node} Ready", node_ready, 60)
        yield c
    finally:
        problems = []
        if agent is not None:
            agent.stop()
            agent.cleanup()
            problems = leftovers(agent.root / "runtime", agent.node, agent.net)
        for p in reversed(procs):
            p.stop()
        api.stop()
        api.etcd.stop()
        assert not problems, f"left behind on the host: {problems}"


def first_workload_commands() -> list[list[str]]:
    """The ``$K ...`` lines of the README's "A first workload" block, as kubectl arguments."""
    text = (REPO / "README.md").read_text()
    section = text.split("## A first workload", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
    assert lines[0].startswith('K="kubectl --kubeconfig'), lines[0]
    assert all(ln.startswith("$K ") for ln in lines[1:]), lines
    return [shlex.split(ln[len("$K "):]) for ln in lines[1:]]


def test_first_workload_commands(cluster: Cluster):
    cmds = first_workload_commands()
    verbs = [c[0] for c in cmds]
    assert verbs == ["create", "get", "logs", "exec", "scale", "rollout"], verbs
    create, get_wide, logs, exec_, scale, rollout = cmds

    out = cluster.kubectl(*create).stdout
    assert out.strip() == "deployment.apps/hello created"
    pods = cluster.wait("2 hello pods Running", lambda: len(cluster.running_pods("-l", "app=hello")) == 2
                        and cluster.running_pods("-l", "app=hello"))
    names = {p["metadata"]["name"] for p in pods}

    table = cluster.kubectl(*get_wide).stdout.splitlines()
    header = table[0].split()
    assert header[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and "NODE" in header and "IP" in header
    rows = {r.split()[0]: r.split() for r in table[1:]}
    assert set(rows) == names
    for row in rows.values():
        assert row[1] == "1/1" and row[2] == "Running" and row[header.index("NODE")] == cluster.node

    def logged():
        r = cluster.kubectl(*logs, check=False)
        return r.stdout if r.returncode == 0 and r.stdout.startswith("hello from ") else None
    line = cluster.wait("the hello log line", logged, 30).strip()
    assert line.removeprefix("hello from ") in names

    assert cluster.kubectl(*exec_).stdout.strip() in names  # the pod's hostname is its name

    assert cluster.kubectl(*scale).stdout.strip() == "deployment.apps/hello scaled"
    out = cluster.kubectl(*rollout, timeout=180).stdout
    assert 'deployment "hello" successfully rolled out' in out
    assert len(cluster.running_pods("-l", "app=hello")) == 4


def _is_kubernetes(p: Path) -> bool:
    """Kubernetes objects (manifests/prometheus/ holds Prometheus' own configuration and rules)."""
    docs = [d for d in yaml.safe_load_all(p.read_text()) if d]
    return bool(docs) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs)


def _manifest_files() -> list[Path]:
    files = sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and _is_kubernetes(p))

    def crd_first(p: Path) -> tuple[int, str]:
        kinds = {d.get("kind") for d in yaml.safe_load_all(p.read_text()) if d}
        return (0 if kinds == {"CustomResourceDefinition"} else 1, str(p))
    return sorted(files, key=crd_first)


def test_manifests_exist():
    files = _manifest_files()
    kinds = {d["kind"] for f in files for d in yaml.safe_load_all(f.read_text()) if d}
    assert {"Deployment", "Service", "ConfigMap", "Pod", "Job", "CronJob", "ReplicationController",
            "StatefulSet", "CustomResourceDefinition", "CronTab"} <= kinds


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_manifest_applies(cluster: Cluster, path: Path):
    ns = "examples"
    if cluster.kubectl("get", "namespace", ns, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", ns)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for d in docs:
        if d["kind"] == "CustomResourceDefinition" or cluster.served(d["apiVersion"], d["kind"]):
            continue
        definitions = [f for f in _manifest_files() if f.parent == path.parent
                       and {x.get("kind") for x in yaml.safe_load_all(f.read_text()) if x} == {"CustomResourceDefinition"}]
        if not definitions:
            pytest.skip(f"{d['apiVersion']} {d['kind']} is not served by this apiserver (discovery)")
        for f in definitions:  # a custom resource on its own (-k): its definition first
            cluster.kubectl("apply", "-f", str(f))
        cluster.wait(f"{d['kind']} served", lambda: cluster.served(d["apiVersion"], d["kind"]), 30)

    out = cluster.kubectl("apply", "-n", ns, "-f", str(path)).stdout
    assert len(out.strip().splitlines()) == len(docs), out
    for d in docs:
        if d["kind"] == "CustomResourceDefinition":
            cluster.kubectl("wait", "--for", "condition=established", f"crd/{d['metadata']['name']}",
                            "--timeout", "30s")
            continue
        got = cluster.json("get", "-n", ns, f"{d['kind'].lower()}.{d['apiVersion'].split('/')[0]}"
                           if "/" in d["apiVersion"] else d["kind"].lower(), d["metadata"]["name"])
        assert got["kind"] == d["kind"] and got["metadata"]["name"] == d["metadata"]["name"]
    if path.name == "configmap-pod.yaml":  # the mounted ConfigMap is what the pod prints
        def printed():
            r = cluster.kubectl("logs", "-n", ns, "config-reader", check=False)
            return r.stdout if r.returncode == 0 and "color = blue" in r.stdout else None
        assert cluster.wait("config-reader's output", printed, 60).startswith("hello")


def test_components_serve_metrics_and_hold_leases(cluster: Cluster):
    """What the README says of every component: Prometheus metrics on the port each wrote to
    the data dir, and a leader-election Lease for the controller-manager and the scheduler.
    The controller-manager and the scheduler run here without a serving certificate (plain
    HTTP); the agent has one (HTTPS, delegated authn/authz: the admin's certificate)."""
    pki = cluster.api.pki
    admin = ssl.create_default_context(cafile=str(pki.ca_file))
    admin.load_cert_chain(str(pki.crt("admin")), str(pki.key("admin")))
    for component, metric, scheme in [("controller-manager", "rest_client_requests_total", "http"),
                                      ("scheduler", "scheduler_schedule_attempts_total", "http"),
                                      ("agent", "kubelet_running_pods", "https")]:
        port = int((cluster.work / f"{component}.metrics-port").read_text())
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/metrics", timeout=10,
                                    context=admin if scheme == "https" else None) as r:
            assert metric in r.read().decode(), component
    for lease in ("kube-controller-manager", "kube-scheduler"):
        spec = cluster.json("get", "lease", "-n", "kube-system", lease)["spec"]
        assert spec.get("holderIdentity"), lease
