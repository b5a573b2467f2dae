"""The scheduler cache: assumed pods take resources at once, confirmation does not double
count, forgetting gives them back, node rebuilds keep the accounting, and the GPU view follows
the pods (recorded GPU index, or best fit when none is recorded)."""

from __future__ import annotations

from schedulers.framework.cache import Cache
from schedulers.framework.podinfo import ANN_GPU_INDEX, ANN_GPU_MILLI, PodInfo


def gpu_node(name, gpus=2):
    return {"metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "T4"}},
            "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "10", "nvidia.com/gpu": str(gpus)}}}


def pod(name, cpu="1", milli=None, index=None, whole=0):
    ann = {}
    if milli:
        ann[ANN_GPU_MILLI] = str(milli)
    if index is not None:
        ann[ANN_GPU_INDEX] = index
    req = {"cpu": cpu}
    if whole:
        req["nvidia.com/gpu"] = str(whole)
    return PodInfo.from_pod({"metadata": {"name": name, "namespace": "d", "uid": name, "annotations": ann},
                             "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": req}}]}})


def test_assume_confirm_forget():
    c = Cache()
    c.add_or_update_node(gpu_node("a"))
    c.refresh()
    p = pod("p", cpu="2")
    c.assume(p, "a")
    assert c.requested["cpu"][0] == 2000 and c.pod_count[0] == 1 and "p" in c.assumed
    c.add_pod(pod("p", cpu="2"), "a")  # the informer confirms the binding
    assert c.requested["cpu"][0] == 2000 and c.pod_count[0] == 1 and "p" not in c.assumed
    q = pod("q")
    c.assume(q, "a")
    c.forget(q)
    assert c.requested["cpu"][0] == 2000 and c.pod_count[0] == 1


def test_gpu_accounting_with_index_and_best_fit():
    c = Cache()
    c.add_or_update_node(gpu_node("a"))
    c.refresh()
    c.add_pod(pod("s1", milli=600, index="1"), "a")
    assert list(c.gpu.gpu_free[0, :2]) == [1000, 400]
    c.add_pod(pod("s2", milli=300), "a")  # no index recorded: tightest fit is GPU 1
    assert list(c.gpu.gpu_free[0, :2]) == [1000, 100]
    c.add_pod(pod("w", whole=1), "a")
    assert list(c.gpu.gpu_free[0, :2]) == [0, 100]
    c.remove_pod("s1")
    assert list(c.gpu.gpu_free[0, :2]) == [0, 700]
    assert c.gpu.cpu_used[0] == 2000 and c.gpu.pods_used[0] == 2


def test_rebuild_after_node_added_keeps_pods():
    c = Cache()
    c.add_or_update_node(gpu_node("b"))
    c.refresh()
    c.add_pod(pod("x", cpu="3", milli=500, index="0"), "b")
    c.add_or_update_node(gpu_node("a"))  # sorts before "b": rows shift
    c.refresh()
    assert c.row == {"a": 0, "b": 1}
    assert list(c.requested["cpu"]) == [0, 3000]
    assert list(c.gpu.gpu_free[1, :2]) == [500, 1000] and c.gpu.cpu_used[1] == 3000


def test_node_update_without_scheduling_change_is_ignored():
    c = Cache()
    n = gpu_node("a")
    assert c.add_or_update_node(n)
    c.refresh()
    n2 = {**n, "status": {**n["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
    assert not c.add_or_update_node(n2)
    n3 = {**n, "spec": {"unschedulable": True}}
    assert c.add_or_update_node(n3)
    c.refresh()
    assert list(c.unschedulable_rows()) == [0]
