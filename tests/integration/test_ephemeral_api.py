"""``pods/ephemeralcontainers`` through the real apiserver and the real kubectl (no node
needed): discovery, ``kubectl debug`` (a strategic merge patch of the subresource), GET/PUT/PATCH
of the subresource, Kubernetes' 422s (changed, removed, duplicate names, forbidden fields, an
unknown target, ephemeral containers on create or in a plain update) and RBAC (``update`` /
``patch`` on ``pods/ephemeralcontainers``, which the default ``edit`` role does not grant)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.apiserver import make_kubectl

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SMP = {"Content-Type": "application/strategic-merge-patch+json"}


@pytest.fixture
def ns(kubectl):
    name = f"eph-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "busybox"}],
                    "initContainers": [{"name": "setup", "image": "busybox"}]}}
    kubectl("apply", "-n", name, "-f", "-", input=json.dumps(pod))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _causes(r) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in r.json()["details"]["causes"]]


def test_discovery_lists_the_subresource(kubectl):
    res = json.loads(kubectl("get", "--raw", "/api/v1").stdout)
    entry = next(r for r in res["resources"] if r["name"] == "pods/ephemeralcontainers")
    assert entry["kind"] == "Pod" and entry["namespaced"] is True
    assert sorted(entry["verbs"]) == ["get", "patch", "update"]
    doc = json.loads(kubectl("get", "--raw", "/openapi/v3/api/v1").stdout)
    path = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers"]
    assert path["patch"]["operationId"] == "patchCoreV1NamespacedPodEphemeralcontainers"
    assert path["get"]["operationId"] == "readCoreV1NamespacedPodEphemeralcontainers"


def test_kubectl_debug_adds_an_ephemeral_container(kubectl, ns, apiserver):
    out = kubectl("debug", "-n", ns, "p", "--image=busybox", "--target=app", "-c", "dbg", "--", "sh", "-c", "ps")
    assert 'Targeting container "app"' in out.stdout + out.stderr
    pod = json.loads(kubectl("get", "pod", "-n", ns, "p", "-o", "json", "--show-managed-fields").stdout)
    [ec] = pod["spec"]["ephemeralContainers"]
    assert ec["name"] == "dbg" and ec["targetContainerName"] == "app" and ec["command"] == ["sh", "-c", "ps"]
    assert ec["terminationMessagePath"] == "/dev/termination-log"  # defaulted like any container
    mf = [m for m in pod["metadata"]["managedFields"] if m.get("subresource") == "ephemeralcontainers"]
    assert mf and mf[0]["manager"] == "kubectl"
    assert "Ephemeral Containers:\n  dbg:" in kubectl("describe", "pod", "-n", ns, "p").stdout
    # a generated name when none is given, and a second one kept next to the first
    out = kubectl("debug", "-n", ns, "p", "--image=busybox", "--", "true")
    assert "Defaulting debug container name to debugger-" in out.stdout + out.stderr
    pod = json.loads(kubectl("get", "pod", "-n", ns, "p", "-o", "json").stdout)
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]][0] == "dbg"
    assert len(pod["spec"]["ephemeralContainers"]) == 2
    # the subresource's GET is the Pod
    with apiserver.http() as h:
        r = h.get(f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers")
        assert r.status_code == 200 and r.json()["kind"] == "Pod"
        assert len(r.json()["spec"]["ephemeralContainers"]) == 2
        # other verbs are not served on it
        assert h.delete(f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers").status_code == 405
        assert h.post(f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers", json={}).status_code == 405


def test_422s(kubectl, ns, apiserver):
    url = f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers"
    with apiserver.http() as h:
        def patch(*ecs: dict) -> object:
            return h.patch(url, content=json.dumps({"spec": {"ephemeralContainers": list(ecs)}}), headers=SMP)

        assert patch({"name": "one", "image": "busybox", "command": ["sh"]}).status_code == 200
        # changed (the strategic merge patch merges by name)
        r = patch({"name": "one", "image": "other"})
        assert r.status_code == 422 and r.json()["reason"] == "Invalid"
        assert r.json()["message"].startswith(
            'Pod "p" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers "one" may not be changed')
        # removed (a PUT of the pod without it)
        pod = h.get(url).json()
        pod["spec"]["ephemeralContainers"] = []
        r = h.put(url, json=pod)
        assert r.status_code == 422
        assert _causes(r) == [("spec.ephemeralContainers",
                               'Forbidden: existing ephemeral containers "one" may not be removed\n')]
        # a duplicate name, ports/resources/probes, an unknown target
        r = patch({"name": "app", "image": "busybox"})
        assert _causes(r) == [("spec.ephemeralContainers[0].name", 'Duplicate value: "app"')]
        r = patch({"name": "two", "image": "busybox", "targetContainerName": "nope",
                   "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}},
                   "readinessProbe": {"exec": {"command": ["true"]}}, "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}})
        assert r.status_code == 422
        assert _causes(r) == [
            ("spec.ephemeralContainers[0].targetContainerName", 'Not found: "nope"'),
            ("spec.ephemeralContainers[0].ports", "Forbidden: cannot be set for an Ephemeral Container"),
            ("spec.ephemeralContainers[0].resources", "Forbidden: cannot be set for an Ephemeral Container"),
            ("spec.ephemeralContainers[0].readinessProbe", "Forbidden: cannot be set for an Ephemeral Container"),
            ("spec.ephemeralContainers[0].lifecycle", "Forbidden: cannot be set for an Ephemeral Container")]
        # a PUT through the subresource changes nothing else
        pod = h.get(url).json()
        pod["metadata"]["labels"] = {"sneaky": "yes"}
        pod["spec"]["containers"][0]["image"] = "changed"
        pod["spec"]["ephemeralContainers"].append({"name": "three", "image": "busybox"})
        r = h.put(url, json=pod)
        assert r.status_code == 200
        got = r.json()
        assert "labels" not in got["metadata"] and got["spec"]["containers"][0]["image"] == "busybox"
        assert [c["name"] for c in got["spec"]["ephemeralContainers"]] == ["one", "three"]
        # a plain pod update may not touch them
        pod = h.get(f"/api/v1/namespaces/{ns}/pods/p").json()
        pod["spec"]["ephemeralContainers"] = pod["spec"]["ephemeralContainers"][:1]
        r = h.put(f"/api/v1/namespaces/{ns}/pods/p", json=pod)
        assert r.status_code == 422
        assert r.json()["message"].startswith('Pod "p" is invalid: spec: Forbidden: pod updates may not change fields')
        # nor may a create carry them
        r = h.post(f"/api/v1/namespaces/{ns}/pods", json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                     "ephemeralContainers": [{"name": "d", "image": "busybox"}]}})
        assert r.status_code == 422
        assert r.json()["message"] == 'Pod "q" is invalid: spec.ephemeralContainers: Forbidden: cannot be set on create'
        assert h.patch(f"/api/v1/namespaces/{ns}/pods/nope/ephemeralcontainers", content="{}",
                       headers=SMP).status_code == 404
    # kubectl words a 422 as Kubernetes' kubectl does
    res = kubectl("debug", "-n", ns, "p", "--image=busybox", "-c", "app", "--", "true", check=False)
    assert res.returncode != 0
    assert 'The Pod "p" is invalid: spec.ephemeralContainers[2].name: Duplicate value: "app"' in res.stderr


def test_rbac(kubectl, ns, apiserver, tmp_path: Path):
    user = f"dev-{uuid.uuid4().hex[:4]}"
    kubectl("create", "rolebinding", f"{user}-edit", "--clusterrole=edit", f"--user={user}", "-n", ns)
    kc = make_kubectl(apiserver.kubeconfig_for(user), tmp_path / "kc-user")
    deadline = time.monotonic() + 30
    while kc("get", "pods", "-n", ns, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the edit binding never took effect"
        time.sleep(0.2)
    # edit, like Kubernetes' default role, grants pods but not pods/ephemeralcontainers
    assert kc("auth", "can-i", "patch", "pods", "-n", ns, check=False).stdout.strip() == "yes"
    assert kc("auth", "can-i", "patch", "pods", "--subresource=ephemeralcontainers", "-n", ns,
              check=False).stdout.strip() == "no"
    res = kc("debug", "-n", ns, "p", "--image=busybox", "-c", "dbg", "--", "true", check=False)
    assert res.returncode != 0
    assert (f'User "{user}" cannot patch resource "pods/ephemeralcontainers" in API group "" in the '
            f'namespace "{ns}"') in res.stderr
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "debugger"},
            "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["update", "patch"]}]}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(role))
    kubectl("create", "rolebinding", f"{user}-debug", "--role=debugger", f"--user={user}", "-n", ns)
    deadline = time.monotonic() + 30
    while (res := kc("debug", "-n", ns, "p", "--image=busybox", "-c", "dbg", "--", "true", check=False)).returncode:
        assert time.monotonic() < deadline, res.stderr
        time.sleep(0.3)
    pod = json.loads(kubectl("get", "pod", "-n", ns, "p", "-o", "json").stdout)
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg"]


def test_simulated_nodes_report_ephemeral_containers(kubectl, apiserver, tmp_path: Path):
    """``controlplane agent --simulated``: a debugged pod shows its ephemeral container running."""
    from tests.fixtures.agent import _delete_node
    from tests.fixtures.scheduler import ProcessRunner

    prefix = f"esim{uuid.uuid4().hex[:4]}"
    name = f"eph-{uuid.uuid4().hex[:6]}"
    agent = ProcessRunner(tmp_path, ["agent", "--simulated", "--kubeconfig", str(apiserver.kubeconfig), "--nodes", "1",
                                     "--prefix", prefix, "--cpu", "4", "--memory", "8Gi", "--pods", "10"], "simagent").start()
    try:
        assert agent.wait_log("simulated nodes registered", 60), agent.log_tail()
        kubectl("create", "namespace", name)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"nodeName": f"{prefix}-0", "containers": [{"name": "app", "image": "busybox"}]}}
        kubectl("apply", "-n", name, "-f", "-", input=json.dumps(pod))
        kubectl("wait", "-n", name, "--for=condition=Ready", "pod/p", "--timeout=60s", timeout=90)
        for dbg in ("d1", "d2"):
            kubectl("debug", "-n", name, "p", "--image=busybox", "-c", dbg, "--", "sh")
        deadline = time.monotonic() + 30
        while True:
            st = json.loads(kubectl("get", "pod", "-n", name, "p", "-o", "json").stdout)["status"]
            ecs = {s["name"]: s for s in st.get("ephemeralContainerStatuses") or []}
            if set(ecs) == {"d1", "d2"}:
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.3)
        assert all("running" in s["state"] and s["ready"] is False for s in ecs.values())
        assert [c["name"] for c in st["containerStatuses"]] == ["app"] and st["phase"] == "Running"
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)
        agent.stop()
        _delete_node(apiserver, f"{prefix}-0")


def test_pod_security_checks_debug_containers(kubectl, ns):
    """PodSecurity admission judges the subresource's write: a privileged debugger (kubectl's
    ``sysadmin`` profile) is refused where ``baseline`` is enforced, so is ``general`` (it adds
    SYS_PTRACE to a debug container), ``baseline`` is not."""
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
    res = kubectl("debug", "-n", ns, "p", "--image=busybox", "--profile=sysadmin", "-c", "root", "--", "true",
                  check=False)
    assert res.returncode != 0
    assert 'violates PodSecurity "baseline:latest": privileged (container "root" must not set ' \
           'securityContext.privileged=true)' in res.stderr
    res = kubectl("debug", "-n", ns, "p", "--image=busybox", "--profile=general", "-c", "ptrace", "--", "true",
                  check=False)
    assert 'non-default capabilities (container "ptrace" must not include "SYS_PTRACE" in ' \
           'securityContext.capabilities.add)' in res.stderr
    kubectl("debug", "-n", ns, "p", "--image=busybox", "--profile=baseline", "-c", "plain", "--", "true")
