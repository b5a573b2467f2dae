"""``controlplane bench scheduling --nodes 5000 --pods 10000 [--profile default|enhanced|fgd]``:
Kubernetes' SchedulingBasic through the real apiserver and etcd, printed as JSON.

A fresh etcd and apiserver (child processes; ``--apiserver-workers``), ``--nodes`` simulated
nodes (4 CPU / 32Gi / 110 pods, registered through the API; no kubelet, as in scheduler_perf),
the scheduler as its own child process, then ``--warmup`` pods (1,000) placed first and
``--pods`` measured pods (100m / 500Mi) created by 32 concurrent clients. A watch of bound pods
gives ``pods_per_s_avg`` (measured pods / time from the start to the last binding, as
scheduler_perf counts), ``_p50``/``_p99`` of the per-second samples, ``etcd_txn_per_s`` (write
transactions, from etcd's own metrics) and ``cpu_ms_per_pod`` by process. The scheduler records
one ``Scheduled`` Event per pod (carried by the Binding, created by the apiserver once the binding
is stored; posted by the recorder where the apiserver cannot); a watch of those gives
``pods_per_s_with_events`` (until the last Event and the last SchedulingDecision record are
stored; ``--no-decision-records`` leaves records out), ``cpu_ms_per_pod_with_events`` and how
many were dropped. Neighbours: ``controlplane.agent.simulated`` (nodes),
``controlplane.cmd.scheduler`` (the scheduler process), ``loadgen`` (pod creates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from controlplane.agent.simulated import SimulatedNodes
from controlplane.bench import loadgen
from controlplane.client import resources
from controlplane.client.resources import Resource
from controlplane.client.rest import RestClient
from controlplane.etcd_process import EtcdProcess, free_port
from controlplane.kubeconfig import write_kubeconfig
from controlplane.procutil import cpu_seconds, terminate, tree_cpu_seconds, wait_ready

PROFILES = {"default": "default-scheduler", "enhanced": "enhanced-scheduler", "fgd": "fgd-scheduler"}
DECISIONS = Resource("scheduling.controlplane.io", "v1", "schedulingdecisions", "SchedulingDecision")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scheduling", help="SchedulingBasic: pods/s through the real apiserver and etcd")
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--profile", choices=sorted(PROFILES), default="default")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--backlog", action="store_true",
                   help="create the measured pods while the scheduler is stopped, then restart it: "
                        "measures scheduling + binding without concurrent pod creation")
    p.add_argument("--no-scheduled-events", action="store_true", help="scheduler records no Scheduled events")
    p.add_argument("--no-decision-records", action="store_true",
                   help="scheduler stores no SchedulingDecision objects (its scheduling.log is still written)")
    p.add_argument("--apiserver-workers", type=int, default=2, help="controlplane apiserver --workers")
    p.set_defaults(func=lambda a: asyncio.run(run(a)))


def _child(args: list[str], log: Path, level: str = "warning") -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "controlplane", *args], stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**os.environ, "CONTROLPLANE_LOG_LEVEL": level, "CONTROLPLANE_LOG_FORMAT": "json"})


def _stop(proc: subprocess.Popen) -> None:
    terminate(proc, 15)


def etcd_txns(endpoint: str) -> float:
    """Write transactions etcd has applied (``etcd_mvcc_txn_total``: every Put, Txn with a
    write, or DeleteRange is one; its puts and compares are counted separately by etcd in
    ``etcd_mvcc_put_total``/``_range_total`` and are not added here)."""
    with urllib.request.urlopen(endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^etcd_mvcc_txn_total(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def scheduler_algorithm_ms(port: int) -> float | None:
    """Mean scheduling-algorithm time (ms) from the scheduler's own histogram."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    tot = re.search(r"^scheduler_scheduling_algorithm_duration_seconds_sum ([0-9.e+-]+)$", text, re.M)
    cnt = re.search(r"^scheduler_scheduling_algorithm_duration_seconds_count ([0-9.e+-]+)$", text, re.M)
    if not tot or not cnt or float(cnt.group(1)) == 0:
        return None
    return round(float(tot.group(1)) / float(cnt.group(1)) * 1000, 3)


