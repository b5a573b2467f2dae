"""The HPA controller's cheap paths give what the plain ones gave: the milli-quantity strings
of ``currentMetrics``, the status copy, the pod facts ``group_pods`` reads, and the resync
that keeps the HPAs of a wave together (an HPA in flight at a resync runs one period after
it; one already waiting keeps its earlier time, as client-go's delaying queue does)."""

from __future__ import annotations

import asyncio
import json
import random
from fractions import Fraction

import msgspec
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

    def client_for(self, identity):
        return self.client

    def recorder(self, component, identity=None):
        return None

    def add(self, runnable) -> None:
        self.added.append(runnable)


def _waves() -> tuple[float, float]:
    h = H.RESYNC_WAVE_SECONDS
    return h._sum.get(), sum(b.get() for b in h._buckets)


def test_a_wave_ends_with_the_last_sync_from_its_due_time_on() -> None:
    """The resync comes while the previous wave is still syncing: those syncs (begun before
    the new wave's due time) are not the new wave's, and the next resync (just after the new
    wave's due time, before its end) does not drop it; a wave ends with its last HPA's sync,
    or when the last one not yet synced is deleted."""
    ctl = H.HPAController(_Manager(), sync_period=15.0)
    ctl.controller.queue = WorkQueue("hpa-wave-test", clock=FakeClock(100.0))
    for name in ("a", "b", "c"):
        ctl.hpa_inf._upsert({"metadata": {"name": name, "namespace": "ns"}})
    r = ctl.resyncer
    clock = [1000.0]
    r.monotonic = lambda: clock[0]
    s0, n0 = _waves()
    now = clock[0]
    r.resync()  # nothing queued earlier: due one period from now
    r.synced("ns/a", now)  # the previous wave's sync of a
    r.synced("ns/a", now + 15.2)
    clock[0] = now + 15.05
    r.resync()  # the next resync, before the first wave's end
    r.synced("ns/b", now + 15.3)
    assert _waves() == (s0, n0) and len(r.waves) == 2
    r.synced("ns/b", now + 15.4)  # b's sync counts once per wave: not yet the second's (not due)
    assert len(r.waves[1][2]) == 3
    r.forget("ns/c")  # deleted before its sync: the first wave is done without it
    assert len(r.waves) == 1 and _waves()[1] == n0 + 1
    # the second wave: ends with its last sync
    for k in ("ns/a", "ns/b"):
        r.synced(k, now + 30.1)
    assert _waves()[1] == n0 + 2 and r.waves == []


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

    async def request(self, method: str, path: str, decode=None, **_kw) -> object:
        """As ``RestClient.request``: the JSON body, through ``decode`` when given."""
        self.requests += 1
        await asyncio.sleep(0.01)
        ns = path.split("/")[5]
        body = {"items": [{"metadata": {"name": "p", "namespace": ns, "labels": {"app": "a"}},
                           "timestamp": "2026-12-06T00:00:00Z", "window": "15s",
                           "containers": [{"name": "c", "usage": {"cpu": "5m"}}]}]}
        return body if decode is None else decode(json.dumps(body).encode())


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


def _requested(p: dict, cpu: str = "100m") -> dict:
    return {**p, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}


def _plain_resource_replicas(current: int, target: int, resource: str, pods: list[dict], metrics: dict,
                             now: float) -> tuple[int, int, int] | str:
    """``resource_replicas`` without kept requests or facts: the straightforward path."""
    try:
        return rc.resource_replicas(current, target, resource, pods, metrics, now)
    except rc.CalcError as e:
        return str(e)


def _kept_resource_replicas(current: int, target: int, resource: str, pods: list[dict], metrics: dict,
                            now: float) -> tuple[int, int, int] | str:
    before = dict(metrics)
    try:
        return rc.resource_replicas(current, target, resource, pods, metrics, now,
                                    requests=rc.pod_requests(pods, resource), facts=rc.pod_facts(pods))
    except rc.CalcError as e:
        return str(e)
    finally:
        assert metrics == before  # the caller's (shared) metrics are never changed


_rr = random.Random(1606)


