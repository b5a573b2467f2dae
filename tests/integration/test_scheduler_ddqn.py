"""The live scheduler binds pods with the ``ddqn`` profile (``schedulerName: ddqn-scheduler``):
real apiserver, real scheduler process, kubectl; the shipped DDQN weights score the nodes."""

from __future__ import annotations

import json

import pytest

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
