"""The metrics component's pure parts: decoding a kubelet page, metrics-server's storage
rules (rates between two points, fresh and restarted containers, nodes and pods dropped when a
cycle misses them), the Metrics API's quantities and durations, and the scraper's URL and
address rules."""

from __future__ import annotations

import ipaddress

import pytest

from controlplane.agent import stats_format
from controlplane.metrics.api import cpu_quantity, go_duration, memory_quantity
from controlplane.metrics.decode import NodeBatch, Point, decode
from controlplane.metrics.scraper import NodeUnreachable, ScrapeConfig, node_url
from controlplane.metrics.storage import Storage
from tests.unit.test_agent_stats import _node

PAGE = """# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 100.5 1700000000000
node_memory_working_set_bytes 2048 1700000000000
container_cpu_usage_seconds_total{container="app",namespace="ns",pod="p"} 10 1700000000100
container_memory_working_set_bytes{container="app",namespace="ns",pod="p"} 4096 1700000000100
container_start_time_seconds{container="app",namespace="ns",pod="p"} 1699999000 1699999000000
container_cpu_usage_seconds_total{container="nomem",namespace="ns",pod="p"} 3 1700000000100
pod_cpu_usage_seconds_total{namespace="ns",pod="p"} 13 1700000000100
resource_scrape_error 0
"""


def test_decode_reads_what_metrics_server_reads():
    b = decode(PAGE, scrape_ts=5.0)
    assert b.node == Point(ts=1700000000.0, cpu=100.5, cpu_ts=1700000000.0, mem=2048)
    assert list(b.pods) == [("ns", "p")]
    c = b.pods[("ns", "p")]
    assert list(c) == ["app"]  # "nomem" has no working set: incomplete, dropped
    assert (c["app"].cpu, c["app"].mem, c["app"].ts, c["app"].start) == (10.0, 4096, 1700000000.1, 1699999000.0)


def test_decode_agent_format_round_trip():
    b = decode(stats_format.resource_metrics(_node()), scrape_ts=1.0)
    assert b.node.cpu == 900.0 and b.node.mem == 2 * 2**30
    assert b.pods[("default", "burn-1")]["burn"].cpu == 15.0


def test_decode_rejects_garbage():
    with pytest.raises(ValueError):
        decode("node_cpu_usage_seconds_total abc\nnode_memory_working_set_bytes 1\n", 1.0)


def nb(node_cpu=None, ts=0.0, pods=None):
    b = NodeBatch()
    if node_cpu is not None:
        b.node = Point(ts=ts, cpu=node_cpu, cpu_ts=ts, mem=100)
    for key, cs in (pods or {}).items():
        b.pods[key] = {c: Point(ts=ts, cpu=cpu, cpu_ts=ts, mem=mem, start=start) for c, (cpu, mem, start) in cs.items()}
    return b


def test_rate_needs_two_points_and_divides_by_the_window():
    s = Storage(resolution=15)
    s.store({"n": nb(10.0, 100.0, {("ns", "p"): {"c": (5.0, 7, 1.0)}})})
    assert s.node("n") is None and s.pod(("ns", "p")) is None
    s.store({"n": nb(17.5, 115.0, {("ns", "p"): {"c": (12.5, 9, 1.0)}})})
    u = s.node("n")
    assert (u.cpu_nano, u.window, u.ts, u.memory) == (500_000_000, 15.0, 115.0, 100)
    ts, window, cs = s.pod(("ns", "p"))
    assert (ts, window, cs) == (115.0, 15.0, [("c", 500_000_000, 9)])


def test_a_cycle_without_the_node_drops_it():
    s = Storage(resolution=15)
    s.store({"n": nb(1.0, 1.0, {("ns", "p"): {"c": (1.0, 1, 0.5)}})})
    s.store({"n": nb(2.0, 16.0, {("ns", "p"): {"c": (2.0, 1, 0.5)}})})
    assert s.node("n") is not None
    s.store({})
    assert s.node("n") is None and s.pod(("ns", "p")) is None