def _case(i: int) -> tuple[list[dict], dict]:
    """A random pods list (ready, pending, failed, deleted, unready, young pods) with metrics
    for some of them and for pods outside it."""
    pods, metrics = [], {}
    for j in range(_rr.randint(1, 12)):
        kind = _rr.choice(["ready"] * 6 + ["pending", "failed", "deleting", "noready", "nostart", "young", "false"])
        name = f"p{j}"
        p = {"ready": lambda: _pod(name), "pending": lambda: _pod(name, phase="Pending"),
             "failed": lambda: _pod(name, phase="Failed"), "deleting": lambda: _pod(name, deleting=True),
             "noready": lambda: _pod(name, ready=None), "nostart": lambda: _pod(name, started=None),
             "young": lambda: _pod(name, started=NOW - 60, transition=NOW - _rr.choice([10, 50])),
             "false": lambda: _pod(name, ready="False", started=NOW - _rr.choice([120, 3600]),
                                   transition=NOW - 100)}[kind]()
        pods.append(_requested(p, _rr.choice(["100m", "250m", "1", "0"] if i % 7 == 0 else ["100m", "250m", "1"])))
        if _rr.random() < 0.85:
            metrics[name] = rc.PodMetric(_rr.choice([0, 10, 50, 90, 100, 120, 400]) * 1, NOW - _rr.choice([5, 30]), 15.0)
    if _rr.random() < 0.2:
        metrics["outsider"] = rc.PodMetric(500, NOW - 5, 15.0)
    return pods, metrics


CASES = [_case(i) for i in range(400)]


@pytest.mark.parametrize("i", range(len(CASES)))
@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_resource_replicas_with_kept_facts_is_the_plain_computation(i: int, resource: str) -> None:
    pods, metrics = CASES[i]
    for current, target in ((len(pods), 50), (3, 100), (10, 80)):
        assert (_kept_resource_replicas(current, target, resource, pods, metrics, NOW)
                == _plain_resource_replicas(current, target, resource, pods, metrics, NOW))


@pytest.mark.parametrize("i", range(0, len(CASES), 5))
def test_ready_sums_are_group_pods_and_the_utilization_sums(i: int) -> None:
    pods, metrics = CASES[i]
    requests = rc.pod_requests(pods, "cpu")
    ready, unready, missing, mtotal, rtotal, n = rc.ready_sums(metrics, requests, "cpu", NOW, rc.pod_facts(pods))
    g_ready, g_unready, g_missing, g_ignored = rc.group_pods(pods, metrics, "cpu", NOW)
    assert (ready, unready, missing) == (g_ready, g_unready, g_missing)
    kept = {k: v for k, v in metrics.items() if k not in g_ignored | g_unready and k in requests}
    assert (mtotal, rtotal, n) == (sum(m.value for m in kept.values()), sum(requests[k] for k in kept), len(kept))


# -- the steady path: the replica count from sums, when every pod is ready with one metric --

STEADY = [
    # (pods, steady, cpu_after)
    ([_pod("a"), _pod("b")], True, NOW - 3600 + 300),
    ([_pod("a"), _pod("b", started=NOW - 100, transition=NOW - 90)], True, NOW - 100 + 300),
    ([_pod("a"), _pod("b", phase="Pending")], False, None),
    ([_pod("a"), _pod("b", phase="Failed")], False, None),
    ([_pod("a"), _pod("b", deleting=True)], False, None),
    ([_pod("a"), _pod("a")], False, None),  # a name twice
    ([_pod("a"), _pod("b", ready=None)], True, None),
    ([_pod("a"), _pod("b", started=None)], True, None),
    # Ready False since it started (within the initial readiness delay): unready for good
    ([_pod("a"), _pod("b", ready="False", started=NOW - 120, transition=NOW - 120)], True, None),
    # Ready False but it was ready once (transition long after the start): ready for CPU
    ([_pod("a"), _pod("b", ready="False", started=NOW - 3600, transition=NOW - 100)], True, NOW - 3600 + 300),
    ([], True, 0.0),
]


@pytest.mark.parametrize(("pods", "steady", "cpu_after"), STEADY)
def test_steady_summary(pods: list[dict], steady: bool, cpu_after: float | None) -> None:
    s = rc.steady_summary(rc.pod_facts(pods))
    assert (s.steady, s.cpu_after) == (steady, cpu_after if steady else None)
    assert s.names == frozenset(p["metadata"]["name"] for p in pods)


