"""``controlplane apiserver --workers 2``: two real apiserver processes behind one port
(SO_REUSEPORT) over one real etcd. Every request below goes over a fresh TCP connection, so the
kernel spreads them over both workers: whatever one worker writes, the other must serve (CRDs
and their custom resources, reads and watches after writes), ``/metrics`` counts the requests
of both, and the supervisor's semantics hold (SIGTERM stops all, a dead worker is restarted).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from controlplane.procutil import tree_pids
from tests.fixtures.apiserver import ApiServerProcess
from tests.fixtures.apiserver import _start as start_apiserver

pytestmark = pytest.mark.integration

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
FRESH = 24  # fresh connections per check: both workers get some (all on one: 2 * 2**-24)


def _start(workdir: Path) -> ApiServerProcess:
    return start_apiserver(workdir, ["--compaction-interval", "0", "--workers", "2"])


@pytest.fixture(scope="module")
def workers_api(tmp_path_factory: pytest.TempPathFactory) -> ApiServerProcess:
    api = _start(tmp_path_factory.mktemp("apiserver-workers"))
    yield api
    api.stop()
    api.etcd.stop()


@pytest.fixture
def private_api(tmp_path: Path) -> ApiServerProcess:
    api = _start(tmp_path / "apiserver")
    yield api
    api.stop()
    api.etcd.stop()


def call(api: ApiServerProcess, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request on a new connection (``Connection: close``)."""
    conn = http.client.HTTPSConnection("127.0.0.1", api.port, timeout=30, context=api.ssl_context())
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json", "Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def first_watch_event(api: ApiServerProcess, path: str) -> dict[str, Any]:
    conn = http.client.HTTPSConnection("127.0.0.1", api.port, timeout=30, context=api.ssl_context())
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        line = resp.readline()
        assert line, "watch ended without an event"
        return json.loads(line)
    finally:
        conn.close()


def worker_pids(api: ApiServerProcess) -> list[int]:
    assert api.proc is not None
    return [p for p in tree_pids(api.proc.pid) if p != api.proc.pid]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def crd(group: str, plural: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]},
    }


def test_two_workers_behind_one_port(workers_api: ApiServerProcess) -> None:
    assert len(worker_pids(workers_api)) == 2
    for _ in range(FRESH):
        assert call(workers_api, "GET", "/readyz")[0] == 200


