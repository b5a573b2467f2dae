"""PodTopologySpread's newer fields end to end: the real apiserver (its 422 for bad
constraints), the real scheduler process, kubectl, and for ``matchLabelKeys`` a Deployment
rolled out by the real deployment and replicaset controllers (simulated nodes: no kubelet,
so pods stay Pending-bound and never Ready; the rollout surges to all new pods at once)."""

from __future__ import annotations

import json
import time

import pytest

from tests.fixtures.scheduler import ProcessRunner
from tests.integration.test_scheduler_live import add_node, ns, pod

pytestmark = pytest.mark.integration

ZONE = "topology.kubernetes.io/zone"


def _deployment(name: str, namespace: str, suite: str, node_selector: dict, match_label_keys: bool) -> str:
    tsc = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"app": name}}}
    if match_label_keys:
        tsc["matchLabelKeys"] = ["pod-template-hash"]
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "nodeSelector": {"suite": suite, **node_selector}, "topologySpreadConstraints": [tsc],
                     "containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}}})


def _placement(c, namespace: str, app: str, want: int, timeout: float = 60) -> dict[str, list[str]]:
    """pod-template-hash -> the nodes of its pods, once ``want`` pods are bound."""
    deadline = time.monotonic() + timeout
    out: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        items = json.loads(c.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout)["items"]
        out = {}
        for p in items:
            if p["spec"].get("nodeName"):
                out.setdefault(p["metadata"]["labels"]["pod-template-hash"], []).append(p["spec"]["nodeName"])
        if sum(len(v) for v in out.values()) >= want:
            return {k: sorted(v) for k, v in out.items()}
        time.sleep(0.3)
    return out


def test_match_label_keys_spread_a_deployment_per_revision(sched_cluster):
    """Revision 1 sits on node a (its nodeSelector); revision 2 may use a, b and c. With
    ``matchLabelKeys: [pod-template-hash]`` only revision 2's own pods count: one on each node.
    Without it revision 1's three pods on a count too, and no new pod goes to a."""
    c = sched_cluster
    n = ns(c, "tsc-deploy")
    for node in ("dp-a", "dp-b", "dp-c"):
        add_node(c, node, "tsc-deploy", labels={"rev1": "yes"} if node == "dp-a" else {})
    cm = ProcessRunner(c.scheduler.workdir, ["controller-manager", "--kubeconfig",
                                             str(c.api.component_kubeconfig("controller-manager")),
                                             "--controllers", "deployment,replicaset"], "controller-manager-tsc")
    try:
        cm.start()
        for app, keys in (("keys", True), ("nokeys", False)):
            c.apply(_deployment(app, n, "tsc-deploy", {"rev1": "yes"}, keys))
            first = _placement(c, n, app, 3)
            assert list(first.values()) == [["dp-a"] * 3], (first, cm.log_tail())
            c.apply(_deployment(app, n, "tsc-deploy", {}, keys))  # a new template: revision 2
            both = _placement(c, n, app, 6)
            [new] = [h for h in both if h not in first]
            if keys:
                assert both[new] == ["dp-a", "dp-b", "dp-c"], both
            else:
                assert "dp-a" not in both[new] and len(both[new]) == 3, both
    finally:
        cm.stop()


def test_node_taints_policy_honor_changes_placement(sched_cluster):
    """Zones a and b hold one matching pod each; zone c's only node is tainted. Ignore (the
    default): empty zone c is the minimum, so a and b are over the skew and c's taint is not
    tolerated: the pod stays Pending. Honor: zone c does not count, the pod goes to a or b."""
    c = sched_cluster
    n = ns(c, "tsc-taints")
    for node, zone in (("tt-a", "a"), ("tt-b", "b"), ("tt-c", "c")):
        add_node(c, node, "tsc-taints", labels={ZONE: zone},
                 taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}] if zone == "c" else None)
    for node in ("tt-a", "tt-b"):
        c.apply(pod(f"on-{node}", n, "tsc-taints", labels={"app": "tt"}, extra_spec={"nodeName": node}))

    def spread(policy: str | None) -> dict:
        cons = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "tt"}}}
        if policy:
            cons["nodeTaintsPolicy"] = policy
        return {"topologySpreadConstraints": [cons]}

    c.apply(pod("ignore", n, "tsc-taints", labels={"app": "tt"}, extra_spec=spread(None)))
    ev = c.wait_event(n, "ignore", "FailedScheduling")
    assert ev, "no FailedScheduling event"
    msg = ev[0]["message"]
    assert "2 node(s) didn't match pod topology spread constraints" in msg, msg
    assert "1 node(s) had untolerated taint {dedicated: x}" in msg, msg
    c.apply(pod("honor", n, "tsc-taints", labels={"app": "tt"}, extra_spec=spread("Honor")))
    assert c.wait_bound(n, "honor") in ("tt-a", "tt-b")
    assert c.node_of(n, "ignore") is None


def test_apiserver_refuses_bad_constraints(sched_cluster):
    c = sched_cluster
    n = ns(c, "tsc-invalid")
    bad = {"topologySpreadConstraints": [
        {"maxSkew": 0, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2,
         "labelSelector": {"matchLabels": {"app": "x"}}, "matchLabelKeys": ["app"], "nodeTaintsPolicy": "Always"}]}
    r = c.kubectl("apply", "-f", "-", input=pod("bad", n, "none", extra_spec=bad), check=False)
    assert r.returncode != 0
    p = "spec.topologySpreadConstraints[0]"
    for line in (f"{p}.maxSkew: Invalid value: 0: must be greater than zero",
                 f"{p}.minDomains: Invalid value: 2: can only use minDomains if whenUnsatisfiable=DoNotSchedule, "
                 "not ScheduleAnyway",
                 f'{p}.nodeTaintsPolicy: Unsupported value: "Always": supported values: "Honor", "Ignore"',
                 f'{p}.matchLabelKeys[0]: Invalid value: "app": exists in both matchLabelKeys and labelSelector'):
        assert line in r.stderr, r.stderr
    assert c.get("pod", "bad", n) is None