def _steady_case(i: int) -> tuple[list[dict], dict]:
    """Mostly steady pods (old and ready; sometimes young, unready, pending) with metrics for
    all of them or all but one, and sometimes one for a pod outside them."""
    r = random.Random(7000 + i)
    pods, metrics = [], {}
    for j in range(r.randint(1, 10)):
        kind = r.choice(["ready"] * 12 + ["young", "false", "falseonce", "noready", "pending"])
        name = f"p{j}"
        p = {"ready": lambda: _pod(name), "young": lambda: _pod(name, started=NOW - 60, transition=NOW - 50),
             "false": lambda: _pod(name, ready="False", started=NOW - 120, transition=NOW - 120),
             "falseonce": lambda: _pod(name, ready="False", started=NOW - 3600, transition=NOW - 100),
             "noready": lambda: _pod(name, ready=None), "pending": lambda: _pod(name, phase="Pending")}[kind]()
        pods.append(_requested(p, r.choice(["100m", "250m", "1", "0"] if i % 9 == 0 else ["100m", "250m", "1"])))
        metrics[name] = rc.PodMetric(r.choice([0, 10, 50, 90, 100, 120, 400]), NOW - r.choice([5, 30]), 15.0)
    if r.random() < 0.15:
        metrics.pop(f"p{r.randrange(len(pods))}")
    if r.random() < 0.1:
        metrics["outsider"] = rc.PodMetric(500, NOW - 5, 15.0)
    return pods, metrics


@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_steady_replicas_are_the_per_pod_computation(resource: str) -> None:
    taken = 0
    for i in range(600):
        pods, metrics = _steady_case(i)
        summary = rc.steady_summary(rc.pod_facts(pods))
        requests = rc.pod_requests(pods, resource)
        for current, target in ((len(pods), 50), (3, 100), (10, 80)):
            fast = rc.steady_resource_replicas(current, target, resource, summary, set(metrics),
                                               sum(m.value for m in metrics.values()), sum(requests.values()),
                                               NOW, rc.TOLERANCE)
            if fast is not None:
                taken += 1
                assert fast == _kept_resource_replicas(current, target, resource, pods, metrics, NOW), (i, current, target)
    assert taken > 300  # the steady path is taken in many cases (each counted thrice), not only trivially


def _metric_item(name: str, labels: dict, containers: list[dict]) -> H._PodMetrics:
    return H._PodMetrics(H._Meta(name, "ns", msgspec.Raw(msgspec.json.encode(labels))), rfc3339(NOW - 5), "15.2s",
                         [H._ContainerMetrics(c["name"], c["usage"]) for c in containers])


USAGE_TOTALS = [
    # (each pod's containers' usage, expected total or None)
    ([[{"cpu": "1500001n"}], [{"cpu": "250m"}]], 2 + 250),  # nanocores rounded up per pod
    ([[{"cpu": "1"}, {"cpu": "100m"}], [{"cpu": "3000000n"}]], 1100 + 3),
    ([[{"cpu": 2}], [{"cpu": "0.5"}]], 2000 + 500),  # numbers and decimal forms
    ([[{"memory": "10Mi"}]], None),  # the resource missing
    ([[{"cpu": "1m"}, {"memory": "1Mi"}]], None),  # missing in one container
    ([[]], None),  # no containers
]


@pytest.mark.parametrize(("usages", "total"), USAGE_TOTALS)
def test_usage_total_is_the_sum_of_the_pod_values(usages: list[list[dict]], total: int | None) -> None:
    items = [(i, _metric_item(f"p{i}", {"app": "a"}, [{"name": f"c{k}", "usage": u} for k, u in enumerate(cs)]))
             for i, cs in enumerate(usages)]
    got = H._usage_total(items, "cpu")
    values, err = H._pod_metric_values(items, "cpu", "")
    if total is None:
        assert got is None
        assert len(values) < len(items) or err is not None
    else:
        assert got == ({f"p{i}" for i in range(len(usages))}, total)
        assert sum(v.value for v in values.values()) == total
    dup = items + [(len(items), items[0][1])]  # a name twice
    assert H._usage_total(dup, "cpu") is None


def test_usage_total_only_for_one_label_set() -> None:
    items = [_metric_item("a1", {"app": "a"}, [{"name": "c", "usage": {"cpu": "10m"}}]),
             _metric_item("a2", {"app": "a", "tier": "x"}, [{"name": "c", "usage": {"cpu": "20m"}}]),
             _metric_item("b1", {"app": "b"}, [{"name": "c", "usage": {"cpu": "40m"}}])]
    entry = H._NamespacePodMetrics(items, 0.0)
    assert entry.usage_total(parse_label_selector("app=b"), "cpu") == ({"b1"}, 40)
    assert entry.usage_total(parse_label_selector("app=a"), "cpu") is None  # two label sets: per pod
    assert entry.usage_total(parse_label_selector("app=c"), "cpu") is None
    assert entry.usage_total(parse_label_selector("app=a,tier=x"), "cpu") == ({"a2"}, 20)
