"""Learning from history, pure parts (``schedulers.ddqn.retrain``): decision records become an
openb pod list (latest record per pod, first-decision order, the pod's requests), nodes an
openb node list that the trace loader reads back; the promotion rule."""

from __future__ import annotations

import pytest

from schedulers.ddqn.retrain import NODE_COLUMNS, POD_COLUMNS, decide, history_rows, node_rows, write_csv
from schedulers.gpu.traces import load_nodes, load_pods


def rec(name, t, result="Scheduled", uid=None, gpu=(1, 460), models=()):
    return {"kind": "SchedulingDecision", "result": result, "decisionTime": f"2026-12-05T20:00:{t:02d}.000000Z",
            "pod": {"name": name, "namespace": "d", "uid": uid or name, "creationTimestamp": "2026-12-05T20:00:00Z",
                    "resources": {"cpuMilli": 2000, "memoryMiB": 4096, "gpuCount": gpu[0], "gpuMilli": gpu[1],
                                  "gpuModels": list(models)}}}


def test_history_rows_replay_in_decision_order(tmp_path):
    records = [rec("b", 5, "Unschedulable"), rec("a", 3), rec("b", 9), rec("c", 7, gpu=(0, 0)),
               rec("w", 8, gpu=(2, 1000), models=("V100", "T4")), {"kind": "SchedulingDecision", "pod": {"name": "x"}}]
    pods_now = {"a": {"metadata": {"deletionTimestamp": "2026-12-05T20:01:00Z"}}}
    rows = history_rows(records, pods_now)
    assert [r["name"] for r in rows] == ["d.a", "d.b", "d.c", "d.w"]  # first decision order; x has no requests
    a, b = rows[0], rows[1]
    assert (a["creation_time"], a["scheduled_time"], a["deletion_time"]) == (0, 3, 60)  # s from the first creation
    assert b["pod_phase"] == "Running" and b["scheduled_time"] == 5 and b["deletion_time"] == ""  # latest record wins
    path = write_csv(tmp_path / "pods.csv", POD_COLUMNS, rows)
    loaded = {p.name: p for p in load_pods(path)}
    assert (loaded["d.a"].cpu, loaded["d.a"].mem, loaded["d.a"].count, loaded["d.a"].milli) == (2000, 4096, 1, 460)
    assert loaded["d.c"].milli == 0 and loaded["d.w"].types == ("V100", "T4") and loaded["d.w"].tot == 2000


def test_node_rows_read_back_as_openb_nodes(tmp_path):
    nodes = [{"metadata": {"name": "g1", "labels": {"nvidia.com/gpu.product": "T4"}},
              "status": {"allocatable": {"cpu": "32", "memory": "64Gi", "nvidia.com/gpu": "2"}}},
             {"metadata": {"name": "c1", "labels": {}}, "status": {"allocatable": {"cpu": "3500m", "memory": "8Gi"}}},
             {"metadata": {"name": "off"}, "spec": {"unschedulable": True}, "status": {"allocatable": {"cpu": "1"}}}]
    path = write_csv(tmp_path / "nodes.csv", NODE_COLUMNS, node_rows(nodes))
    got = {n.name: n for n in load_nodes(path)}
    assert set(got) == {"g1", "c1"}
    assert (got["g1"].cpu_milli, got["g1"].memory_mib, got["g1"].gpu, got["g1"].model) == (32000, 65536, 2, "T4")
    assert (got["c1"].cpu_milli, got["c1"].gpu, got["c1"].model) == (3500, 0, "")


@pytest.mark.parametrize("cand,active,fgd,margin,want", [
    (95.2, 95.1, 95.0, 0.0, True), (95.1, 95.1, 95.0, 0.0, False), (95.2, 95.0, 95.3, 0.0, False),
    (95.2, 95.1, 95.0, 0.2, False), (None, 95.0, 95.0, 0.0, False), (95.0, None, 94.0, 0.0, True),
])
def test_promotion_rule(cand, active, fgd, margin, want):
    assert decide(cand, active, fgd, margin) is want


def test_retrainer_pass_is_level_based(tmp_path):
    """A pass retrains only with enough records newer than the last pass, counts its result,
    and a failing retrain is an 'error' that leaves the next pass to try again."""
    import asyncio

    from schedulers.ddqn import retrainer
    from schedulers.ddqn.retrain import RetrainConfig

    class Client:
        def __init__(self, times):
            self.items = [{"decisionTime": f"2026-12-05T20:00:{t:02d}.000000Z"} for t in times]

        async def list(self, res, namespace=None, **kw):
            return {"items": self.items}

    calls = []

    async def fake_retrain(client, cfg):
        calls.append(cfg.out)
        if len(calls) == 2:
            raise RuntimeError("training crashed")
        return {"promoted": len(calls) == 3, "evaluation": {"candidate": {"alloc_at_130": 95.1},
                                                            "active": {"alloc_at_130": 95.0}}}

    def runs(result):
        return retrainer.RUNS.labels(result)._value.get()

    before = {r: runs(r) for r in ("skipped", "error", "promoted", "refused")}
    cfg = RetrainConfig(out=tmp_path)
    t0 = 1796500800.0  # 2026-12-05T20:00:00Z
    client = Client([1, 2, 3])

    async def go():
        out = [await retrainer.one_pass(client, cfg, 0.0, 5, fake_retrain, clock=lambda: t0 + 10)]   # 3 < 5
        out.append(await retrainer.one_pass(client, cfg, 0.0, 2, fake_retrain, clock=lambda: t0 + 10))  # refused
        out.append(await retrainer.one_pass(client, cfg, t0 + 10, 1, fake_retrain, clock=lambda: t0 + 20))  # none new
        client.items += [{"decisionTime": "2026-12-05T20:00:30.000000Z"}]
        out.append(await retrainer.one_pass(client, cfg, t0 + 10, 1, fake_retrain, clock=lambda: t0 + 40))  # crash
        out.append(await retrainer.one_pass(client, cfg, t0 + 10, 1, fake_retrain, clock=lambda: t0 + 50))  # promoted
        return out

    got = asyncio.run(go())
    assert [r for r, _ in got] == ["skipped", "refused", "skipped", "error", "promoted"]
    assert [s for _, s in got] == [0.0, t0 + 10, t0 + 10, t0 + 10, t0 + 50]
    assert len(calls) == 3 and all(str(c).startswith(str(tmp_path)) for c in calls) and len(set(calls)) == 3
    assert {r: runs(r) - before[r] for r in before} == {"skipped": 2, "error": 1, "promoted": 1, "refused": 1}
    assert retrainer.ALLOC.labels("candidate")._value.get() == 95.1