def test_crd_then_custom_resources_through_other_connections(workers_api: ApiServerProcess) -> None:
    """A CRD written through one worker is served at once by every worker: creates, gets, lists
    and discovery of its resources on fresh connections all succeed, right after the create."""
    group = f"w{uuid.uuid4().hex[:6]}.example.com"
    code, body = call(workers_api, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                      crd(group, "gadgets", "Gadget"))
    assert code == 201, body
    base = f"/apis/{group}/v1/namespaces/default/gadgets"
    with ThreadPoolExecutor(FRESH) as pool:  # at once, before any worker could have caught up
        firsts = list(pool.map(lambda _: call(workers_api, "GET", base), range(FRESH)))
    assert all(code == 200 for code, _ in firsts), firsts
    for i in range(FRESH):
        obj = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": f"g{i}"}, "spec": {"size": i}}
        code, body = call(workers_api, "POST", base, obj)
        assert code == 201, (i, body)
        code, body = call(workers_api, "GET", f"{base}/g{i}")
        assert code == 200 and body["spec"]["size"] == i, (i, body)
        code, body = call(workers_api, "GET", base)
        assert code == 200, (i, body)
        assert f"g{i}" in {o["metadata"]["name"] for o in body["items"]}
    for _ in range(FRESH // 2):
        code, body = call(workers_api, "GET", f"/apis/{group}/v1")
        assert code == 200 and "gadgets" in {r["name"] for r in body["resources"]}, body
    for _ in range(FRESH // 2):  # aggregated discovery (kubectl's) follows it on every worker too
        code, body = call(workers_api, "GET", "/apis", headers={"Accept": AGGREGATED})
        assert code == 200 and group in {i["metadata"].get("name") for i in body["items"]}, body
    # deleting the CRD takes its custom resources and the resource itself away on every worker
    code, body = call(workers_api, "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}")
    assert code in (200, 202), body  # 202: the clean-up finalizer runs first
    deadline = time.monotonic() + 30
    while call(workers_api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}")[0] != 404:
        assert time.monotonic() < deadline, "the CRD was not deleted"
        time.sleep(0.2)
    for _ in range(FRESH):
        code, body = call(workers_api, "GET", base)
        assert code == 404, body
    for _ in range(FRESH // 2):
        code, body = call(workers_api, "GET", "/apis", headers={"Accept": AGGREGATED})
        assert code == 200 and group not in {i["metadata"].get("name") for i in body["items"]}, body


def test_reads_and_watches_after_writes_across_workers(workers_api: ApiServerProcess) -> None:
    ns = f"rw-{uuid.uuid4().hex[:6]}"
    assert call(workers_api, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(8):
        code, body = call(workers_api, "POST", base, {"metadata": {"name": f"cm{i}"}, "data": {"i": str(i)}})
        assert code == 201, body
        rv = int(body["metadata"]["resourceVersion"])
        for _ in range(3):
            code, got = call(workers_api, "GET", f"{base}/cm{i}")
            assert code == 200 and got["metadata"]["resourceVersion"] == str(rv), got
            code, lst = call(workers_api, "GET", base)  # a consistent list, from a watch cache
            assert code == 200 and int(lst["metadata"]["resourceVersion"]) >= rv
            assert f"cm{i}" in {o["metadata"]["name"] for o in lst["items"]}
            code, lst = call(workers_api, "GET", f"{base}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan")
            assert code == 200 and f"cm{i}" in {o["metadata"]["name"] for o in lst["items"]}, lst
            ev = first_watch_event(workers_api, f"{base}?watch=1&resourceVersion={rv - 1}&timeoutSeconds=5")
            assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == f"cm{i}", ev
    # a watch from the newest resourceVersion on another worker waits for what comes next
    code, body = call(workers_api, "POST", base, {"metadata": {"name": "last"}})
    rv = int(body["metadata"]["resourceVersion"])
    for _ in range(6):
        conn = http.client.HTTPSConnection("127.0.0.1", workers_api.port, timeout=30, context=workers_api.ssl_context())
        conn.request("GET", f"{base}?watch=1&resourceVersion={rv}&timeoutSeconds=1", headers={"Connection": "close"})
        resp = conn.getresponse()
        assert resp.status == 200
        events = [json.loads(x) for x in resp.read().splitlines() if x.strip()]
        conn.close()
        assert all(e["type"] != "ERROR" for e in events), events


def _request_total(api: ApiServerProcess) -> float:
    code, text = call(api, "GET", "/metrics")
    assert code == 200
    return sum(float(m.group(1)) for m in re.finditer(r"^apiserver_request_total\{[^}]*\} ([0-9.e+]+)$", text, re.M))


def test_metrics_count_the_requests_of_every_worker(workers_api: ApiServerProcess) -> None:
    before = _request_total(workers_api)
    k = 40
    for _ in range(k):
        assert call(workers_api, "GET", "/api/v1/namespaces/default")[0] == 200
    after = _request_total(workers_api)
    assert after - before >= k, (before, after)
    _, text = call(workers_api, "GET", "/metrics")
    assert "apiserver_request_duration_seconds_bucket" in text
    assert "pid=" not in text.split("apiserver_current_inflight_requests", 1)[1].split("\n# ", 1)[0]


def _metrics_dir(pid: int) -> str:
    """The multiprocess metrics directory a worker writes to: the directory of the metric files
    it has mapped (a preforked worker's /proc/PID/environ is the supervisor's start-up
    environment, from before the supervisor set PROMETHEUS_MULTIPROC_DIR)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
        if "/controlplane-apiserver-metrics-" in path and path.endswith(".db"):
            return os.path.dirname(path)
    raise AssertionError(f"worker {pid} maps no metrics file")


def test_sigterm_stops_every_worker_and_removes_the_metrics_dir(private_api: ApiServerProcess) -> None:
    pids = worker_pids(private_api)
    assert len(pids) == 2
    metrics_dir = _metrics_dir(pids[0])
    assert os.path.isdir(metrics_dir)
    assert private_api.proc is not None
    private_api.proc.send_signal(signal.SIGTERM)
    assert private_api.proc.wait(30) == 0
    assert _wait_gone(pids) == []
    assert not os.path.exists(metrics_dir)


def test_a_dead_worker_is_restarted_in_its_slot(private_api: ApiServerProcess) -> None:
    """The supervisor restarts a worker that died (issue 15); the other one is left alone."""
    pids = worker_pids(private_api)
    assert len(pids) == 2
    os.kill(pids[1], signal.SIGKILL)
    assert _wait_gone([pids[1]]) == []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = worker_pids(private_api)
        if len(now) == 2 and pids[0] in now and pids[1] not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker not restarted: {worker_pids(private_api)}")
    assert private_api.proc is not None and private_api.proc.poll() is None


def test_workers_stop_when_the_supervisor_is_killed(private_api: ApiServerProcess) -> None:
    pids = worker_pids(private_api)
    metrics_dir = _metrics_dir(pids[0])
    assert private_api.proc is not None
    private_api.proc.kill()
    private_api.proc.wait(10)
    try:
        assert _wait_gone(pids) == []
    finally:  # a SIGKILLed supervisor cannot remove it itself
        shutil.rmtree(metrics_dir, ignore_errors=True)
