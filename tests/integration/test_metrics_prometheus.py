"""Prometheus end to end: ``controlplane up --prometheus`` runs the real Prometheus
(``/usr/bin/prometheus``) on ``manifests/prometheus``; every component is a target and every
target is up (apiserver, etcd, controller-manager, scheduler, metrics-server, the metrics
adapter, and /metrics,
/metrics/cadvisor, /metrics/resource of each real node); stopping a node's agent fires the
``KubeletDown`` alert for that node; an APIService whose Service does not exist sets
``aggregator_unavailable_apiservice`` and fires ``KubeAggregatedAPIDown``. Prometheus scrapes as ``system:prometheus`` (group
``system:monitoring``) over HTTPS; the agents authorize it for ``nodes/metrics``. The shipped rules run with their ``for:`` set to 0 s
(``--prometheus-rules`` with a rewritten copy) and a 1 s scrape interval, so the test waits
seconds, not minutes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from controlplane.etcd_process import free_port
from controlplane.pki.cluster import ClusterPKI
from tests.fixtures.agent import HAVE_RUNC, AgentProcess, leftovers
from tests.fixtures.apiserver import REPO, make_kubectl
from tests.fixtures.network import allocate_test_net

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(240)]

BROKEN_APISERVICE = """
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1.broken.example.com}
spec:
  group: broken.example.com
  version: v1
  service: {namespace: default, name: nothing-here, port: 443}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 10
"""

JOBS = {"apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "metrics-server", "prometheus-adapter", "kubelet"}


def _rules_without_for(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in (REPO / "manifests" / "prometheus" / "rules").glob("*.yml"):
        doc = yaml.safe_load(f.read_text())
        for g in doc["groups"]:
            for r in g["rules"]:
                if "for" in r:
                    r["for"] = "0s"
        (dest / f.name).write_text(yaml.safe_dump(doc))
    return dest


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def _wait(what: str, fn, timeout: float = 60.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def test_prometheus_scrapes_every_component_and_alerts_on_a_stopped_node(tmp_path: Path, local_registry) -> None:
    if not HAVE_RUNC:
        pytest.fail("needs root and runc (up runs a node agent)")
    data, port = tmp_path / "data", free_port()
    node = f"pm-{uuid.uuid4().hex[:6]}"
    rules = _rules_without_for(tmp_path / "rules")
    net = allocate_test_net()  # never the default CIDRs: other instances share this machine
    proc = subprocess.Popen([sys.executable, "-m", "controlplane", "up", "--data-dir", str(data), "--port", str(port),
                             "--node-name", node, "--apiserver-workers", "1", "--prometheus", "--dashboard-port", "0",
                             "--cluster-cidr", net.cluster_cidr, "--service-cidr", net.service_cidr,
                             "--prometheus-scrape-interval", "1s", "--prometheus-rules", str(rules)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    extra = None
    try:
        ready = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and ready is None:
            r, _, _ = select.select([proc.stdout], [], [], 1.0)
            if r:
                line = proc.stdout.readline()
                if not line:
                    break
                if '"ready"' in line:
                    ready = json.loads(line)
            assert proc.poll() is None, "controlplane up exited"
        assert ready, "controlplane up did not print its ready line"
        assert set(ready["metrics"]) >= {"apiserver", "etcd", "controller-manager", "scheduler", "metrics-server", "agent"}
        prom = ready["prometheus"]
        # a second node, outside up (its own node identity from up's CA), whose agent we stop
        cluster = SimpleNamespace(url=ready["server"], pki=ClusterPKI(data / "pki"))
        extra = AgentProcess(tmp_path / "extra", cluster, f"{node}-x", local_registry.url, net=net, index=None)  # its /24 from up's node IPAM
        extra.start()

        state: dict = {}

        def all_up():
            targets = _get(prom + "/api/v1/targets")["data"]["activeTargets"]
            jobs = {t["labels"]["job"] for t in targets}
            nodes = {t["labels"].get("node") for t in targets if t["labels"]["job"] == "kubelet"}
            down = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets if t["health"] != "up"]
            state.update(jobs=sorted(jobs), nodes=sorted(n for n in nodes if n), down=down)
            return (jobs >= JOBS and {node, f"{node}-x"} <= nodes and not down
                    and sum(1 for t in targets if t["labels"]["job"] == "kubelet") == 6) and targets
        try:
            targets = _wait("every target up", all_up, 90)
        except AssertionError:
            raise AssertionError(f"targets not all up: {state}\n{extra.log_tail(20)}") from None
        paths = {t["labels"].get("metrics_path") for t in targets if t["labels"]["job"] == "kubelet"}
        assert paths == {"/metrics", "/metrics/cadvisor", "/metrics/resource"}
        ready_query = prom + "/api/v1/query?query=" + urllib.request.quote(
            'kube_node_status_condition{condition="Ready",status="true"}')

        def both_ready():  # the second node turns Ready, then the next scrape carries it
            nodes = {r["metric"]["node"] for r in _get(ready_query)["data"]["result"]}
            return nodes if nodes >= {node, f"{node}-x"} else None
        _wait("both nodes Ready in kube_node_status_condition", both_ready, 60)
        assert not [a for a in _get(prom + "/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"
                    and a["labels"]["alertname"] == "KubeletDown"]

        extra.stop()

        def alert():
            return [a for a in _get(prom + "/api/v1/alerts")["data"]["alerts"]
                    if a["labels"]["alertname"] == "KubeletDown" and a["state"] == "firing"
                    and a["labels"].get("node") == f"{node}-x"]
        fired = _wait("KubeletDown firing for the stopped node", alert, 60)
        assert fired[0]["labels"]["severity"] == "critical"

        # an aggregated API whose Service does not exist: kube-aggregator's gauge says so and
        # KubeAggregatedAPIDown fires for it; the metrics-server's stays available
        kubectl = make_kubectl(Path(ready["kubeconfig"]), tmp_path / "kubectl-cache")
        kubectl("apply", "-f", "-", input=BROKEN_APISERVICE)

        def gauge(name: str):
            q = prom + "/api/v1/query?query=" + urllib.request.quote(f'aggregator_unavailable_apiservice{{name="{name}"}}')
            res = _get(q)["data"]["result"]
            return res[0]["value"][1] if res else None
        _wait("the broken APIService's gauge at 1", lambda: gauge("v1.broken.example.com") == "1", 60)
        assert gauge("v1beta1.metrics.k8s.io") == "0"

        def api_down():
            return [a for a in _get(prom + "/api/v1/alerts")["data"]["alerts"]
                    if a["labels"]["alertname"] == "KubeAggregatedAPIDown" and a["state"] == "firing"]
        down_alerts = _wait("KubeAggregatedAPIDown firing", api_down, 60)
        assert {a["labels"]["name"] for a in down_alerts} == {"v1.broken.example.com"}, down_alerts
    finally:
        if extra is not None:
            extra.stop()
            extra.cleanup()
            assert leftovers(extra.root / "runtime", extra.node) == []
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        down = subprocess.run([sys.executable, "-m", "controlplane", "down", "--data-dir", str(data)], cwd=REPO,
                              capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0
    rep = json.loads(down.stdout.strip().splitlines()[-1])
    assert down.returncode == 0 and not rep["leftovers"] and not rep["errors"], rep