def pod_body(name: str, scheduler: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "bench"},
            "spec": {"schedulerName": scheduler, "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9",
                     "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}


async def create_pods(url: str, prefix: str, n: int, scheduler: str, concurrency: int) -> None:
    """Create ``n`` pods named ``prefix-<i>`` in namespace bench (an AlreadyExists is fine)."""
    bodies = (json.dumps(pod_body(f"{prefix}-{i}", scheduler), separators=(",", ":")).encode() for i in range(n))
    await loadgen.post_many(url, "/api/v1/namespaces/bench/pods", bodies, concurrency,
                            ok=lambda status, body: status == 201 or (status == 409 and b"AlreadyExists" in body))


class EventCounter:
    """Watches Scheduled Events in namespace bench; records when each arrived."""

    def __init__(self, client: RestClient) -> None:
        self.client = client
        self.times: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        lst = await self.client.list(resources.EVENTS, "bench", limit=1)
        rv = lst["metadata"]["resourceVersion"]
        async for etype, _ in self.client.watch(resources.EVENTS, "bench", resource_version=rv, resume=True,
                                                stop=stop, field_selector="reason=Scheduled"):
            if etype == "ADDED":
                self.times.append(time.monotonic())
            if stop.is_set():
                return


class RecordCounter:
    """Watches SchedulingDecision records in namespace bench; records when each arrived."""

    def __init__(self, client: RestClient) -> None:
        self.client = client
        self.times: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        lst = await self.client.list(DECISIONS, "bench", limit=1)
        rv = lst["metadata"]["resourceVersion"]
        async for etype, _ in self.client.watch(DECISIONS, "bench", resource_version=rv, resume=True, stop=stop):
            if etype == "ADDED":
                self.times.append(time.monotonic())
            if stop.is_set():
                return


class BindCounter:
    """Watches bound pods (``spec.nodeName!=``: each pod arrives once, when it is bound);
    records the time each one got its node."""

    def __init__(self, client: RestClient) -> None:
        self.client = client
        self.bound: dict[str, float] = {}
        self.per_prefix: dict[str, int] = {}
        self.event = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        lst = await self.client.list(resources.PODS, "bench", limit=1)
        rv = lst["metadata"]["resourceVersion"]
        async for etype, obj in self.client.watch(resources.PODS, "bench", resource_version=rv, resume=True, stop=stop,
                                                  field_selector="spec.nodeName!="):
            if etype in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                name = obj["metadata"]["name"]
                if name not in self.bound:
                    self.bound[name] = time.monotonic()
                    prefix = name.rsplit("-", 1)[0]
                    self.per_prefix[prefix] = self.per_prefix.get(prefix, 0) + 1
                    self.event.set()
            if stop.is_set():
                return

    async def wait_for(self, prefix: str, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.per_prefix.get(prefix, 0) < n:
            if time.monotonic() > deadline:
                return False
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return True


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    etcd = EtcdProcess(data_dir=work / "etcd")
    etcd.start_sync()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = _child(["apiserver", "--port", str(port), "--etcd-endpoints", etcd.endpoint, "--compaction-interval", "0",
                  "--workers", str(args.apiserver_workers),
                  # no controller-manager here creates namespaces' default ServiceAccount
                  "--disable-admission-plugins", "ServiceAccount"], work / "apiserver.log")
    sched = None
    stop = asyncio.Event()
    out: dict = {"bench": "scheduling", "profile": args.profile, "nodes": args.nodes, "pods": args.pods,
                 "scheduled_events": not args.no_scheduled_events, "decision_records": not args.no_decision_records}
    sched_flags = ["--decision-log", str(work / "scheduling.log"),
                   *(["--no-scheduled-events"] if args.no_scheduled_events else []),
                   *(["--no-decision-records"] if args.no_decision_records else [])]
    client = RestClient(url, user_agent="bench-scheduling", max_connections=args.concurrency + 8)
    try:
        wait_ready(url, api, timeout=120)
        kube = write_kubeconfig(work / "kubeconfig", url)
        t0 = time.monotonic()
        sim = SimulatedNodes(client, count=args.nodes, prefix="bench-node", concurrency=args.concurrency)
        await sim._bounded([sim._register(n) for n in sim.names])
        out["node_registration_s"] = round(time.monotonic() - t0, 1)
        await client.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        mport = free_port()
        sched = _child(["scheduler", "--kubeconfig", str(kube), "--metrics-port", str(mport), *sched_flags],
                       work / "scheduler.log")
        counter = BindCounter(client)
        watch = asyncio.create_task(counter.run(stop))
        ev_counter = EventCounter(client)
        ev_watch = asyncio.create_task(ev_counter.run(stop))
        rec_counter = RecordCounter(client)
        rec_watch = asyncio.create_task(rec_counter.run(stop))
        scheduler = PROFILES[args.profile]
        await create_pods(url, "warm", args.warmup, scheduler, args.concurrency)
        if not await counter.wait_for("warm", args.warmup, 600):
            raise RuntimeError("warm-up pods were not all scheduled")
        if args.backlog:
            _stop(sched)
            t_c = time.monotonic()
            await create_pods(url, "m", args.pods, scheduler, args.concurrency)
            out["backlog_create_per_s"] = round(args.pods / (time.monotonic() - t_c), 1)
            sched = _child(["scheduler", "--kubeconfig", str(kube), "--metrics-port", str(mport), *sched_flags],
                           work / "scheduler.log")
            while not counter.per_prefix.get("m"):
                await asyncio.sleep(0.05)
        procs = {"etcd": etcd.proc.pid, "apiserver": api.pid, "scheduler": sched.pid, "bench": None}
        cpu0 = {k: tree_cpu_seconds(pid) if pid else cpu_seconds() for k, pid in procs.items()}
        txn0, t_start = etcd_txns(etcd.endpoint), time.monotonic()
        created: list[float] = []
        if args.backlog:
            t_start = min(v for k, v in counter.bound.items() if k.startswith("m-"))
            creator = asyncio.create_task(asyncio.sleep(0))
        else:
            creator = asyncio.create_task(create_pods(url, "m", args.pods, scheduler, args.concurrency))
        creator.add_done_callback(lambda _: created.append(time.monotonic()))
        ok = await counter.wait_for("m", args.pods, 1800)
        await creator
        cpu1 = {k: tree_cpu_seconds(pid) if pid else cpu_seconds() for k, pid in procs.items()}
        # the Scheduled Events still queued in the scheduler and the decision records are part
        # of the work: wait for them
        want_ev = 0 if args.no_scheduled_events else args.warmup + args.pods
        want_rec = 0 if args.no_decision_records else args.warmup + args.pods
        while len(ev_counter.times) < want_ev or len(rec_counter.times) < want_rec:
            seen = len(ev_counter.times) + len(rec_counter.times)
            await asyncio.sleep(2.0)
            if len(ev_counter.times) + len(rec_counter.times) == seen:
                break  # no longer growing: the rest were dropped
        events = len(ev_counter.times)
        records = len(rec_counter.times)
        events_done = max(ev_counter.times[-1] if ev_counter.times else 0.0,
                          rec_counter.times[-1] if rec_counter.times else 0.0) or time.monotonic()
        cpu2 = {k: tree_cpu_seconds(pid) if pid else cpu_seconds() for k, pid in procs.items()}
        algo = scheduler_algorithm_ms(mport)
        txn1, t_end = etcd_txns(etcd.endpoint), time.monotonic()
        times = sorted(v for k, v in counter.bound.items() if k.startswith("m-"))
        if not ok or not times:
            raise RuntimeError(f"only {len(times)} of {args.pods} measured pods were scheduled")
        span = max(times[-1] - t_start, 1e-9)
        samples: list[float] = []
        sec = t_start
        while sec < times[-1]:
            samples.append(float(sum(1 for t in times if sec <= t < sec + 1)))
            sec += 1
        out.update({
            "pods_per_s_avg": round(len(times) / span, 1),
            "pods_per_s_p50": _pct(samples, 0.50),
            "pods_per_s_p99": _pct(samples, 0.99),
            "measured_s": round(span, 2),
            "etcd_txn_per_s": round((txn1 - txn0) / max(t_end - t_start, 1e-9), 1),
            "create_per_s": None if args.backlog else round(args.pods / max(created[0] - t_start, 1e-9), 1),
            "mode": "backlog" if args.backlog else "concurrent-create",
            "scheduler_algorithm_ms_avg": algo,
            # CPU per measured pod by process (where the 2 cores go), and the machine's share used
            "cpu_ms_per_pod": {k: round((cpu1[k] - cpu0[k]) * 1000 / args.pods, 3) for k in procs},
            "cpu_cores_busy": round(sum(cpu1[k] - cpu0[k] for k in procs) / max(t_end - t_start, 1e-9), 2),
            # the same until every Scheduled Event is stored (or stopped arriving), and their count
            "cpu_ms_per_pod_with_events": {k: round((cpu2[k] - cpu0[k]) * 1000 / args.pods, 3) for k in procs},
            "scheduled_events_stored": events,
            # measured pods per second until the last of their Scheduled Events and decision
            # records was stored too
            "pods_per_s_with_events": round(len(times) / max(max(events_done, times[-1]) - t_start, 1e-9), 1),
            "scheduled_events_dropped": (0 if args.no_scheduled_events
                                         else max(0, args.warmup + args.pods - events)),
            "decision_records_stored": records,
            "decision_records_missing": 0 if args.no_decision_records else max(0, args.warmup + args.pods - records),
            "target_pods_per_s": 680,
        })
        stop.set()
        for task in (watch, ev_watch, rec_watch):
            task.cancel()
        await asyncio.gather(watch, ev_watch, rec_watch, return_exceptions=True)
    finally:
        stop.set()
        await client.close()
        if sched is not None:
            _stop(sched)
        _stop(api)
        etcd.stop()
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
