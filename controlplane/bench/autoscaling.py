"""``controlplane bench autoscaling [--nodes 5000] [--pods 150000] [--hpas 1000]``: the resource
metrics pipeline and the HorizontalPodAutoscaler at scale, printed as JSON.

A fresh etcd and apiserver, secured as ``controlplane up`` secures them (TLS, Node+RBAC, each
component under its own identity: the metrics-server as ``system:metrics-server``, its scrapes
authorized by the simulated nodes through SubjectAccessReviews, the Metrics API reached through
the front proxy; no audit log), ``--nodes`` simulated nodes (``controlplane agent --simulated``,
one child process serving every node's synthetic ``/metrics/resource``), ``--pods`` pods
bound straight to them (100m CPU / 128Mi requests, ``--hpas`` label groups spread over 100
namespaces), the metrics component (``controlplane metrics-server``, 15 s resolution) behind
the ``v1beta1.metrics.k8s.io`` APIService, and a controller-manager running only the
HorizontalPodAutoscaler controller (``--hpas`` HPAs, one per group, each on a Deployment that
selects the group's pods; no Deployment controller, so the pods stay as they are;
``--hpa-workers`` concurrent syncs, 20 by default where Kubernetes' default is 5). Figures:

- the pipeline: ``nodemetrics_list_p99_s`` / ``podmetrics_list_p99_s`` (all namespaces) /
  ``podmetrics_namespace_list_p99_s`` through the apiserver's aggregation layer (and
  ``..._direct`` straight from the component), the component's RSS and scrape cycle time;
- the HPAs: ``hpa_wave_s_controller`` / ``..._median`` (each warm wave of ``--hpas`` syncs
  from its due time — the first of the HPAs a resync queued becoming due — to the end of the
  last of their syncs, as the controller times it:
  ``horizontal_pod_autoscaler_controller_resync_wave_duration_seconds``; queueing and waiting
  for the lists included — the figure the target is held to), cross-checked from outside:
  ``hpa_full_sync_from_due_s_waves`` / ``..._median`` (from the due time,
  ``horizontal_pod_autoscaler_controller_resync_due_timestamp_seconds``, to the first scrape
  of the reconciliation counter showing all of them done: an upper bound, within one
  ``--scrape-interval``), ``hpa_full_sync_s`` (the best warm wave from the first of them to
  finish to the last, by the same scrapes; ``..._waves`` all, ``..._median`` the median warm
  one); ``cpu_s_per_period`` (each process's CPU seconds per sync period over the measured
  waves: the controller-manager, the apiserver with its workers, the simulated nodes, the
  metrics-server, etcd; they share the machine's cores), ``cpu_cores_during_waves`` (the cores
  each of them, and the whole machine, used on average inside the timed waves' windows, from
  samples every 0.1 s: who had the cores while the HPAs were synced), ``hpa_syncs_per_period`` (reconciliations per 15 s
  period: every HPA must be synced each period), ``hpa_cpu_ms_per_reconcile`` (the
  controller-manager's CPU per reconciliation after the first wave: independent of how busy
  the machine is), ``hpa_podmetrics_lists_per_wave`` (PodMetrics namespace lists requested
  per wave; one per namespace is the design);
- ``scale_up_reaction_s``: from a load step (every pod of one group annotated to use 2x its
  request, ``sim.controlplane.io/cpu-usage``) to the Deployment's ``spec.replicas`` write.

``--sim-nice N`` runs the simulated nodes at niceness N (default 0): they stand in for 5,000
machines whose kubelets would not share the control plane's cores; at 10 they get what the
control plane's processes leave (they still answer every scrape and renew every Lease; their
CPU is in ``cpu_s_per_period``). At 10 the waves were no shorter (docs/metrics.md): inside a
wave they used 0.07 cores.

Targets (issue 16): list p99 <= 1 s, one full sync <= 1 s, reaction <= 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from controlplane.bench import loadgen
from controlplane.client import resources as R
from controlplane.client.rest import RestClient
from controlplane.cmd import secure
from controlplane.etcd_process import EtcdProcess, EtcdTLS, free_port
from controlplane.metrics.register import SERVICE_DNS
from controlplane.metrics.register import register as register_metrics_api
from controlplane.pki.cluster import ClusterPKI
from controlplane.pki.kubeconfigs import write_component_kubeconfigs
from controlplane.procutil import terminate, tree_pids, tree_rss_mib, wait_ready

NAMESPACES = 100
CPU_REQUEST = "100m"
TARGET_UTILIZATION = 50


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("autoscaling", help="metrics pipeline at scale, HPA sync time and reaction time")
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--pods", type=int, default=150000)
    p.add_argument("--hpas", type=int, default=1000)
    p.add_argument("--resolution", type=float, default=15.0, help="metrics-server --metric-resolution (s)")
    p.add_argument("--sync-period", type=float, default=15.0, help="HPA sync period (s)")
    p.add_argument("--samples", type=int, default=100,
                   help="sequential requests per measured list (each list's p99 is the nearest-rank 99th "
                        "percentile: with 100 samples the second worst)")
    p.add_argument("--apiserver-workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--hpa-workers", type=int, default=20,
                   help="the controller-manager's --concurrent-horizontal-pod-autoscaler-syncs (Kubernetes' default: 5)")
    p.add_argument("--sim-nice", type=int, default=0,
                   help="niceness of the simulated nodes' process (they stand in for 5,000 machines whose work "
                        "would not be on the control plane's cores; 10 lets them take only what the control "
                        "plane leaves; 0, the default: the same priority as the components)")
    p.add_argument("--scrape-interval", type=float, default=1.0,
                   help="how often the HPA phase reads the controller-manager's /metrics (s); each read costs "
                        "the controller CPU (the 50 ms of earlier runs took ~13%% of it at 1,000 HPAs); the waves are timed by "
                        "the controller itself, these reads only cross-check them")
    p.set_defaults(func=lambda a: asyncio.run(run(a)))


def _child(args: list[str], log: Path, env: dict[str, str] | None = None, nice: int = 0) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "controlplane", *args], stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=(lambda: os.nice(nice)) if nice else None,
                                env={**os.environ, "CONTROLPLANE_LOG_LEVEL": "warning", "CONTROLPLANE_LOG_FORMAT": "json",
                                     **(env or {})})


def _pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile (the smallest sample with at least ``q`` of the samples at
    or below it): with 100 samples p99 is the 99th, with 10 or fewer the worst."""
    s = sorted(values)
    return round(s[max(0, min(len(s), math.ceil(q * len(s))) - 1)], 3) if s else 0.0


