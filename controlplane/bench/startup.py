"""``controlplane bench startup --pods 100``: pod startup latency with real runc containers.

Starts etcd, an apiserver, a local registry (seeded busybox) and one node agent as child
processes in a temp dir, warms the image cache with one pod, then creates ``--pods`` pods bound
to the agent's node (``spec.nodeName`` set, so the scheduler is not measured) at ``--rate``
pods/s, and watches each from its POST to the first time the API shows it ``Running``.
Prints JSON: ``startup_p50_ms``, ``startup_p99_ms``, ``startup_max_ms``, ``agent_cpu_s`` (the
agent's user+system CPU over the run) and the settings. Target: p99 <= 1,000 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from controlplane.etcd_process import EtcdProcess, free_port
from controlplane.images.registry import LocalRegistry
from controlplane.log import get_logger

log = get_logger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("startup", help="pod create→Running latency with real runc containers")
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--rate", type=float, default=10.0, help="pods created per second")
    p.add_argument("--workdir", default=None, help="keep state here (default: a temp dir, removed)")
    p.set_defaults(func=run)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    k = max(0, min(len(v) - 1, int(round(q * (len(v) - 1)))))
    return v[k]


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.etcd = EtcdProcess(data_dir=workdir / "etcd")
        self.registry = LocalRegistry(workdir / "registry")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.node = f"bench-{os.getpid()}"
        self.procs: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as f:
            p = subprocess.Popen([sys.executable, "-m", "controlplane", *args], stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**os.environ, **env, "CONTROLPLANE_LOG_FORMAT": "json"})
        self.procs[name] = p
        return p

    def start(self) -> None:
        self.etcd.start_sync()
        self.registry.start(seed=True)
        env: dict[str, str] = {}  # (plain HTTP and AlwaysAllow: what is measured is pod start-up)
        self._spawn("apiserver", ["apiserver", "--port", str(self.port), "--etcd-endpoints", self.etcd.endpoint], env)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("apiserver not ready")
                time.sleep(0.1)
        from controlplane.network.routes import pick_free

        cluster, service = pick_free(2)  # never the defaults: another instance may use them
        pod_cidr = cluster.replace(".0.0/16", ".1.0/24")
        self._spawn("agent", ["agent", "--server", self.url, "--node-name", self.node,
                              "--root", str(self.workdir / "agent"), "--registry-mirror", self.registry.url,
                              "--status-interval", "30", "--cluster-cidr", cluster, "--service-cidr", service,
                              "--pod-cidr", pod_cidr], env)

    def stop(self) -> None:
        for name in ("agent", "apiserver"):
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.registry.stop()
        self.etcd.stop()


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "startup"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


async def measure(cluster: Cluster, n: int, rate: float) -> dict:
    client = RestClient(cluster.url, max_connections=32)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await client.get(R.NODES, cluster.node)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError("agent did not register its node")
                await asyncio.sleep(0.2)
        ns = "default"
        # warm-up: pulls and unpacks the image once (the measured pods find it cached)
        await client.create(R.PODS, pod("warmup", cluster.node), ns)
        running: dict[str, float] = {}
        created: dict[str, float] = {}
        done = asyncio.Event()

        async def watch() -> None:
            async for etype, obj in client.watch(R.PODS, ns, label_selector="bench=startup", resume=True):
                name = obj["metadata"]["name"]
                if (obj.get("status") or {}).get("phase") == "Running" and name not in running:
                    running[name] = time.monotonic()
                    if all(f"p{i}" in running for i in range(n)):
                        done.set()
                        return

        w = asyncio.create_task(watch())
        while "warmup" not in running:
            await asyncio.sleep(0.05)
        cpu0 = cpu_seconds(cluster.procs["agent"].pid)
        t0 = time.monotonic()

        async def create(i: int) -> None:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            created[f"p{i}"] = time.monotonic()
            await client.create(R.PODS, pod(f"p{i}", cluster.node), ns)

        await asyncio.gather(*(create(i) for i in range(n)))
        await asyncio.wait_for(done.wait(), timeout=120 + n)
        cpu = cpu_seconds(cluster.procs["agent"].pid) - cpu0
        w.cancel()
        lat = [(running[k] - created[k]) * 1000 for k in created]
        return {"pods": n, "rate_per_s": rate, "startup_p50_ms": round(percentile(lat, 0.5), 1),
                "startup_p99_ms": round(percentile(lat, 0.99), 1), "startup_max_ms": round(max(lat), 1),
                "agent_cpu_s": round(cpu, 2), "wall_s": round(time.monotonic() - t0, 2), "target_p99_ms": 1000}
    finally:
        await client.close()


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-startup-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir)
    try:
        cluster.start()
        result = asyncio.run(measure(cluster, args.pods, args.rate))
    finally:
        cluster.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0
