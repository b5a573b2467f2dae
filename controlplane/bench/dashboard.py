"""``controlplane bench dashboard``: the web dashboard in headless Chromium against 5,000 pods.

Starts etcd, an apiserver and the dashboard as child processes, creates ``--pods`` (5,000) pods
bound to a node name and marks them Running (as a kubelet would), then drives apt's Chromium
(selenium, ``/usr/bin/chromedriver``) and prints JSON:

- ``first_render_ms``: from navigation start to the pod list showing its first rows (the
  first page of the paged list rendered), median and max over ``--loads`` fresh page loads;
  ``all_rows_ms``: until all pods are in the table (the list complete, the watch started).
  Target: first meaningful render <= 1,500 ms.
- ``status_to_page_ms``: from the start of a pod status write (PATCH pods/status) to the page
  showing the new status in that pod's row, p50/p99/max over ``--changes`` changes of 20
  visible pods while ``--churn`` other pods per second change status in the background
  (the page holds every pod and processes every event). Target p99 <= 1,000 ms.
- ``js_first_view_gzip_bytes``: JavaScript the first view loaded (the browser's resource timing,
  encoded = gzip sizes as served). Target <= 500 kB.
- ``pod_list_requests_per_load``: the list requests (pages) one load of the pod list made (it
  lists once, in pages, then watches); ``js_heap_mib``: the JS heap in use with every pod held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from controlplane.bench.loadgen import post_many
from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from controlplane.etcd_process import EtcdProcess, free_port
from controlplane.kubeconfig import write_kubeconfig
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339
from controlplane.procutil import terminate, wait_ready

try:  # a test/bench dependency (pyproject [test]); the error says how to get it
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover
    webdriver = None  # type: ignore[assignment]

log = get_logger(__name__)
REPO = Path(__file__).resolve().parents[2]
NS = "bench"
NODE = "bench-node"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--window-size=1400,900"]

# installed before any page script: records when the pod table first shows rows and when it
# holds every pod, and every change of a row's status cell (name, text, epoch ms)
PROBE = """
(() => {
  window.__bench = {first: null, all: null, changes: []};
  const want = %d;
  const seen = new Map();
  const check = () => {
    const b = window.__bench;
    const count = document.querySelector('[data-testid=row-count]');
    const rows = document.querySelectorAll('[role=table] [role=row][data-index]');
    if (b.first === null && rows.length > 0) b.first = performance.now();
    if (b.all === null && count && count.textContent.trim().startsWith(want + ' of ' + want) &&
        !count.textContent.includes('loading')) b.all = performance.now();
    for (const r of rows) {
      const cells = r.querySelectorAll('[role=cell]');
      if (cells.length < 4) continue;
      const name = cells[1].textContent.trim(), status = cells[3].textContent.trim();
      if (seen.get(name) !== status) {
        seen.set(name, status);
        b.changes.push([name, status, Date.now()]);
      }
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="the dashboard in headless Chromium with 5,000 pods: render, status latency, JS size")
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--loads", type=int, default=5, help="fresh page loads of the pod list to time")
    p.add_argument("--changes", type=int, default=200, help="status changes to time")
    p.add_argument("--churn", type=float, default=50.0, help="background status changes per second")
    p.set_defaults(func=run)


def pod(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{i:05d}", "namespace": NS,
                         "labels": {"app": f"app-{i % 50}", "probe": "yes" if i < 20 else "no"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                                       "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def status(reason: str | None) -> dict:
    now = now_rfc3339()
    state = {"waiting": {"reason": reason}} if reason else {"running": {"startedAt": now}}
    return {"status": {"phase": "Running", "podIP": "10.1.0.1", "startTime": now,
                       "conditions": [{"type": "Ready", "status": "False" if reason else "True", "lastTransitionTime": now}],
                       "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": reason is None,
                                              "restartCount": 0, "started": reason is None, "state": state}]}}


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.etcd = EtcdProcess(data_dir=workdir / "etcd")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.dashboard = ""

    def start(self) -> None:
        self.etcd.start_sync()
        env = {**os.environ, "CONTROLPLANE_LOG_FORMAT": "json", "CONTROLPLANE_LOG_LEVEL": "warning"}
        with open(self.workdir / "apiserver.log", "ab") as f:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "controlplane", "apiserver", "--port", str(self.port), "--etcd-endpoints",
                 self.etcd.endpoint], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO))
        write_kubeconfig(self.workdir / "kubeconfig", self.url)
        wait_ready(self.url, self.procs[-1])
        with open(self.workdir / "dashboard.log", "ab") as f:
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "controlplane", "dashboard", "--server", self.url, "--port", "0",
                 "--data-dir", str(self.workdir)], stdout=f, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, cwd=REPO))
        addr = self.workdir / "dashboard-address"
        deadline = time.monotonic() + 30
        while not addr.exists():
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                raise RuntimeError("the dashboard did not start; see " + str(self.workdir / "dashboard.log"))
            time.sleep(0.05)
        self.dashboard = addr.read_text().strip()

    def stop(self) -> None:
        for p in reversed(self.procs):
            terminate(p, 15)
        self.etcd.stop()


async def populate(url: str, n: int) -> None:
    async with RestClient(url) as c:
        await c.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await post_many(url, f"/api/v1/namespaces/{NS}/pods", (json.dumps(pod(i)).encode() for i in range(n)), 32)
        sem = asyncio.Semaphore(32)

        async def run(i: int) -> None:
            async with sem:
                await c.patch(R.PODS, f"web-{i:05d}", status(None), NS, subresource="status")
        await asyncio.gather(*(run(i) for i in range(n)))


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