@dataclass(frozen=True)
class Target:
    """A component's metrics port: HTTPS with delegated authn/authz (``cmd.statusserver``), as
    ``up`` runs it, read with the admin's client certificate."""

    port: int
    tls: ssl.SSLContext


def _scrape(target: Target) -> str:
    with urllib.request.urlopen(f"https://127.0.0.1:{target.port}/metrics", timeout=10, context=target.tls) as r:
        return r.read().decode()


def _metric(target: Target, name: str, labels: str = "", text: str | None = None) -> float:
    """Sum of a metric's samples (optionally those whose labels contain ``labels``), from
    ``text`` or a fresh scrape."""
    if text is None:
        text = _scrape(target)
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M):
        if labels in (m.group(1) or ""):
            total += float(m.group(2))
    return total


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (an apiserver and its workers)."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += _cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            pass
    return total


def _machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine, every core (``/proc/stat``)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:9]]
    tck = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / tck, f[7] / tck


class _CpuSampler:
    """Each process tree's CPU seconds, and the machine's, every ``interval`` seconds (in a
    thread: the HPA phase's loop blocks on its scrapes), so that the CPU used during each
    wave can be told apart by process: who had the cores while the HPAs were synced."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.trees = {k: tree_pids(p) for k, p in pids.items()}  # an apiserver and its workers
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.time()
            cpu: dict[str, float] = {}
            for k, pids in self.trees.items():
                total = 0.0
                for p in pids:
                    try:
                        total += _cpu_seconds(p)
                    except (OSError, IndexError, ValueError):
                        pass
                cpu[k] = total
            cpu["machine"], cpu["machine_stolen"] = _machine_cpu_seconds()
            self.samples.append((t, cpu))
            self._stop.wait(self.interval)

    def _at(self, key: str, t: float) -> float | None:
        """The cumulative CPU of ``key`` at wall time ``t`` (linear between samples)."""
        s = self.samples
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0[key] + (c1[key] - c0[key]) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return None

    def during(self, windows: list[tuple[float, float]]) -> dict[str, float]:
        """Cores each process (and the machine, ``machine``) used on average during
        ``windows`` ([start, end] wall times) that the samples cover."""
        used: dict[str, float] = {}
        span = 0.0
        keys = list(self.samples[0][1]) if self.samples else []
        for a, b in windows:
            ends = {k: (self._at(k, a), self._at(k, b)) for k in keys}
            if b <= a or any(x is None or y is None for x, y in ends.values()):
                continue
            span += b - a
            for k, (x, y) in ends.items():
                used[k] = used.get(k, 0.0) + (y - x)  # type: ignore[operator]
        return {k: round(v / span, 2) for k, v in used.items()} if span else {}


def pod_body(i: int, nodes: int, groups: int) -> bytes:
    g = i % groups
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p-{i}", "namespace": f"bench-{g % NAMESPACES}", "labels": {"app": f"g{g}"}},
        "spec": {"nodeName": f"sim-node-{i % nodes}", "containers": [{
            "name": "app", "image": "registry.k8s.io/pause:3.9",
            "resources": {"requests": {"cpu": CPU_REQUEST, "memory": "128Mi"}}}]}},
        separators=(",", ":")).encode()


async def timed_get(session: aiohttp.ClientSession, url: str, n: int, span: float = 0.0) -> tuple[list[float], int]:
    """``n`` sequential GETs, started at most every ``span / n`` seconds (so that they cover
    ``span``, e.g. two scrape cycles, rather than whatever part of one cycle ``n`` quick
    lists take): latencies (s) from sending the request to the last byte of the answer
    received (the body is neither decoded nor copied in the timed part), and the item count
    of the last answer."""
    out, items = [], 0
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i * span / max(1, n) - time.perf_counter()))
        t0 = time.perf_counter()
        async with session.get(url) as r:
            body = await r.read()
            elapsed = time.perf_counter() - t0
            if r.status != 200:
                raise RuntimeError(f"GET {url}: {r.status} {body[:300]!r}")
        out.append(elapsed)
        items = body.count(b'"timestamp":')
    return out, items


async def run(args: argparse.Namespace) -> int:
    # SIGTERM cancels the run, so the child processes are stopped and nothing is left behind
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
    work = Path(tempfile.mkdtemp(prefix="bench-autoscaling-"))
    # secured as `up` runs it: etcd and the apiserver with TLS, Node+RBAC, every component under
    # its own identity (the simulated nodes authorize the metrics-server's scrapes as kubelets do)
    pki = ClusterPKI(work / "pki")
    await asyncio.to_thread(pki.ensure, hostname="bench")
    pki.node_serving("sim-nodes", ["127.0.0.1"])
    pki.serving("metrics-server-serving", "metrics-server", ["127.0.0.1", "localhost", SERVICE_DNS])
    pki.serving("controller-manager-serving", "kube-controller-manager", ["127.0.0.1", "localhost"])
    admin_ssl = ssl.create_default_context(cafile=str(pki.ca_file))
    admin_ssl.load_cert_chain(pki.crt("admin"), pki.key("admin"))
    etcd = EtcdProcess(data_dir=work / "etcd", tls=EtcdTLS.from_pki(pki.dir))
    etcd.start_sync()
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    out: dict = {"bench": "autoscaling", "nodes": args.nodes, "pods": args.pods, "hpas": args.hpas,
                 "resolution_s": args.resolution, "sync_period_s": args.sync_period, "secured": True}
    groups = max(1, args.hpas)
    env: dict[str, str] = {}
    client: RestClient | None = None
    try:
        procs.append(_child(["apiserver", "--port", str(port), "--etcd-endpoints", etcd.endpoint,
                             "--compaction-interval", "0", "--workers", str(args.apiserver_workers),
                             *secure.apiserver_args(pki, work, audit=False)], work / "apiserver.log", env))
        wait_ready(url, procs[-1], timeout=120, context=ssl.create_default_context(cafile=str(pki.ca_file)))
        kubeconfigs = write_component_kubeconfigs(pki, url, work, ["sim-nodes"])
        client = RestClient.from_kubeconfig(str(kubeconfigs["admin"]), user_agent="bench-autoscaling", max_connections=64)
        t0 = time.monotonic()
        sport_metrics = free_port()
        # one process simulates every node: it writes 5,000 Nodes' status, more than one node's
        # identity may (Node authorizer), so it runs as the admin; its stats server authorizes
        # each scrape as a kubelet does (SubjectAccessReview on nodes/metrics of that node)
        sim = _child(["agent", "--simulated", "--nodes", str(args.nodes), "--kubeconfig", str(kubeconfigs["admin"]),
                      "--prefix", "sim-node", "--cpu", "4", "--memory", "32Gi", "--metrics-port", str(sport_metrics),
                      "--tls-cert-file", str(pki.crt("node-sim-nodes-serving")),
                      "--tls-private-key-file", str(pki.key("node-sim-nodes-serving")),
                      "--client-ca-file", str(pki.ca_file)], work / "sim.log", env, nice=args.sim_nice)
        procs.append(sim)
        for i in range(NAMESPACES):
            await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": f"bench-{i}"}})
            # what the serviceaccount controller (not run here) would create: the pods' admission
            # (ServiceAccount plugin) looks it up
            await client.create(R.SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                    "metadata": {"name": "default"}}, f"bench-{i}")
        while len((await client.list(R.NODES, limit=args.nodes)).get("items") or []) < args.nodes:
            await asyncio.sleep(1)
        out["node_registration_s"] = round(time.monotonic() - t0, 1)
        t1 = time.monotonic()
        bodies = (pod_body(i, args.nodes, groups) for i in range(args.pods))
        await _post_pods(url, bodies, args.concurrency, admin_ssl)
        out["pods_created_s"] = round(time.monotonic() - t1, 1)
        while True:  # the "kubelets" caught up (a busy simulator may answer its metrics port late)
            try:
                if _metric(Target(sport_metrics, admin_ssl), "simulated_node_running_pods") >= args.pods:
                    break
            except OSError:
                pass
            await asyncio.sleep(2)
        out["pods_running_s"] = round(time.monotonic() - t1, 1)

        mport = free_port()
        ms_port = free_port()
        ms = _child(["metrics-server", "--kubeconfig", str(kubeconfigs["metrics-server"]),
                     "--metric-resolution", f"{args.resolution}s", "--metrics-port", str(mport), "--data-dir", str(work),
                     "--secure-port", str(ms_port), "--tls-cert-file", str(pki.crt("metrics-server-serving")),
                     "--tls-private-key-file", str(pki.key("metrics-server-serving")),
                     "--requestheader-client-ca-file", str(pki.crt("front-proxy-ca")),
                     "--requestheader-allowed-names", "front-proxy-client", "--client-ca-file", str(pki.ca_file),
                     "--kubelet-certificate-authority", str(pki.ca_file),
                     "--kubelet-client-certificate", str(pki.crt("metrics-server")),
                     "--kubelet-client-key", str(pki.key("metrics-server")),
                     "--kube-state-metrics=false"], work / "metrics-server.log", env)
        procs.append(ms)
        await register_metrics_api(client, "127.0.0.1", ms_port, pki.ca_file)
        t2 = time.monotonic()
        deadline = t2 + 900
        stored = 0.0
        while time.monotonic() < deadline:
            try:
                stored = _metric(Target(mport, admin_ssl), "metrics_server_storage_points", 'type="pod_container"')
            except OSError:
                stored = 0
            # every pod, or all but 0.1 %: at thousands of nodes on a busy machine a few scrapes
            # of each cycle time out, and those nodes' pods miss that cycle (as in metrics-server)
            if stored >= args.pods * 0.999:
                break
            await asyncio.sleep(2)
        out["pipeline_ready_s"] = round(time.monotonic() - t2, 1)
        out["pods_with_points_at_ready"] = int(stored)
        await asyncio.sleep(args.resolution + 1)  # a second cycle: every pod has two points
        # as the admin (client certificate): through the aggregation layer, and straight to the
        # component (which authorizes the admin with a SubjectAccessReview, cached)
        span = 2 * args.resolution  # each list's samples spread over two scrape cycles
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=admin_ssl),
                                         timeout=aiohttp.ClientTimeout(total=120)) as s2:
            for label, base in (("", url), ("_direct", f"https://127.0.0.1:{ms_port}")):
                lat, n = await timed_get(s2, f"{base}/apis/metrics.k8s.io/v1beta1/nodes", args.samples, span)
                out[f"nodemetrics_list_p50_s{label}"], out[f"nodemetrics_list_p99_s{label}"] = _pct(lat, .5), _pct(lat, .99)
                out[f"nodemetrics_items{label}"] = n
                lat, n = await timed_get(s2, f"{base}/apis/metrics.k8s.io/v1beta1/pods", args.samples, span)
                out[f"podmetrics_list_p50_s{label}"], out[f"podmetrics_list_p99_s{label}"] = _pct(lat, .5), _pct(lat, .99)
                out[f"podmetrics_list_max_s{label}"] = round(max(lat), 3)
                out[f"podmetrics_list_samples{label}"] = len(lat)
                out[f"podmetrics_items{label}"] = n
                lat, n = await timed_get(s2, f"{base}/apis/metrics.k8s.io/v1beta1/namespaces/bench-0/pods", args.samples, span)
                out[f"podmetrics_namespace_list_p99_s{label}"] = _pct(lat, .99)
        out["metrics_server_rss_mib"] = round(tree_rss_mib(ms.pid), 1)
        cyc_sum = _metric(Target(mport, admin_ssl), "metrics_server_manager_tick_duration_seconds_sum")
        cyc_cnt = _metric(Target(mport, admin_ssl), "metrics_server_manager_tick_duration_seconds_count")
        out["scrape_cycle_s_avg"] = round(cyc_sum / cyc_cnt, 2) if cyc_cnt else None

        if args.hpas:
            pids = {"apiserver": procs[0].pid, "simulated_nodes": sim.pid, "metrics_server": ms.pid}
            if etcd.proc is not None:
                pids["etcd"] = etcd.proc.pid
            out.update(await _hpas(args, client, url, kubeconfigs["controller-manager"], admin_ssl, work, env, procs,
                                   groups, pids))
        out["targets"] = {"list_p99_s": 1.0, "hpa_full_sync_from_due_s_median": 1.0, "scale_up_reaction_s": 30.0}
    except BaseException as e:  # the figures so far still print, with what stopped the run
        out["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        if client is not None:
            await client.close()
        for p in reversed(procs):
            terminate(p, 20)
        etcd.stop()
        if "targets" in out:  # finished: nothing to look at (a failed run keeps its logs)
            shutil.rmtree(work, ignore_errors=True)
        else:
            sys.stderr.write(f"logs kept in {work}\n")
        sys.stdout.write(json.dumps(out) + "\n")
    return 0


async def _post_pods(url: str, bodies, concurrency: int, tls: ssl.SSLContext) -> None:
    """Create the pods namespace by namespace path (loadgen POSTs to one path)."""
    per_ns: dict[str, list[bytes]] = {}
    for b in bodies:
        ns = json.loads(b)["metadata"]["namespace"]
        per_ns.setdefault(ns, []).append(b)
    for ns, items in per_ns.items():
        await loadgen.post_many(url, f"/api/v1/namespaces/{ns}/pods", iter(items), concurrency, ssl=tls,
                                ok=lambda status, body: status == 201 or (status == 409 and b"AlreadyExists" in body))


async def _hpas(args: argparse.Namespace, client: RestClient, url: str, kube: Path, tls: ssl.SSLContext,
                work: Path, env: dict[str, str], procs: list[subprocess.Popen], groups: int,
                pids: dict[str, int] | None = None) -> dict:
    out: dict = {}
    per_group = max(1, args.pods // groups)
    deps = []
    for g in range(groups):
        ns = f"bench-{g % NAMESPACES}"
        deps.append(json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": f"g{g}", "namespace": ns},
                                "spec": {"replicas": per_group, "selector": {"matchLabels": {"app": f"g{g}"}},
                                         "template": {"metadata": {"labels": {"app": f"g{g}"}}, "spec": {"containers": [
                                             {"name": "app", "image": "registry.k8s.io/pause:3.9",
                                              "resources": {"requests": {"cpu": CPU_REQUEST}}}]}}}},
                               separators=(",", ":")).encode())
    hpas = [json.dumps({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                        "metadata": {"name": f"g{g}", "namespace": f"bench-{g % NAMESPACES}"},
                        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"g{g}"},
                                 "minReplicas": 1, "maxReplicas": 4 * per_group,
                                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                                     "type": "Utilization", "averageUtilization": TARGET_UTILIZATION}}}]}},
                       separators=(",", ":")).encode() for g in range(groups)]
    for kind, items in (("deployments", deps), ("horizontalpodautoscalers", hpas)):
        by_ns: dict[str, list[bytes]] = {}
        for b in items:
            by_ns.setdefault(json.loads(b)["metadata"]["namespace"], []).append(b)
        group = "apps/v1" if kind == "deployments" else "autoscaling/v2"
        for ns, bs in by_ns.items():
            await loadgen.post_many(url, f"/apis/{group}/namespaces/{ns}/{kind}", iter(bs), args.concurrency, ssl=tls)
    cport = free_port()
    cm_target = Target(cport, tls)
    cm = _child(["controller-manager", "--kubeconfig", str(kube), "--controllers", "horizontalpodautoscaling",
                 "--leader-elect=false", "--metrics-port", str(cport),
                 "--tls-cert-file", str(work / "pki" / "controller-manager-serving.crt"),
                 "--tls-private-key-file", str(work / "pki" / "controller-manager-serving.key"),
                 "--client-ca-file", str(work / "pki" / "ca.crt"),
                 "--horizontal-pod-autoscaler-sync-period", f"{args.sync_period}s",
                 "--concurrent-horizontal-pod-autoscaler-syncs", str(args.hpa_workers)], work / "controller-manager.log", env)
    procs.append(cm)
    name = "horizontal_pod_autoscaler_controller_reconciliations_total"
    # the controller starts once its caches have synced (at 150,000 pods the pod list alone
    # takes the better part of a minute); the window below starts with its first sync
    t_cm = time.monotonic()
    while time.monotonic() < t_cm + 900:
        try:
            if _metric(cm_target, name) > 0:
                break
        except OSError:
            pass
        await asyncio.sleep(0.5)
    out["hpa_first_sync_after_start_s"] = round(time.monotonic() - t_cm, 1)
    # waves: the counter's timeline, sampled every --scrape-interval, over three periods
    samples: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []  # (reconciliations, the controller-manager's CPU seconds)
    t_end = time.monotonic() + 4 * args.sync_period + 30
    lists_first: float | None = None  # the lists requested when the first full wave was done
    due_name = "horizontal_pod_autoscaler_controller_resync_due_timestamp_seconds"
    ends: list[tuple[float, float]] = []  # (wall time, reconciliations)
    dues: set[float] = set()  # the due times of the resyncs' waves
    wave_name = "horizontal_pod_autoscaler_controller_resync_wave_duration_seconds"
    wave_seen = (0.0, 0.0)  # the wave histogram's (count, sum) at the last scrape
    controller_waves: list[float] = []  # each wave's length from its due time, as the controller timed it
    cm_pids = {"controller_manager": cm.pid, **(pids or {})}
    cpu_start: dict[str, float] | None = None  # every process's CPU when the first full wave was done
    cpu_start_syncs = 0.0
    done_name = "horizontal_pod_autoscaler_controller_resync_wave_done_timestamp_seconds"
    wave_windows: list[tuple[float, float]] = []  # each timed warm wave's [due, end] (wall time)
    sampler = _CpuSampler(cm_pids)
    sampler.start()
    try:
        while time.monotonic() < t_end:
            try:
                text = _scrape(cm_target)
                samples.append((time.monotonic(), _metric(cm_target, name, text=text)))
                ends.append((time.time(), samples[-1][1]))
                due = _metric(cm_target, due_name, text=text)
                if due > 0:
                    dues.add(due)
                wc, ws = _metric(cm_target, wave_name + "_count", text=text), _metric(cm_target, wave_name + "_sum", text=text)
                if wc > wave_seen[0]:
                    if wave_seen[0] > 0:  # the first wave (start-up, the caches) is not a steady one
                        length = (ws - wave_seen[1]) / (wc - wave_seen[0])
                        controller_waves.append(round(length, 3))
                        if wc - wave_seen[0] == 1:  # one wave ended since the last read: its window
                            end = _metric(cm_target, done_name, text=text)
                            wave_windows.append((end - length, end))
                    wave_seen = (wc, ws)
                if cpu_start is None and samples[-1][1] >= groups:
                    cpu_start = {k: _tree_cpu_seconds(p) for k, p in cm_pids.items()}
                    cpu_start_syncs = samples[-1][1]
                cpu.append((samples[-1][1], _cpu_seconds(cm.pid)))
                if lists_first is None and samples[-1][1] >= groups:
                    lists_first = _metric(cm_target, "horizontal_pod_autoscaler_controller_resource_metrics_lists_total",
                                          'source="request"')
                    cpu[-1] = (_metric(cm_target, name), cpu[-1][1])
            except OSError:
                pass
            await asyncio.sleep(args.scrape_interval)
    finally:
        sampler.stop()
    if cpu_start is not None and samples[-1][1] > cpu_start_syncs:
        # every process's CPU per HPA sync over the measured waves (the machine's 2 cores are
        # shared: a wave's length is bounded below by the busiest process and by their sum / 2)
        per = (samples[-1][1] - cpu_start_syncs) / groups  # waves
        out["cpu_s_per_period"] = {k: round((_tree_cpu_seconds(p) - cpu_start[k]) / per, 2) for k, p in cm_pids.items()}
    # who had the machine's cores during the timed waves (cores on average; 2 on this machine;
    # "machine" counts every process on it, this benchmark's and any other)
    out["cpu_cores_during_waves"] = sampler.during(wave_windows)
    out["hpa_wave_s_controller"] = controller_waves
    out["hpa_wave_s_controller_median"] = sorted(controller_waves)[len(controller_waves) // 2] if controller_waves else None
    out["hpa_scrape_interval_s"] = args.scrape_interval
    waves = []
    start = None
    for t, v in samples:
        k = int(v // groups)
        if start is None and v > k * groups and v - k * groups < groups:
            start = (t, k)
        if start is not None and k > start[1]:
            waves.append(t - start[0])
            start = None
    # the same waves from their start: the time the resync made them due (all --hpas HPAs at
    # once) to the first sample showing all of them reconciled (50 ms sampling), queueing and
    # waiting for lists included
    due_waves = []
    for d in sorted(dues):
        before = [v for t, v in ends if t < d]  # the count before the wave was due
        if not before:
            continue
        base = before[-1]
        done = next((t for t, v in ends if t >= d and v >= base + groups), None)
        if done is not None:
            due_waves.append(round(done - d, 2))
    out["hpa_full_sync_from_due_s_waves"] = due_waves
    out["hpa_full_sync_from_due_s_median"] = sorted(due_waves)[len(due_waves) // 2] if due_waves else None
    out["hpa_full_sync_s_waves"] = [round(w, 2) for w in waves]
    out["hpa_full_sync_s"] = round(min(waves[1:] or waves), 2) if waves else None
    # the best wave can be one whose syncs all waited for their lists and ended together: the
    # median of the warm waves says what a wave typically takes
    warm = sorted(waves[1:] or waves)
    out["hpa_full_sync_s_median"] = round(warm[len(warm) // 2], 2) if warm else None
    if len(samples) > 2:
        span = samples[-1][0] - samples[0][0]
        out["hpa_syncs_per_period"] = round((samples[-1][1] - samples[0][1]) / span * args.sync_period, 1)
    # CPU per reconciliation, from the first full wave on (start-up and the initial lists
    # excluded); includes the controller-manager's answers to this loop's metric scrapes
    first = next((c for c in cpu if c[0] >= groups), None)
    if first is not None and cpu[-1][0] > first[0]:
        out["hpa_cpu_ms_per_reconcile"] = round((cpu[-1][1] - first[1]) / (cpu[-1][0] - first[0]) * 1000, 2)
    # PodMetrics namespace lists requested per wave (the design: one per namespace, NAMESPACES)
    lists = "horizontal_pod_autoscaler_controller_resource_metrics_lists_total"
    if first is not None and lists_first is not None and samples[-1][1] > first[0]:
        requested = _metric(cm_target, lists, 'source="request"') - lists_first
        out["hpa_podmetrics_lists_per_wave"] = round(requested / (samples[-1][1] - first[0]) * groups, 1)
    out["hpa_workers"] = args.hpa_workers
    dur_sum = _metric(cm_target, "horizontal_pod_autoscaler_controller_reconciliation_duration_seconds_sum")
    dur_cnt = _metric(cm_target, "horizontal_pod_autoscaler_controller_reconciliation_duration_seconds_count")
    out["hpa_reconcile_ms_avg"] = round(dur_sum / dur_cnt * 1000, 2) if dur_cnt else None
    st = (await client.list(R.HORIZONTALPODAUTOSCALERS))["items"]
    out["hpas_with_current_metrics"] = sum(1 for h in st if (h.get("status") or {}).get("currentMetrics"))
    # the load step: every pod of group 0 now uses twice its request
    ns = "bench-0"
    pods = (await client.list(R.PODS, ns, label_selector="app=g0"))["items"]
    dep0 = await client.get(R.DEPLOYMENTS, "g0", ns)
    before = dep0["spec"]["replicas"]
    rv = dep0["metadata"]["resourceVersion"]
    await asyncio.gather(*(client.patch(R.PODS, p["metadata"]["name"],
                                        {"metadata": {"annotations": {"sim.controlplane.io/cpu-usage": "200m"}}}, ns)
                           for p in pods))
    t_step = time.monotonic()
    reaction = None
    async for etype, obj in client.watch(R.DEPLOYMENTS, ns, resource_version=rv, field_selector="metadata.name=g0",
                                         timeout_seconds=180):
        if etype == "MODIFIED" and obj["spec"].get("replicas") != before:
            reaction = time.monotonic() - t_step
            out["scale_up_to"] = obj["spec"]["replicas"]
            break
    out["scale_up_from"] = before
    out["scale_up_reaction_s"] = round(reaction, 1) if reaction is not None else None
    return out
