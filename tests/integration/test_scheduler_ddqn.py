"""The live scheduler binds pods with the ``ddqn`` profile (``schedulerName: ddqn-scheduler``):
real apiserver, real scheduler process, kubectl; the shipped DDQN weights score the nodes."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.scheduler import REPO
from tests.integration.test_scheduler_live import add_node, ns, pod

pytestmark = pytest.mark.integration

GPU_MILLI = "scheduling.controlplane.io/gpu-milli"
GPU_MODEL = "scheduling.controlplane.io/gpu-model"
GPU_INDEX = "scheduling.controlplane.io/gpu-index"


def _gpu_pod(name: str, n: str, suite: str, gpus: int) -> str:
    w = json.loads(pod(name, n, suite, cpu="1", scheduler="ddqn-scheduler", limits={"nvidia.com/gpu": str(gpus)}))
    w["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = str(gpus)
    return json.dumps(w)


def test_ddqn_profile_binds_shared_and_whole_gpu_pods(sched_cluster):
    c = sched_cluster
    n = ns(c, "ddqn")
    add_node(c, "d-cpu", "ddqn", cpu="32")
    add_node(c, "d-t4", "ddqn", cpu="32", memory="64Gi", gpus=2, model="T4")
    add_node(c, "d-v100", "ddqn", cpu="64", memory="128Gi", gpus=8, model="V100")
    # shared pods restricted to T4 must land on the T4 node, on a real GPU index
    for i in range(3):
        c.apply(pod(f"share{i}", n, "ddqn", scheduler="ddqn-scheduler",
                    annotations={GPU_MILLI: "400", GPU_MODEL: "T4"}))
    for i in range(3):
        assert c.wait_bound(n, f"share{i}", timeout=60) == "d-t4", c.scheduler.log_tail()
        p = c.get("pod", f"share{i}", n)
        assert p["metadata"]["annotations"].get(GPU_INDEX) in ("0", "1")
    # its decision record in the API shows DDQN's scores and value estimates
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not c.api_decisions(n, "share0"):
        time.sleep(0.2)
    [rec] = c.api_decisions(n, "share0")
    assert rec["profile"] == "ddqn-scheduler" and rec["node"] == "d-t4"
    ddqn = {e["name"]: e for e in next(x for x in rec["candidates"] if x["chosen"])["plugins"]}["DDQN"]
    assert isinstance(ddqn["value"], float) and ddqn["weight"] == 1000 and ddqn["weighted"] == 1000 * ddqn["normalized"]
    # three 400m shares cannot all sit on one GPU: both T4 GPUs are in use
    idx = {c.get("pod", f"share{i}", n)["metadata"]["annotations"][GPU_INDEX] for i in range(3)}
    assert idx == {"0", "1"}
    # a whole 8-GPU pod only fits the V100 node
    c.apply(_gpu_pod("whole8", n, "ddqn", 8))
    assert c.wait_bound(n, "whole8", timeout=60) == "d-v100"
    # a CPU-only pod through the same profile is bound too
    c.apply(pod("cpuonly", n, "ddqn", cpu="2", scheduler="ddqn-scheduler"))
    assert c.wait_bound(n, "cpuonly", timeout=60) is not None
    # nothing left for another 8-GPU pod: FailedScheduling from the ddqn profile
    c.apply(_gpu_pod("whole8b", n, "ddqn", 8))
    ev = c.wait_event(n, "whole8b", "FailedScheduling")
    assert ev and "Insufficient nvidia.com/gpu" in ev[0]["message"]


def _cli(c, *args: str, check: bool = True):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "controlplane", "ddqn", "--kubeconfig", str(c.api.kubeconfig), *args],
                       capture_output=True, text=True, timeout=120, cwd=str(REPO))
    if check and r.returncode != 0:
        raise AssertionError(f"ddqn {args}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def _model_metric(c) -> tuple[set, float]:
    import re

    text = c.metrics()
    info = set(re.findall(r'^scheduler_ddqn_model_info\{digest="([^"]+)",version="([^"]+)"\} 1\.0$', text, re.M))
    m = re.search(r"^scheduler_ddqn_model_load_errors_total ([0-9.]+)$", text, re.M)
    return {v for _, v in info}, float(m.group(1)) if m else 0.0


def _wait(cond, timeout: float = 20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.3)
    return cond()


def test_model_versions_promote_refuse_rollback(sched_cluster, tmp_path):
    """Models live in the API; a corrupt or incompatible model is refused with a clear error
    (by the CLI before it is stored, and by the scheduler if one is activated behind its back),
    and the scheduler keeps the model it had; rollback is one command."""
    import base64

    from schedulers.ddqn import model as qmodel
    from schedulers.ddqn.versions import SHIPPED_PATH

    c = sched_cluster
    st = json.loads(_cli(c, "status").stdout)
    assert st["active"]["version"] == "shipped" and st["active"]["digest"].startswith("sha256:")
    good = SHIPPED_PATH.read_bytes()
    # corrupt: weights changed after the header's sha256 was written
    bad = tmp_path / "corrupt.bin"
    bad.write_bytes(good[:-8] + b"\x00" * 8)
    r = _cli(c, "promote", str(bad), check=False)
    assert r.returncode == 1 and "sha256 mismatch" in r.stderr and "refused" in r.stderr, r.stderr
    # incompatible: made for other features
    raw = good
    head_end = raw.index(b"\n", len(qmodel.MAGIC))
    header = json.loads(raw[len(qmodel.MAGIC):head_end])
    header["feature_spec"] = "v0-some-other-features"
    other = tmp_path / "other.bin"
    other.write_bytes(qmodel.MAGIC + json.dumps(header, sort_keys=True).encode() + raw[head_end:])
    r = _cli(c, "promote", str(other), check=False)
    assert r.returncode == 1 and "feature spec mismatch" in r.stderr, r.stderr
    assert json.loads(_cli(c, "status").stdout)["versions"] == []  # nothing stored
    # a good one (the shipped weights, saved with other metadata: another file, another digest)
    net, _ = qmodel.load(SHIPPED_PATH)
    v1 = tmp_path / "v1.bin"
    qmodel.save(net, v1, meta={"note": "test upload"})
    out = json.loads(_cli(c, "promote", str(v1)).stdout)
    assert out["version"] == "v1" and out["previous"] == "shipped"
    assert _wait(lambda: _model_metric(c)[0] == {"v1"}), _model_metric(c)
    assert c.wait_event("kube-system", "ddqn-model", "ModelLoaded")
    # a corrupt version activated behind the CLI's back: the scheduler refuses it, keeps v1
    errors_before = _model_metric(c)[1]
    c.apply(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "ddqn-model-v2", "namespace": "kube-system", "labels": {"scheduling.controlplane.io/ddqn-model": "true"}},
        "data": {"version": "v2"}, "binaryData": {"model.bin": base64.b64encode(good[:100]).decode()}}))
    c.kubectl("-n", "kube-system", "patch", "configmap", "ddqn-model", "--type=merge", "-p",
              json.dumps({"data": {"version": "v2", "digest": "", "previous": "v1"}}))
    assert _wait(lambda: _model_metric(c)[1] > errors_before), c.scheduler.log_tail()
    assert _model_metric(c)[0] == {"v1"}
    ev = c.wait_event("kube-system", "ddqn-model", "ModelRefused")
    assert ev and ev[0]["type"] == "Warning", ev
    assert ev[0]["message"].startswith("keeping v1: model version v2 refused: ") and "corrupt header" in ev[0]["message"], ev
    # the DDQN profile still schedules (with v1)
    n = ns(c, "ddqn-models")
    add_node(c, "dm-0", "ddqn-models", cpu="32", gpus=2, model="T4")
    c.apply(pod("after", n, "ddqn-models", scheduler="ddqn-scheduler", annotations={GPU_MILLI: "300"}))
    assert c.wait_bound(n, "after", timeout=60) == "dm-0"
    # rollback is one command: back to v1 (the version v2 replaced)
    out = json.loads(_cli(c, "rollback").stdout)
    assert out["version"] == "v1" and out["previous"] == "v2"
    assert c.wait_event("kube-system", "ddqn-model", "ModelRolledBack")
    r = _cli(c, "rollback", check=False)  # "back" again would be v2, which is corrupt: refused
    assert r.returncode == 1 and "model version v2 refused" in r.stderr, r.stderr
    assert json.loads(_cli(c, "status").stdout)["active"]["version"] == "v1"