def test_fresh_container_counts_from_its_start():
    s = Storage(resolution=15)
    s.store({"n": nb(1.0, 112.0, {("ns", "p"): {"c": (6.0, 5, 100.0)}})})  # started 12 s before the point
    ts, window, cs = s.pod(("ns", "p"))
    assert window == 12.0 and cs == [("c", 500_000_000, 5)]


def test_too_young_container_waits_for_a_second_point():
    s = Storage(resolution=15)
    s.store({"n": nb(1.0, 105.0, {("ns", "p"): {"c": (1.0, 5, 100.0)}})})  # 5 s old: under 10 s
    assert s.pod(("ns", "p")) is None


def test_restarted_container_does_not_give_a_negative_rate():
    s = Storage(resolution=15)
    s.store({"n": nb(1.0, 100.0, {("ns", "p"): {"c": (50.0, 5, 10.0)}})})
    s.store({"n": nb(2.0, 115.0, {("ns", "p"): {"c": (57.5, 5, 10.0)}})})
    s.store({"n": nb(3.0, 130.0, {("ns", "p"): {"c": (1.0, 5, 118.0)}})})  # restarted at 118, used 1 s since
    ts, window, cs = s.pod(("ns", "p"))
    assert window == 12.0 and cs[0][1] == pytest.approx(1e9 / 12, rel=1e-6)


def test_pod_without_every_container_has_no_metrics():
    s = Storage(resolution=15)
    s.store({"n": nb(1.0, 100.0, {("ns", "p"): {"a": (1.0, 1, 1.0)}})})
    s.store({"n": nb(1.0, 115.0, {("ns", "p"): {"a": (2.0, 1, 1.0), "b": (1.0, 1, 1.0)}})})
    assert s.pod(("ns", "p")) is None


@pytest.mark.parametrize("secs,text", [(15.0, "15s"), (15.002, "15.002s"), (3.001999855, "3.002s"),
                                       (0.5, "500ms"), (75.5, "1m15.5s"), (3600.0, "1h0m0s")])
def test_go_duration(secs, text):
    assert go_duration(secs) == text


@pytest.mark.parametrize("nano,text", [(500_000_000, "500m"), (523411, "523411n"), (2_000_000_000, "2"), (0, "0")])
def test_cpu_quantity(nano, text):
    assert cpu_quantity(nano) == text


@pytest.mark.parametrize("b,text", [(1024 * 14752, "14752Ki"), (1000, "1000"), (64 * 2**20, "64Mi")])
def test_memory_quantity(b, text):
    assert memory_quantity(b) == text


