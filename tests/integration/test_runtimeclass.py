"""RuntimeClass end to end with the real kubectl: ``node.k8s.io/v1`` RuntimeClasses are served
(kubectl's HANDLER column, kube-apiserver's 422s); the RuntimeClass admission plugin gives a pod
its class's overhead, nodeSelector and tolerations and refuses what Kubernetes refuses (an
unknown class, a conflicting selector, an overhead that is not the class's); and a real agent
runs a pod whose class names the ``runc`` handler (the Node lists it in
``status.runtimeHandlers``), while a class naming a handler this node does
not have fails the sandbox with containerd's words, as ``FailedCreatePodSandBox``."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from tests.fixtures.agent import HAVE_RUNC, AgentProcess, _delete_node, leftovers
from tests.fixtures.poll import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def rc(kubectl):
    """A unique suffix; the RuntimeClasses named with it are deleted afterwards."""
    suffix = uuid.uuid4().hex[:6]
    yield suffix
    out = kubectl("get", "runtimeclass", "-o", "name", check=False).stdout.split()
    mine = [n for n in out if n.endswith(suffix)]
    if mine:
        kubectl("delete", *mine, check=False)


@pytest.fixture
def ns(kubectl):
    name = f"rc-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def _apply(kubectl, doc: dict, ns: str | None = None, check: bool = True):
    args = ["apply", "-f", "-"] + (["-n", ns] if ns else [])
    return kubectl(*args, input=yaml.safe_dump(doc), check=check)


def _class(name: str, handler: str, **extra) -> dict:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": handler,
            **extra}


def _pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}], **spec}}


def test_runtimeclasses_are_served_and_validated(kubectl, rc):
    _apply(kubectl, _class(f"fast-{rc}", "runc"))
    out = kubectl("get", "runtimeclass", f"fast-{rc}").stdout
    assert out.split("\n")[0].split() == ["NAME", "HANDLER", "AGE"] and f"fast-{rc}" in out and "runc" in out, out
    bad = _apply(kubectl, _class(f"bad-{rc}", "Not_A_Label"), check=False)
    assert bad.returncode != 0 and 'The RuntimeClass "bad-' in bad.stderr and "handler: Invalid value: " \
        '"Not_A_Label": a lowercase RFC 1123 label must consist of' in bad.stderr, bad.stderr
    changed = kubectl("patch", "runtimeclass", f"fast-{rc}", "--type=merge", "-p", '{"handler":"kata"}', check=False)
    assert changed.returncode != 0 and 'handler: Invalid value: "kata": field is immutable' in changed.stderr, \
        changed.stderr
    neg = _apply(kubectl, _class(f"neg-{rc}", "runc", overhead={"podFixed": {"cpu": "-1"}}), check=False)
    assert neg.returncode != 0 and "overhead.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0" \
        in neg.stderr, neg.stderr
    dup = _apply(kubectl, _class(f"dup-{rc}", "runc", scheduling={"tolerations": [{"key": "a", "operator": "Exists"}] * 2}),
                 check=False)
    assert dup.returncode != 0 and "scheduling.tolerations[1]: Duplicate value" in dup.stderr, dup.stderr
    # discovery: the group and its resource, as kubectl api-resources lists it
    listed = kubectl("api-resources", "--api-group=node.k8s.io", "--no-headers").stdout
    assert listed.split() == ["runtimeclasses", "node.k8s.io/v1", "false", "RuntimeClass"], listed


def test_admission_applies_the_class(kubectl, rc, ns):
    _apply(kubectl, _class(f"gpu-{rc}", "runc", overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}},
                           scheduling={"nodeSelector": {"rc-test": rc},
                                       "tolerations": [{"key": "rc-test", "operator": "Exists", "effect": "NoSchedule"},
                                                       {"key": "dup", "operator": "Equal", "value": "x"}]}))
    _apply(kubectl, _pod("p", runtimeClassName=f"gpu-{rc}", nodeSelector={"zone": "a"},
                         tolerations=[{"key": "dup", "operator": "Equal", "value": "x"}]), ns)
    spec = json.loads(kubectl("get", "pod", "p", "-n", ns, "-o", "json").stdout)["spec"]
    assert spec["overhead"] == {"cpu": "250m", "memory": "120Mi"}, spec.get("overhead")
    assert spec["nodeSelector"] == {"zone": "a", "rc-test": rc}
    keys = [(t.get("key"), t.get("effect")) for t in spec["tolerations"]]
    # the pod's own toleration is kept once; the class's added; DefaultTolerationSeconds' two follow
    assert keys.count(("dup", None)) == 1 and ("rc-test", "NoSchedule") in keys, keys

    missing = _apply(kubectl, _pod("q", runtimeClassName=f"nope-{rc}"), ns, check=False)
    assert missing.returncode != 0 and \
        f'pods "q" is forbidden: pod rejected: RuntimeClass "nope-{rc}" not found' in missing.stderr, missing.stderr
    conflict = _apply(kubectl, _pod("r", runtimeClassName=f"gpu-{rc}", nodeSelector={"rc-test": "other"}), ns,
                      check=False)
    assert conflict.returncode != 0 and (f"conflict: runtimeClass.scheduling.nodeSelector[rc-test] = {rc}; "
                                         "pod.spec.nodeSelector[rc-test] = other") in conflict.stderr, conflict.stderr
    wrong = _apply(kubectl, _pod("s", runtimeClassName=f"gpu-{rc}", overhead={"cpu": "1"}), ns, check=False)
    assert wrong.returncode != 0 and \
        "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead" in wrong.stderr, wrong.stderr
    alone = _apply(kubectl, _pod("t", overhead={"cpu": "1"}), ns, check=False)
    assert alone.returncode != 0 and \
        "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead" in alone.stderr, \
        alone.stderr
    assert kubectl("get", "pods", "-n", ns, "-o", "name").stdout.split() == ["pod/p"]


@pytest.mark.runc
@pytest.mark.timeout(300)
def test_agent_runs_the_runc_handler_and_refuses_others(apiserver, local_registry, kubectl, rc, ns, tmp_path):
    if not HAVE_RUNC:
        pytest.fail("this test needs root and runc")
    node = f"rc{uuid.uuid4().hex[:6]}"
    agent = AgentProcess(tmp_path / node, apiserver, node, local_registry.url)
    agent.start()
    try:
        _apply(kubectl, _class(f"runc-{rc}", "runc"))
        _apply(kubectl, _class(f"kata-{rc}", "kata"))
        _apply(kubectl, _pod("ok", nodeName=node, runtimeClassName=f"runc-{rc}", terminationGracePeriodSeconds=0), ns)
        _apply(kubectl, _pod("no", nodeName=node, runtimeClassName=f"kata-{rc}", terminationGracePeriodSeconds=0), ns)
        res = kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/ok", "--timeout=120s", timeout=150, check=False)
        assert res.returncode == 0, f"{res.stderr}\n{agent.log_tail(40)}"
        handlers = json.loads(kubectl("get", "node", node, "-o", "json").stdout)["status"].get("runtimeHandlers")
        assert [h["name"] for h in handlers or []] == ["", "runc"], handlers

        def refused() -> str | None:
            evs = json.loads(kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=no",
                                     "-o", "json").stdout)["items"]
            msgs = [e["message"] for e in evs if e.get("reason") == "FailedCreatePodSandBox"]
            return msgs[0] if msgs else None

        msg = wait_for("FailedCreatePodSandBox for the kata pod", refused, 60, diag=lambda: agent.log_tail(30))
        assert msg == ('Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox '
                       'runtime: no runtime for "kata" is configured'), msg
        pod = json.loads(kubectl("get", "pod", "no", "-n", ns, "-o", "json").stdout)
        assert pod["status"]["phase"] == "Pending" and not pod["status"].get("podIP"), pod["status"]
        kubectl("delete", "pod", "ok", "no", "-n", ns, "--wait=true", "--timeout=60s", timeout=90)
    finally:
        agent.stop()
        agent.cleanup()
        _delete_node(apiserver, node)
    assert leftovers(agent.root / "runtime", node) == []