class Churn(threading.Thread):
    """Background status changes of non-probe pods, ``rate`` per second, on their own loop."""

    def __init__(self, url: str, n: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.n, self.rate = url, n, rate
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        if self.rate <= 0:
            return
        async with RestClient(self.url) as c:
            i = 0
            start = time.monotonic()
            while not self.stop.is_set():
                idx = 20 + (i % max(1, self.n - 20))
                await c.patch(R.PODS, f"web-{idx:05d}", status("ContainerCreating" if (i // self.n) % 2 == 0 else None),
                              NS, subresource="status")
                i += 1
                self.count = i
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)


def measure(stack: Stack, args: argparse.Namespace) -> dict:
    profile = tempfile.mkdtemp(prefix="cp-bench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for f in FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(f)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    out: dict = {}
    try:
        d.set_script_timeout(30)
        d.get(stack.dashboard + "/signin")
        login = d.execute_async_script(
            """const done = arguments[arguments.length - 1];
               fetch('/auth/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
                     body: JSON.stringify({token: 'bench'})}).then(r => done(r.status));""")
        assert login == 200, f"sign-in answered {login}"
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE % args.pods})
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        firsts, alls, lists = [], [], []
        page = f"{stack.dashboard}/r/core/v1/pods?ns={NS}"
        for _ in range(args.loads):
            d.get("about:blank")
            d.get(page)
            deadline = time.monotonic() + 60
            b = None
            while time.monotonic() < deadline:
                b = d.execute_script("return window.__bench && {first: window.__bench.first, all: window.__bench.all}")
                if b and b["all"] is not None:
                    break
                time.sleep(0.05)
            assert b and b["first"] is not None and b["all"] is not None, f"the pod list did not render: {b}"
            lists.append(d.execute_script(
                "return performance.getEntriesByType('resource').filter(e => e.name.includes('/pods?') &&"
                " e.name.includes('limit=')).length"))
            firsts.append(b["first"])
            alls.append(b["all"])
        js = d.execute_script(
            """return performance.getEntriesByType('resource').filter(e => e.initiatorType === 'script' ||
                 e.name.endsWith('.js')).map(e => [e.name, e.encodedBodySize, e.decodedBodySize]);""")
        out["first_render_ms"] = {"median": round(statistics.median(firsts)), "max": round(max(firsts)),
                                  "runs": [round(x) for x in firsts]}
        out["pod_list_requests_per_load"] = max(lists)
        out["all_rows_ms"] = {"median": round(statistics.median(alls)), "max": round(max(alls))}
        out["js_first_view_gzip_bytes"] = sum(e[1] for e in js)
        out["js_first_view_bytes"] = sum(e[2] for e in js)
        out["js_first_view_files"] = [Path(e[0]).name for e in js]
        # status changes: the 20 probe pods on screen, the page holding every pod
        d.get(f"{page}&labels=probe%3Dyes")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and d.execute_script("return window.__bench.all === null && "
                                                               "document.querySelectorAll('[data-index]').length < 20"):
            time.sleep(0.05)
        time.sleep(0.5)
        churn = Churn(stack.url, args.pods, args.churn)
        churn.start()
        sent: list[tuple[str, str, float]] = []

        async def changes() -> None:
            async with RestClient(stack.url) as c:
                for i in range(args.changes):
                    name = f"web-{i % 20:05d}"
                    reason = "ImagePullBackOff" if (i // 20) % 2 == 0 else None
                    t0 = time.time() * 1000
                    await c.patch(R.PODS, name, status(reason), NS, subresource="status")
                    sent.append((name, reason or "Running", t0))
                    await asyncio.sleep(0.05)
        asyncio.run(changes())
        time.sleep(1.5)
        churn.stop.set()
        churn.join(10)
        seen = d.execute_script("return window.__bench.changes")
        lat = []
        missing = 0
        for name, text, t0 in sent:
            hit = next((t for n, s, t in seen if n == name and s == text and t >= t0 - 1), None)
            if hit is None:
                missing += 1
            else:
                lat.append(hit - t0)
        out["status_to_page_ms"] = {"p50": round(percentile(lat, 50), 1), "p99": round(percentile(lat, 99), 1),
                                    "max": round(max(lat), 1), "changes": len(sent), "not_seen": missing,
                                    "background_changes": churn.count}
        out["js_heap_mib"] = round(d.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : 0")
                                   / 2 ** 20, 1)
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return out


def run(args: argparse.Namespace) -> int:
    if webdriver is None:
        print("selenium is not installed: run `make install`", file=sys.stderr)
        return 1
    if not (REPO / "web" / "dist" / "index.html").exists():
        print("the front end is not built (web/dist): run `make install`", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="cp-bench-dashboard-"))
    stack = Stack(workdir)
    try:
        stack.start()
        t = time.monotonic()
        asyncio.run(populate(stack.url, args.pods))
        result = {"pods": args.pods, "populate_s": round(time.monotonic() - t, 2)}
        result.update(measure(stack, args))
        result["targets"] = {"first_render_ms": 1500, "status_to_page_p99_ms": 1000, "js_first_view_gzip_bytes": 500_000}
        print(json.dumps(result, indent=2))
        return 0
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
