"""The HPA controller's cheap paths give what the plain ones gave: the milli-quantity strings
of ``currentMetrics``, the status copy, the pod facts ``group_pods`` reads, and the resync
that keeps the HPAs of a wave together (an HPA in flight at a resync runs one period after
it; one already waiting keeps its earlier time, as client-go's delaying queue does)."""

from __future__ import annotations

import asyncio
import random
from fractions import Fraction

import pytest

from controlplane.client import resources as R
from controlplane.client.informer import Informer
from controlplane.client.workqueue import FakeClock, WorkQueue
from controlplane.controllers import horizontalpodautoscaler as H
from controlplane.controllers import replicacalculator as rc
from controlplane.machinery.quantity import format_quantity
from controlplane.machinery.selectors import parse_label_selector
from controlplane.machinery.timestamps import rfc3339

NOW = 1_700_000_000.0

_rng = random.Random(16)
MILLI = ([0, 1, -1, 7, 999, 1000, 1001, 1500, 2000, -5000, 10**6, 10**9, 10**21, 10**22, 10**24, 123456789000,
          52428800000, 4 * 10**18 + 1]
         + [_rng.randint(-10**12, 10**12) for _ in range(300)]
         + [_rng.randint(0, 999) * 10**_rng.randint(0, 26) for _ in range(300)])


@pytest.mark.parametrize("v", MILLI)
def test_milli_quantity_string_is_the_canonical_one(v: int) -> None:
    assert H._milli_q(v) == format_quantity(Fraction(v, 1000))


def test_status_copy_is_deep_and_equal() -> None:
    st = {"currentReplicas": 3, "conditions": [{"type": "AbleToScale", "status": "True"}],
          "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "50m"}}}]}
    cp = H._copy_json(st)
    assert cp == st
    cp["conditions"][0]["status"] = "False"
    cp["currentMetrics"][0]["resource"]["current"]["averageValue"] = "1"
    assert st["conditions"][0]["status"] == "True"
    assert st["currentMetrics"][0]["resource"]["current"]["averageValue"] == "50m"


def _pod(name: str, phase: str = "Running", ready: str | None = "True", started: float | None = NOW - 3600,
         transition: float = NOW - 3000, deleting: bool = False) -> dict:
    p = {"metadata": {"name": name}, "status": {"phase": phase, "startTime": rfc3339(started) if started else None,
                                               "conditions": [{"type": "Ready", "status": ready,
                                                               "lastTransitionTime": rfc3339(transition)}]
                                               if ready else []}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    return p


PODS = [_pod("a"), _pod("b", phase="Pending"), _pod("c", phase="Failed"), _pod("d", deleting=True),
        _pod("e", ready=None), _pod("f", started=None), _pod("g", ready="False", started=NOW - 120, transition=NOW - 120),
        _pod("h", started=NOW - 60, transition=NOW - 10), _pod("i", started=NOW - 60, transition=NOW - 50),
        _pod("j", ready="False"), _pod("k")]


@pytest.mark.parametrize("resource", ["cpu", "memory"])
@pytest.mark.parametrize("ts", [NOW - 5, NOW - 30])
def test_group_pods_with_kept_facts_is_group_pods(resource: str, ts: float) -> None:
    metrics = {p["metadata"]["name"]: rc.PodMetric(100, ts, 15.0) for p in PODS if p["metadata"]["name"] != "k"}
    facts = rc.pod_facts(PODS)
    assert rc.group_pods(PODS, metrics, resource, NOW, facts=facts) == rc.group_pods(PODS, metrics, resource, NOW)


class _Manager:
    """What HPAController needs of a manager, without a server."""

    def __init__(self) -> None:
        self.client = None
        self.infs: dict = {}
        self.added: list = []

    def informer(self, res, namespace=None):
        return self.infs.setdefault(res, Informer(None, res))

    def recorder(self, component):
        return None

    def add(self, runnable) -> None:
        self.added.append(runnable)


def test_resync_pins_hpas_in_flight_and_keeps_earlier_times() -> None:
    m = _Manager()
    ctl = H.HPAController(m, sync_period=15.0)
    assert ctl.resyncer in m.added
    clock = FakeClock(100.0)
    ctl.controller.queue = q = WorkQueue("hpa-test", clock=clock)
    for name in ("queued", "processing", "waiting-early", "waiting-late"):
        ctl.hpa_inf._upsert({"metadata": {"name": name, "namespace": "ns"}})
    q.add("ns/queued")
    q.add("ns/processing")
    assert q.get_nowait() == "ns/queued"  # FIFO: take both, give "queued" back as queued
    assert q.get_nowait() == "ns/processing"
    q.done("ns/queued")
    q.add("ns/queued")
    q.add_after("ns/waiting-early", 5.0)   # due at 105, before the resync's 115
    q.add_after("ns/waiting-late", 14.0)   # due at 114
    ctl.resyncer.resync()
    assert q._waiting["ns/waiting-early"] == 105.0
    assert q._waiting["ns/waiting-late"] == 114.0
    assert q._waiting["ns/queued"] == 115.0 and q._waiting["ns/processing"] == 115.0
    # the sync ends later and asks for one period after its end: the resync's time stays
    clock.step(3.0)
    q.done("ns/processing")
    q.add_after("ns/processing", 15.0)
    assert q._waiting["ns/processing"] == 115.0


class _ListClient:
    def __init__(self) -> None:
        self.requests = 0

    async def request(self, method: str, path: str, **_kw) -> dict:
        self.requests += 1
        await asyncio.sleep(0.01)
        ns = path.split("/")[5]
        return {"items": [{"metadata": {"name": "p", "namespace": ns, "labels": {"app": "a"}},
                           "timestamp": "2026-12-06T00:00:00Z", "window": "15s",
                           "containers": [{"name": "c", "usage": {"cpu": "5m"}}]}]}


def _lists(source: str) -> float:
    return H.RESOURCE_METRICS_LISTS.labels(source)._value.get()


async def test_one_list_per_namespace_per_wave_and_counted() -> None:
    client = _ListClient()
    mc = H.MetricsClient(client, None, resource_ttl=5.0)  # type: ignore[arg-type]
    req0, shared0 = _lists("request"), _lists("shared")
    sel = parse_label_selector("app=a")
    # ten syncs of two namespaces at once, then ten more while the lists are fresh
    for _ in range(2):
        got = await asyncio.gather(*(mc.resource("cpu", f"ns-{i % 2}", sel) for i in range(10)))
        assert all(g[0]["p"].value == 5 for g in got)
    assert client.requests == 2
    assert (_lists("request") - req0, _lists("shared") - shared0) == (2, 18)


async def test_prefetch_stays_a_window_ahead_of_the_syncs_and_requests_once() -> None:
    client = _ListClient()
    mc = H.MetricsClient(client, None, resource_ttl=5.0)  # type: ignore[arg-type]
    sel = parse_label_selector("app=a")
    pre = asyncio.ensure_future(mc.prefetch(["ns-0", "ns-1", "ns-2", "ns-3"], ahead=2))
    await asyncio.sleep(0.05)
    assert client.requests == 2  # two lists ahead, none read yet
    await mc.resource("cpu", "ns-0", sel)
    await asyncio.sleep(0.05)
    assert client.requests == 3
    for ns in ("ns-1", "ns-2", "ns-3", "ns-0"):
        await mc.resource("cpu", ns, sel)
    await asyncio.wait_for(pre, 1)
    assert client.requests == 4  # each namespace once, the syncs read the prefetched lists
