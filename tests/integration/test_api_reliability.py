"""Issue 15 on a real apiserver over real etcd: honest health (readyz fails while etcd is down
and recovers), a killed worker is restarted while the other serves, and hardened input (YAML
alias bombs, body and object size, kind-less bodies, top-level ``$patch``, future
resourceVersions, request deadlines, in-flight limits), each answered as kube-apiserver answers.
Times are printed (``-s``) as figures, not asserted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import pytest

from controlplane.etcd_process import free_port
from controlplane.procutil import tree_pids
from tests.fixtures.apiserver import ApiServerProcess, _start

pytestmark = pytest.mark.integration


CTX: dict[str, ssl.SSLContext] = {}  # base URL -> the admin's TLS context for that apiserver


def use(api: ApiServerProcess) -> None:
    """Requests to ``api`` verify its CA and present the admin client certificate."""
    CTX[api.url] = api.ssl_context()


def call(url: str, method: str = "GET", body: bytes | None = None, ctype: str = "application/json",
         timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})
    ctx = next((c for base, c in CTX.items() if url.startswith(base)), None)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def status_of(raw: bytes) -> dict:
    return json.loads(raw)


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_readyz_follows_etcd(fresh_apiserver: ApiServerProcess):
    api = fresh_apiserver
    use(api)
    code, _, body = call(api.url + "/readyz?verbose")
    assert code == 200, body
    text = body.decode()
    for check in ("[+]ping ok", "[+]etcd ok", "[+]informer-sync ok", "[+]shutdown ok"):
        assert check in text
    assert text.endswith("readyz check passed\n")
    assert call(api.url + "/readyz/etcd")[2] == b"ok"
    assert call(api.url + "/livez")[2] == b"ok"
    assert call(api.url + "/readyz/nope")[0] == 404

    port = api.etcd.client_port
    t0 = time.monotonic()
    api.etcd.kill()
    _wait(lambda: call(api.url + "/readyz", timeout=5)[0] == 500, 10, "readyz failing without etcd")
    failed_after = time.monotonic() - t0
    code, _, body = call(api.url + "/readyz")
    assert "[-]etcd failed: reason withheld" in body.decode() and body.decode().endswith("readyz check failed\n")
    code, _, body = call(api.url + "/readyz/etcd")
    assert code == 500 and body.decode().startswith("internal server error: etcd")
    assert call(api.url + "/readyz?exclude=etcd")[0] == 200  # Kubernetes' exclude

    api.etcd.client_port = port  # same ports and data dir
    t1 = time.monotonic()
    api.etcd.start_sync()
    _wait(lambda: call(api.url + "/readyz", timeout=5)[0] == 200, 30, "readyz passing with etcd back")
    recovered_after = time.monotonic() - t1
    name = f"back-{uuid.uuid4().hex[:6]}"
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()
    assert call(api.url + "/api/v1/namespaces/default/configmaps", "POST", cm)[0] == 201
    print(f"\nreadyz failed {failed_after:.2f}s after etcd was killed; passed {recovered_after:.2f}s after it restarted")


def bomb(levels: int = 9) -> bytes:
    lines = ['apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        lines.append(f"  {name}: &{name} [{','.join('*' + prev for _ in range(9))}]")
        prev = name
    return ("\n".join(lines) + "\n").encode()


def test_yaml_alias_bomb_is_refused_fast_and_health_stays_fast(apiserver: ApiServerProcess):
    use(apiserver)
    url = apiserver.url + "/api/v1/namespaces/default/configmaps"
    doc = bomb()
    assert len(doc) < 700
    health_ms: list[float] = []
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            t = time.perf_counter()
            assert call(apiserver.url + "/healthz")[0] == 200
            health_ms.append((time.perf_counter() - t) * 1000)

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    times = []
    try:
        for _ in range(20):
            t = time.perf_counter()
            code, _, body = call(url, "POST", doc, "application/yaml")
            times.append((time.perf_counter() - t) * 1000)
            assert code == 400, body
            st = status_of(body)
            assert st["reason"] == "BadRequest"
            assert st["message"] == "error converting YAML to JSON: yaml: document contains excessive aliasing"
        # two 8-level bombs at once
        with_two = [threading.Thread(target=lambda: call(url, "POST", bomb(8), "application/yaml")) for _ in range(2)]
        for w in with_two:
            w.start()
        for w in with_two:
            w.join(30)
    finally:
        stop.set()
        th.join(10)
    times.sort()
    health_ms.sort()
    print(f"\nalias bomb ({len(doc)} bytes) refused: median {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms; "
          f"/healthz meanwhile: median {health_ms[len(health_ms) // 2]:.1f} ms, max {health_ms[-1]:.1f} ms "
          f"({len(health_ms)} probes)")


def test_size_limits_as_kubernetes(apiserver: ApiServerProcess):
    use(apiserver)
    base = apiserver.url + "/api/v1/namespaces/default/pods"
    # over 3 MiB: the body is refused before decoding
    many = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
            "spec": {"containers": [{"name": f"c{i}", "image": "busybox", "command": ["sleep", "3600"] * 20}
                                    for i in range(10000)]}}
    raw = json.dumps(many).encode()
    assert len(raw) > 3 * 1024 * 1024
    code, _, body = call(base, "POST", raw)
    st = status_of(body)
    assert (code, st["reason"], st["message"]) == (413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
    # under 3 MiB but over etcd's 1.5 MiB request limit: etcd's error, as kube-apiserver passes it on
    name = f"big-{uuid.uuid4().hex[:6]}"
    big = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["x" * 1000] * 2000}]}}
    raw = json.dumps(big).encode()
    assert 1.5 * 1024 * 1024 < len(raw) < 3 * 1024 * 1024
    code, _, body = call(base, "POST", raw)
    st = status_of(body)
    assert code == 500 and st["message"] == "etcdserver: request is too large" and "reason" not in st, st
    assert call(f"{base}/{name}")[0] == 404  # nothing stored


def test_kindless_bodies_top_level_patch_and_future_resource_versions(apiserver: ApiServerProcess):
    use(apiserver)
    ns_url = apiserver.url + "/api/v1/namespaces/default/configmaps"
    name = f"nokind-{uuid.uuid4().hex[:6]}"
    # built-in types take group/version/kind from the URL (the JSON serializer's defaults)
    code, _, body = call(ns_url, "POST", json.dumps({"metadata": {"name": name}, "data": {"a": "b"}}).encode())
    assert code == 201 and status_of(body)["kind"] == "ConfigMap", body

    # a top-level {"$patch": "delete"} empties the patched object: its name no longer matches the URL
    for directive in ("delete", "replace"):
        code, _, body = call(f"{ns_url}/{name}", "PATCH", json.dumps({"$patch": directive}).encode(),
                             "application/strategic-merge-patch+json")
        st = status_of(body)
        assert (code, st["reason"]) == (400, "BadRequest"), body
        assert st["message"] == f"the name of the object () does not match the name on the URL ({name})"
    assert status_of(call(f"{ns_url}/{name}")[2])["data"] == {"a": "b"}  # unchanged

    # watch and list from a resourceVersion the server has not reached: 504 Too large resource version
    rv = int(status_of(call(ns_url)[2])["metadata"]["resourceVersion"])
    for q in (f"?watch=true&resourceVersion={rv + 1000}", f"?resourceVersion={rv + 1000}"):
        t = time.monotonic()
        code, headers, body = call(ns_url + q)
        st = status_of(body)
        assert (code, st["reason"]) == (504, "Timeout"), body
        assert st["message"].startswith(f"Too large resource version: {rv + 1000}")
        assert st["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        assert time.monotonic() - t < 10

    # a request past its deadline (the client's shorter ?timeout=): 504 Timeout
    code, _, body = call(ns_url + f"?resourceVersion={rv + 1000}&timeout=300ms")
    st = status_of(body)
    assert (code, st["reason"]) == (504, "Timeout")
    assert st["message"] == "Timeout: request did not complete within requested timeout - context deadline exceeded"


def test_custom_resource_without_kind_is_400(apiserver: ApiServerProcess, kubectl):
    use(apiserver)
    crd = Path(__file__).resolve().parents[2] / "manifests" / "custom-resource" / "crontab-crd.yaml"
    kubectl("apply", "-f", str(crd))
    kubectl("wait", "--for", "condition=established", "crd/crontabs.stable.example.com", "--timeout=30s")
    url = apiserver.url + "/apis/stable.example.com/v1/namespaces/default/crontabs"
    body = json.dumps({"metadata": {"name": "nokind"}, "spec": {}}, separators=(",", ":")).encode()
    code, _, raw = _wait(lambda: (r := call(url, "POST", body))[0] != 404 and r, 15, "crontabs served")
    st = status_of(raw)
    assert (code, st["reason"]) == (400, "BadRequest"), raw
    assert st["message"] == ("the object provided is unrecognized (must be of type CronTab): Object 'Kind' is "
                             "missing in '{\"metadata\":{\"name\":\"nokind\"},\"spec\":{}}' "
                             "({\"metadata\":{\"name\":\"nokind\"}, ...)")


@pytest.fixture
def limited_apiserver(tmp_path: Path):
    api = _start(tmp_path / "limited", ["--compaction-interval", "0", "--workers", "2",
                                        "--max-requests-inflight", "2", "--max-mutating-requests-inflight", "2"])
    yield api
    api.stop()
    api.etcd.stop()


def test_inflight_limit_and_worker_restart(limited_apiserver: ApiServerProcess):
    api = limited_apiserver
    use(api)
    name = f"hot-{uuid.uuid4().hex[:6]}"
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()
    assert call(api.url + "/api/v1/namespaces/default/configmaps", "POST", cm)[0] == 201

    async def storm() -> list[tuple[int, str | None, str]]:
        conn = aiohttp.TCPConnector(limit=0, force_close=True, ssl=CTX[api.url])
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one():
                async with s.get(f"{api.url}/api/v1/namespaces/default/configmaps/{name}") as r:
                    return r.status, r.headers.get("Retry-After"), await r.text()
            return await asyncio.gather(*(one() for _ in range(200)))

    answers = asyncio.run(storm())
    limited = [a for a in answers if a[0] == 429]
    assert limited and all(a[0] in (200, 429) for a in answers)
    assert limited[0][1] == "1" and limited[0][2] == "Too many requests, please try again later.\n"

    # kill -9 one worker: the other keeps serving, the dead one comes back in its slot
    sup = api.proc.pid
    workers = [p for p in tree_pids(sup) if p != sup]
    assert len(workers) == 2
    t0 = time.monotonic()
    os.kill(workers[0], signal.SIGKILL)

    def replaced():
        now = [p for p in tree_pids(sup) if p != sup]
        return len(now) == 2 and workers[0] not in now and now
    _wait(replaced, 30, "a new worker")

    restarted = 'controlplane_component_restarts_total{cause="signal SIGKILL",component="apiserver-worker"} 1.0'
    # the new worker counts its restart as it starts; then it must listen (a listening worker
    # shares new connections with the other one: SO_REUSEPORT), so poll until the count shows
    # and readyz answers every time
    _wait(lambda: restarted in call(api.url + "/metrics")[2].decode(), 30, "the restart counted")
    _wait(lambda: all(call(api.url + "/readyz", timeout=5)[0] == 200 for _ in range(10)), 30, "workers ready")
    elapsed = time.monotonic() - t0
    assert api.proc.poll() is None
    assert call(api.url + "/api/v1/namespaces/default/configmaps", "POST",
                cm.replace(name.encode(), f"{name}-2".encode()))[0] == 201
    print(f"\napiserver worker kill -9 to both workers serving: {elapsed:.2f}s")
