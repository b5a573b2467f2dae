"""``controlplane bench controllers``: how fast the controllers bring up a big Deployment.

Starts etcd, an apiserver and a controller-manager as child processes (or uses
``--kubeconfig`` of a running cluster together with ``--controller-manager-pid``), applies a
Deployment with ``--replicas`` (1,000) replicas with kubectl, plays the node agent by marking
every new pod Running + Ready as it appears, and prints JSON:
``deployment_1000_ready_s`` (apply → all pods exist and the Deployment reports them all
available), ``pods_created_s`` (apply → all pods exist) and ``controller_manager_cpu_s``
(the controller-manager's user+system CPU over that interval). Target: under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.etcd_process import EtcdProcess, free_port
from controlplane.kubeconfig import write_kubeconfig
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339
from controlplane.procutil import cpu_seconds, terminate, wait_ready

log = get_logger(__name__)


class _Cluster:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.etcd = EtcdProcess(data_dir=workdir / "etcd")
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.kubeconfig = workdir / "kubeconfig"
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()

    def start(self) -> int:
        self.etcd.start_sync()
        env = {**os.environ, "CONTROLPLANE_LOG_FORMAT": "json", "CONTROLPLANE_LOG_LEVEL": "warning"}
        with open(self.workdir / "apiserver.log", "ab") as f:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "controlplane", "apiserver", "--port", str(self.port),
                                                "--etcd-endpoints", self.etcd.endpoint], stdout=f, stderr=subprocess.STDOUT,
                                               env=env, start_new_session=True))
        write_kubeconfig(self.kubeconfig, self.url)
        wait_ready(self.url, self.procs[-1])
        with open(self.workdir / "controller-manager.log", "ab") as f:
            cm = subprocess.Popen([sys.executable, "-m", "controlplane", "controller-manager", "--kubeconfig",
                                   str(self.kubeconfig), "--metrics-port", str(self.metrics_port)], stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(cm)
        return cm.pid

    def stop(self) -> None:
        for p in reversed(self.procs):
            terminate(p, 15)
        self.etcd.stop()


async def _mark_ready(client: RestClient, ns: str, pod: dict) -> None:
    now = now_rfc3339()
    body = {"status": {"phase": "Running", "podIP": "10.1.0.1",
                       "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}}
    for _ in range(5):
        try:
            await client.patch(R.PODS, pod["metadata"]["name"], body, ns, subresource="status")
            return
        except ApiStatusError as e:
            if e.not_found:
                return
            await asyncio.sleep(0.05)


async def _run(args: argparse.Namespace, kubeconfig: Path, cm_pid: int, api_pid: int = 0) -> dict:
    client = RestClient.from_kubeconfig(kubeconfig, max_connections=64)
    ns = f"bench-{int(time.time())}"
    await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    n = args.replicas
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench", "namespace": ns},
           "spec": {"replicas": n, "selector": {"matchLabels": {"app": "bench"}},
                    "template": {"metadata": {"labels": {"app": "bench"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    lst = await client.list(R.PODS, ns)
    seen: set[str] = set()
    sem = asyncio.Semaphore(args.concurrency)
    marks: set[asyncio.Task] = set()
    all_created = asyncio.Event()
    t_created = 0.0

    async def mark(p: dict) -> None:
        async with sem:
            await _mark_ready(client, ns, p)

    async def watch_pods() -> None:
        nonlocal t_created
        async for etype, p in client.watch(R.PODS, ns, resource_version=lst["metadata"]["resourceVersion"], resume=True):
            if etype == "ADDED" and p["metadata"]["uid"] not in seen:
                seen.add(p["metadata"]["uid"])
                t = asyncio.create_task(mark(p))
                marks.add(t)
                t.add_done_callback(marks.discard)
                if len(seen) >= n and not all_created.is_set():
                    t_created = time.monotonic()
                    all_created.set()

    watcher = asyncio.create_task(watch_pods())
    cpu0 = cpu_seconds(cm_pid)
    api_cpu0 = cpu_seconds(api_pid) if api_pid else 0.0
    t0 = time.monotonic()
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    with tempfile.TemporaryDirectory() as cache:
        proc = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", cache, "apply", "-f", "-",
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HOME": cache})
        _, err = await proc.communicate(json.dumps(dep).encode())
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl apply failed: {err.decode()}")
    t_applied = time.monotonic()
    deadline = t0 + args.timeout
    ready_s = None
    while time.monotonic() < deadline:
        d = await client.get(R.DEPLOYMENTS, "bench", ns)
        st = d.get("status") or {}
        if all_created.is_set() and st.get("availableReplicas") == n and st.get("observedGeneration", 0) >= d["metadata"].get("generation", 1):
            ready_s = time.monotonic() - t0
            break
        await asyncio.sleep(0.05)
    cpu = cpu_seconds(cm_pid) - cpu0
    api_cpu = cpu_seconds(api_pid) - api_cpu0 if api_pid else None
    watcher.cancel()
    for t in list(marks):
        t.cancel()
    await asyncio.gather(watcher, *marks, return_exceptions=True)
    await client.close()
    return {"benchmark": "controllers", "replicas": n,
            "deployment_1000_ready_s": round(ready_s, 3) if ready_s is not None else None,
            "pods_created_s": round(t_created - t0, 3) if t_created else None,
            "kubectl_apply_s": round(t_applied - t0, 3),
            "controller_manager_cpu_s": round(cpu, 3),
            "apiserver_cpu_s": round(api_cpu, 3) if api_cpu is not None else None, "target_s": 10.0,
            "met_target": ready_s is not None and ready_s < 10.0}


def _requests_by_method(metrics_port: int) -> dict[str, int]:
    """The controller-manager's ``rest_client_requests_total`` summed per method."""
    out: dict[str, int] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("rest_client_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            method = labels.split('method="', 1)[1].split('"', 1)[0]
            out[method] = out.get(method, 0) + int(float(value))
    return out


def _main(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        if not args.controller_manager_pid:
            raise SystemExit("--controller-manager-pid is required with --kubeconfig")
        result = asyncio.run(_run(args, Path(args.kubeconfig), args.controller_manager_pid))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-controllers-") as d:
            cluster = _Cluster(Path(d))
            try:
                pid = cluster.start()
                time.sleep(args.warmup)
                result = asyncio.run(_run(args, cluster.kubeconfig, pid, cluster.procs[0].pid))
                result["controller_manager_requests"] = _requests_by_method(cluster.metrics_port)
            finally:
                cluster.stop()
    print(json.dumps(result))
    return 0 if result["deployment_1000_ready_s"] is not None else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controllers", help="1,000-replica Deployment: apply -> all available (JSON)")
    p.add_argument("--replicas", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--concurrency", type=int, default=32, help="parallel status patches by the simulated node")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds for the controller-manager to sync")
    p.add_argument("--kubeconfig", help="use a running cluster instead of starting one")
    p.add_argument("--controller-manager-pid", type=int, default=0)
    p.set_defaults(func=_main)