def node(addr="127.0.0.1", port=10250, path=None, types=("InternalIP",)):
    n = {"metadata": {"name": "n"}, "status": {"addresses": [{"type": "InternalIP", "address": addr},
                                                              {"type": "Hostname", "address": "h"}],
                                               "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    if path:
        n["metadata"]["annotations"] = {"metrics.k8s.io/resource-metrics-path": path}
    return n


def test_node_url_uses_port_and_annotation():
    cfg = ScrapeConfig()
    assert node_url(node(port=4321), cfg) == "http://127.0.0.1:4321/metrics/resource"
    assert node_url(node(path="/metrics/nodes/n/metrics/resource"), cfg) == \
        "http://127.0.0.1:10250/metrics/nodes/n/metrics/resource"
    assert node_url(node(addr="::1"), ScrapeConfig(scheme="https")) == "https://[::1]:10250/metrics/resource"


@pytest.mark.parametrize("n,cfg", [
    (node(addr="10.1.2.3"), ScrapeConfig()),  # outside the allowed networks: never dialled
    (node(), ScrapeConfig(address_types=("ExternalIP",))),
    (node(addr="host.example"), ScrapeConfig()),
])
def test_node_url_refuses(n, cfg):
    with pytest.raises(NodeUnreachable):
        node_url(n, cfg)


def test_allowed_cidrs_can_widen():
    cfg = ScrapeConfig(allowed=(ipaddress.ip_network("10.0.0.0/8"),))
    assert node_url(node(addr="10.1.2.3"), cfg).startswith("http://10.1.2.3:")


def test_slim_caches_keep_what_the_api_reads_and_share_label_sets():
    from controlplane.metrics.cache import slim_node, slim_pod

    def pod(name):
        return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "5", "uid": "u",
                             "labels": {"app": "web", "tier": "fe"}, "annotations": {"big": "x" * 1000}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                           "containerStatuses": [{"name": "c", "restartCount": 3, "ready": False,
                                                  "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    a, b = slim_pod(pod("a")), slim_pod(pod("b"))
    assert a["metadata"]["labels"] is b["metadata"]["labels"]  # one dict for one label set
    assert "annotations" not in a["metadata"] and "containers" not in a["spec"]
    assert a["status"] == {"phase": "Running", "reason": None, "ready": True,
                           "containers": [("c", 3, False, "CrashLoopBackOff")]}
    n = slim_node({"metadata": {"name": "n1", "resourceVersion": "1",
                                "annotations": {"metrics.k8s.io/resource-metrics-path": "/p", "other": "x"}},
                   "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}},
                              "conditions": [{"type": "Ready", "status": "True", "message": "long"}],
                              "images": [{"names": ["x"]}]}})
    assert n["metadata"]["annotations"] == {"metrics.k8s.io/resource-metrics-path": "/p"}
    assert n["status"]["conditions"] == [{"type": "Ready", "status": "True"}] and "images" not in n["status"]


def test_fast_and_general_decoders_agree():
    from controlplane.metrics.decode import _decode_lines
    text = stats_format.resource_metrics(_node())
    assert decode(text, 1.0) == _decode_lines(text, 1.0)
    # another label order (or an escape) is not the kubelet's: read line by line, same result
    reordered = text.replace('container="burn",namespace="default",pod="burn-1"',
                             'pod="burn-1",namespace="default",container="burn"')
    assert decode(reordered, 1.0) == decode(text, 1.0)
    escaped = PAGE.replace('container="app"', 'container="a\\\\pp"')
    assert list(decode(escaped, 5.0).pods[("ns", "p")]) == ["a\\pp"]


def _random_page(rnd) -> str:
    """A kubelet-shaped page with the irregular cases: rows without timestamps, a container
    missing its memory or CPU row, a repeated row, families out of order, the first line a
    sample (no HELP header), node lines missing."""
    lines = []
    keys = [(f"ns{rnd.randrange(3)}", f"p{rnd.randrange(6)}", f"c{rnd.randrange(3)}") for _ in range(rnd.randrange(0, 12))]
    families = ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                "container_start_time_seconds"]
    rnd.shuffle(families)
    for fam in families:
        if rnd.random() < 0.7:
            lines.append(f"# TYPE {fam} gauge")
        for ns, pod, c in keys:
            if rnd.random() < 0.15:
                continue
            ts = f" {rnd.randrange(10**12, 2 * 10**12)}" if rnd.random() < 0.8 else ""
            value = f"{rnd.random() * 1000:.6f}" if fam != "container_memory_working_set_bytes" else f"{rnd.randrange(10**9)}"
            lines.append(f'{fam}{{container="{c}",namespace="{ns}",pod="{pod}"}} {value}{ts}')
    for fam in ("node_cpu_usage_seconds_total", "node_memory_working_set_bytes"):
        if rnd.random() < 0.8:
            lines.insert(rnd.randrange(len(lines) + 1), f"{fam} {rnd.random() * 100:.3f} {rnd.randrange(10**12, 2 * 10**12)}")
    lines.append("resource_scrape_error 0")
    return "\n".join(lines) + ("\n" if rnd.random() < 0.7 else "")


def test_fast_decoder_agrees_with_the_general_one_on_random_pages(monkeypatch):
    import random

    from controlplane.metrics import decode as dec
    general = dec._decode_lines
    fallbacks = []
    monkeypatch.setattr(dec, "_decode_lines", lambda text, ts: fallbacks.append(1) or general(text, ts))
    rnd = random.Random(7)
    for _ in range(400):
        text = _random_page(rnd)
        assert decode(text, 3.0) == general(text, 3.0), text
    assert not fallbacks  # these pages are all the kubelet's shape: the fast path read them


def _api_with(pods: int):
    """A MetricsApi over real (unstarted) informers holding ``pods`` pods on node n."""
    from controlplane.client import resources
    from controlplane.client.informer import Informer
    from controlplane.metrics.api import MetricsApi
    from controlplane.metrics.cache import slim_node, slim_pod
    nodes = Informer(None, resources.NODES, indexes=False, transform=slim_node)  # type: ignore[arg-type]
    pinf = Informer(None, resources.PODS, indexes=False, transform=slim_pod)  # type: ignore[arg-type]
    nodes._replace([slim_node({"metadata": {"name": "n", "resourceVersion": "1"}})])
    pinf._replace([slim_pod({"metadata": {"name": f"p{i}", "namespace": "ns", "resourceVersion": "1",
                                          "labels": {"app": "a"}}}) for i in range(pods)])
    st = Storage(resolution=15)
    return MetricsApi(st, nodes, pinf), st


def _cycle(ts: float, cpu: float, pods: int):
    """One node's page at ``ts``: every pod's one container at ``cpu`` core-seconds."""
    return {"n": nb(ts * 2, ts, {("ns", f"p{i}"): {"c": (cpu, 1024, 1.0)} for i in range(pods)})}


async def _list_cpus(api) -> set[str]:
    import json

    from aiohttp.test_utils import make_mocked_request
    req = make_mocked_request("GET", "/apis/metrics.k8s.io/v1beta1/pods")
    body = json.loads((await api.list_pods(req)).body)
    return {c["usage"]["cpu"] for item in body["items"] for c in item["containers"]}


async def test_a_cycle_is_served_only_once_rendered_whole():
    import asyncio
    api, st = _api_with(50)
    st.store(_cycle(100.0, 50.0, 50))
    st.store(_cycle(115.0, 57.5, 50))
    assert await _list_cpus(api) == {"500m"}  # rendered on demand
    cycle = await st.prepare(_cycle(130.0, 61.25, 50), chunk=10)
    assert st.version == cycle.version - 1 and await _list_cpus(api) == {"500m"}  # prepared, not served
    render = asyncio.ensure_future(api.render(cycle, chunk=5))
    await asyncio.sleep(0)
    assert not render.done() and await _list_cpus(api) == {"500m"}  # mid-render: the old cycle, whole
    await render
    assert await _list_cpus(api) == {"500m"}
    st.adopt(cycle)
    api.publish(cycle)
    assert api._all_pods is not None and api._all_pods[0] == st.version  # the rendered list is served
    assert await _list_cpus(api) == {"250m"}
    # what was rendered ahead is what an on-demand rendering gives (but for creationTimestamp)
    fresh, st2 = _api_with(50)
    st2.store(_cycle(115.0, 57.5, 50))
    st2.store(_cycle(130.0, 61.25, 50))
    import json

    from aiohttp.test_utils import make_mocked_request
    req = make_mocked_request("GET", "/apis/metrics.k8s.io/v1beta1/pods")
    a, b = json.loads((await api.list_pods(req)).body), json.loads((await fresh.list_pods(req)).body)
    for item in a["items"] + b["items"]:
        del item["metadata"]["creationTimestamp"]
    assert a == b and len(a["items"]) == 50


async def test_publish_ignores_a_rendering_of_another_cycle():
    api, st = _api_with(3)
    st.store(_cycle(100.0, 50.0, 3))
    cycle = await st.prepare(_cycle(115.0, 57.5, 3))
    await api.render(cycle)
    st.store(_cycle(116.0, 66.0, 3))  # another cycle was stored meanwhile (version moved on)
    api.publish(cycle)
    assert api._all_pods is None  # not served: objects render on demand from what is stored
    assert await _list_cpus(api) == {"1"}


async def test_scrapes_reuse_one_connection_per_kubelet_and_drop_those_of_nodes_gone():
    """Two kubelet servers on loopback: each cycle scrapes both on kept-alive connections (one
    per server); a node that leaves has its connections closed after the next cycle; a
    non-200 answer and a page that is not UTF-8 are failed scrapes."""
    from aiohttp import web

    from controlplane.metrics.scraper import Scraper
    peers: dict[str, set] = {}
    answers = {"a": (200, PAGE.encode()), "b": (200, PAGE.encode())}

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["n"]
        peers.setdefault(name, set()).add(request.transport.get_extra_info("peername"))
        code, body = answers[name]
        return web.Response(status=code, body=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{n}/metrics/resource", page)
    runners, ports = [], []
    for _ in range(2):
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    current = {}
    for name, port in zip("ab", ports):
        current[name] = node(port=port, path=f"/{name}/metrics/resource")
        current[name]["metadata"]["name"] = name
    scraper = Scraper(lambda: list(current.values()), Storage(resolution=15), ScrapeConfig())
    try:
        for _ in range(3):
            assert await scraper.cycle() == 2
        assert {k: len(v) for k, v in peers.items()} == {"a": 1, "b": 1}  # one connection each, kept alive
        assert len(scraper._pools) == 2
        del current["b"]
        assert await scraper.cycle() == 1
        assert len(scraper._pools) == 1  # b's pool (and its connection) closed
        answers["a"] = (403, b"forbidden")
        assert await scraper.cycle() == 0 and "403 forbidden" in scraper.last_errors["a"]
        answers["a"] = (200, b"\xff\xfe not utf-8")
        assert await scraper.cycle() == 0 and "a" in scraper.last_errors
    finally:
        await scraper.close()
        for runner in runners:
            await runner.cleanup()


@pytest.mark.parametrize("labels,name,containers", [
    ({"app": "a"}, "p-1", [("c", 1500000, 4096)]),
    ({}, "p-2", [("c", 0, 0)]),
    (None, "p-3", [("b", 10**9, 2**30), ("a", 123, 1023)]),  # several containers, sorted by name
    ({"k/with/slashes": 'quote " and \\ backslash', "ü": "ünïcode"}, "p-4", [("c\"q", 7, 8)]),
])
def test_rendered_pod_metrics_are_what_json_encoding_the_object_gives(labels, name, containers):
    """The PodMetrics bytes joined from pieces equal dumps() of the object as it was built
    before (the same key order and escaping), for odd names and label sets."""
    import json

    from controlplane.client.rest import dumps
    from controlplane.metrics.api import _timestamp, _window
    api, st = _api_with(0)
    pod = {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "3", "labels": labels}}
    points = {("ns", name): {c: (float(cpu) / 1e9 * 15 + 1, mem, 1.0) for c, cpu, mem in containers}}
    st.store({"n": nb(200.0, 100.0, {k: {c: (0.0, m, 1.0) for c, (_, m, _) in v.items()} for k, v in points.items()})})
    st.store({"n": nb(230.0, 115.0, points)})
    ts, window, got_containers = st.pod(("ns", name))
    raw = api._pod_bytes(pod, now="2026-12-06T18:00:00Z")
    want = dumps({"metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-12-06T18:00:00Z",
                               "labels": labels or {}},
                  "timestamp": _timestamp(ts), "window": _window(window),
                  "containers": [{"name": c, "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}}
                                 for c, cpu, mem in got_containers]})
    assert raw == want
    assert json.loads(raw)["metadata"]["labels"] == (labels or {})
