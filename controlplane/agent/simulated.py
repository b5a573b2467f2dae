"""Simulated nodes (like kwok): node objects with no machine behind them, for scheduling
experiments and benchmarks at thousands of nodes.

``controlplane agent --simulated --nodes N --prefix P --cpu 4 --memory 32Gi --pods 110
[--gpus 8[:MODEL]] [--labels k=v,...]`` runs :class:`SimulatedNodes` (the CLI module
``controlplane.cmd.agent`` owns the flags and the process). It

- registers nodes ``P-0 … P-(N-1)`` (Ready, with capacity/allocatable, hostname label,
  ``nvidia.com/gpu`` and the ``nvidia.com/gpu.product`` label when GPUs are given);
- keeps one Lease per node in ``kube-node-lease`` fresh (renewals spread over the interval);
- watches pods once (one informer for all nodes) and marks pods bound to its nodes Running
  and Ready, with a bounded pool of concurrent status writes; ephemeral containers added
  later (``kubectl debug``) are reported running in ``ephemeralContainerStatuses``; pods being
  deleted are finished (deleted with grace period 0), as a kubelet would;
- with ``stats_address`` set, serves every node's ``/metrics/resource`` from one HTTP server
  (authenticated and authorized as a kubelet's: ``nodes/metrics`` of that node) at ``/metrics/nodes/<node>/metrics/resource``, the path
  named by each Node's ``metrics.k8s.io/resource-metrics-path`` annotation (kwok's
  convention, which metrics-server and ``controlplane metrics-server`` follow), with
  synthetic usage from ``simulated_usage``.

:class:`SimulatedNodes` is a runnable (``async start(stop)``), also used in-process by the
scheduling benchmark. Talks to the cluster only through ``controlplane.client``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from aiohttp import web
from prometheus_client import Gauge

from controlplane.agent import stats_format
from controlplane.agent.auth import DelegatedAuth, Unauthenticated
from controlplane.agent.simulated_usage import CPU_ANNOTATION, UsageModel, cpu_rate, profile
from controlplane.agent.stats import ContainerSample, FsSample, NodeSample, PodSample, Usage
from controlplane.client import resources
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery import promtext
from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.timestamps import micro_time, now_rfc3339, parse_time

log = get_logger(__name__)
RUNNING = Gauge("simulated_node_running_pods", "Pods the simulated nodes have reported Running")

LEASE_NS = "kube-node-lease"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
SYSTEM_SHARE = 0.05  # of capacity, the node's own use besides its pods


def parse_labels(text: str | None) -> dict[str, str]:
    out = {}
    for part in (text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def node_object(name: str, cpu: str, memory: str, pods: str, gpus: int = 0, model: str = "",
                labels: dict[str, str] | None = None, stats: tuple[str, int] | None = None) -> dict:
    """A simulated Node; ``stats`` = (address, port) of the stats server serving it."""
    cap: dict[str, str] = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    lab = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
           "type": "simulated", **(labels or {})}
    if gpus:
        cap[GPU_RESOURCE] = str(gpus)
        if model:
            lab[GPU_MODEL_LABEL] = model
    now = now_rfc3339()
    ann = {"node.controlplane.io/simulated": "true"}
    address = "10.255.0.1"
    if stats is not None:
        address = stats[0]
        ann[METRICS_PATH_ANNOTATION] = f"/metrics/nodes/{name}/metrics/resource"
    conds = [{"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now, "lastTransitionTime": now}
             for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                             ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                             ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
    conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready",
                  "lastHeartbeatTime": now, "lastTransitionTime": now})
    status: dict[str, Any] = {
        "capacity": cap, "allocatable": dict(cap), "conditions": conds,
        "nodeInfo": {"kubeletVersion": "v1.32.0-sim", "containerRuntimeVersion": "simulated://1",
                     "operatingSystem": "linux", "architecture": "amd64"},
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
    }
    if stats is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": stats[1]}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": lab, "annotations": ann},
            "spec": {}, "status": status}


def read_node_list(path: str) -> list[dict[str, Any]]:
    """Node specs from an openb node list CSV (``sn,cpu_milli,memory_mib,gpu,model``)."""
    import csv

    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            gpus = int(row.get("gpu") or 0)
            out.append({"name": row["sn"], "cpu": f"{int(row['cpu_milli'])}m", "memory": f"{int(row['memory_mib'])}Mi",
                        "gpus": gpus, "model": (row.get("model") or "").strip() if gpus else ""})
    return out


SIM_ANNOTATION_PREFIX = "sim.controlplane.io/"


def slim_pod(pod: dict) -> dict:
    """What the simulated nodes read of a pod (the informer's transform): at 150,000 pods the
    full objects (managedFields, volumes, tolerations, ...) took ~30 KiB each in this process.
    Kept: identity and resourceVersion, deletion, the usage annotations, the node, the
    containers' names, images and resources, the ephemeral containers' names and images, the
    phase, start time and the names and states of the ephemeral containers with a status."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    st = pod.get("status") or {}
    meta = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp") if k in md}
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k.startswith(SIM_ANNOTATION_PREFIX)}
    if ann:
        meta["annotations"] = ann
    slim_spec: dict[str, Any] = {"containers": [{k: c[k] for k in ("name", "image", "resources") if k in c}
                                                for c in spec.get("containers") or []]}
    if "nodeName" in spec:
        slim_spec["nodeName"] = spec["nodeName"]
    if spec.get("ephemeralContainers"):
        slim_spec["ephemeralContainers"] = [{k: c[k] for k in ("name", "image") if k in c}
                                            for c in spec["ephemeralContainers"]]
    out: dict[str, Any] = {"metadata": meta, "spec": slim_spec}
    status = {k: st[k] for k in ("phase", "startTime") if k in st}
    if st.get("ephemeralContainerStatuses"):
        status["ephemeralContainerStatuses"] = [{k: c[k] for k in ("name", "state") if k in c}
                                                for c in st["ephemeralContainerStatuses"]]
    if status:
        out["status"] = status
    return out


class SimulatedNodes:
    def __init__(self, client: RestClient, *, count: int, prefix: str = "sim-node", cpu: str = "4",
                 memory: str = "32Gi", pods: str = "110", gpus: int = 0, model: str = "",
                 labels: dict[str, str] | None = None, lease_duration: float = 40.0,
                 lease_interval: float = 10.0, concurrency: int = 32,
                 node_specs: list[dict[str, Any]] | None = None, stats_address: str | None = None,
                 stats_port: int = 0, stats_ssl: ssl.SSLContext | None = None) -> None:
        """``node_specs``: one dict per node (``name``, ``cpu``, ``memory``, ``gpus``, ``model``)
        instead of ``count`` alike nodes (``read_node_list``: an openb node list). ``stats_address``:
        serve the nodes' ``/metrics/resource`` there (HTTPS with ``stats_ssl``), every request
        authenticated and authorized through the apiserver as a kubelet's (``auth.DelegatedAuth``)."""
        self.client = client
        self.spec = dict(cpu=cpu, memory=memory, pods=pods, gpus=gpus, model=model, labels=labels or {})
        self.per_node: dict[str, dict[str, Any]] = {}
        if node_specs is not None:
            for ns_ in node_specs:
                self.per_node[ns_["name"]] = {**self.spec, **{k: v for k, v in ns_.items() if k != "name"}}
            self.names = list(self.per_node)
        else:
            self.names = [f"{prefix}-{i}" for i in range(count)]
        self._mine = set(self.names)
        self.lease_duration = lease_duration
        self.lease_interval = lease_interval
        self.concurrency = concurrency
        self.pods = Informer(client, resources.PODS, transform=slim_pod)
        self.pods.add_handler(self._on_pod)
        self._todo: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self._pending: set[str] = set()
        self.running = 0
        self.registered = asyncio.Event()
        self.stats_address = stats_address
        self.stats_port = stats_port
        self.stats_ssl = stats_ssl
        self.auth = DelegatedAuth(client, "")
        self.usage = UsageModel()
        self._profiles: dict[str, tuple] = {}  # uid -> (resourceVersion, start, [ContainerProfile])
        self.started = time.time()
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- registration
    async def _bounded(self, coros: list) -> None:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(c: Any) -> None:
            async with sem:
                await c

        await asyncio.gather(*(one(c) for c in coros))

    async def _register(self, name: str) -> None:
        stats = (self.stats_address, self.stats_port) if self.stats_address else None
        obj = node_object(name, **self.per_node.get(name, self.spec), stats=stats)
        try:
            created = await self.client.create(resources.NODES, obj)
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            created = await self.client.get(resources.NODES, name)
        if not (created.get("status") or {}).get("allocatable") or stats is not None:
            if stats is not None:
                await self.client.patch(resources.NODES, name, {"metadata": {"annotations": obj["metadata"]["annotations"]}})
            await self.client.patch(resources.NODES, name, {"status": obj["status"]}, subresource="status")

    async def _ensure_lease_ns(self) -> None:
        try:
            await self.client.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": LEASE_NS}})
        except ApiStatusError as e:
            if not e.already_exists:
                raise

    async def _renew(self, name: str) -> None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": LEASE_NS},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": int(self.lease_duration),
                         "renewTime": micro_time()}}
        try:
            await self.client.patch(resources.LEASES, name, {"spec": body["spec"]}, LEASE_NS)
        except ApiStatusError as e:
            if not e.not_found:
                raise
            try:
                await self.client.create(resources.LEASES, body, LEASE_NS)
            except ApiStatusError as e2:
                if not e2.already_exists:
                    raise

    async def _lease_loop(self, stop: asyncio.Event, tick: float = 0.1) -> None:
        """Renew every lease once per interval: each tick renews the next slice concurrently."""
        n = len(self.names)
        ticks = max(1, int(self.lease_interval / tick))
        per_tick = max(1, -(-n // ticks))
        pos = 0
        while not stop.is_set():
            t0 = asyncio.get_running_loop().time()
            chunk = [self.names[(pos + i) % n] for i in range(min(per_tick, n))]
            pos = (pos + len(chunk)) % n
            results = await asyncio.gather(*(self._renew(name) for name in chunk), return_exceptions=True)
            for name, r in zip(chunk, results):
                if isinstance(r, Exception):
                    log.warning("lease renewal failed", node=name, error=str(r))
            await _sleep(stop, max(0.0, tick - (asyncio.get_running_loop().time() - t0)))

    # ----------------------------------------------------------------- pods
    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        if etype == "DELETED":
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self._mine:
            return
        md = pod.get("metadata") or {}
        if old is not None and self.stats_address and ((md.get("annotations") or {}).get(CPU_ANNOTATION) !=
                                                       ((old.get("metadata") or {}).get("annotations") or {}).get(CPU_ANNOTATION)):
            self._settle(old, pod)
        key = f"{md.get('namespace')}/{md.get('name')}"
        if md.get("deletionTimestamp"):
            action = "delete"
        elif (pod.get("status") or {}).get("phase") == "Running" and _new_ephemeral(pod):
            action = "ephemeral"
        elif (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            return
        else:
            action = "run"
        if (action, key) not in self._pending:
            self._pending.add((action, key))  # type: ignore[arg-type]
            self._todo.put_nowait((action, pod))

    def _running_status(self, pod: dict) -> dict:
        now = now_rfc3339()
        spec = pod.get("spec") or {}
        cs = [{"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "", "ready": True,
               "restartCount": 0, "started": True, "containerID": f"simulated://{c.get('name', '')}",
               "state": {"running": {"startedAt": now}}} for c in spec.get("containers") or []]
        out = {"phase": "Running", "hostIP": "10.255.0.1", "podIP": "10.255.0.1", "startTime": now,
               "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                              for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
               "containerStatuses": cs}
        if spec.get("ephemeralContainers"):
            out["ephemeralContainerStatuses"] = _ephemeral_statuses(pod, now)
        return out

    async def _worker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            action, pod = await self._todo.get()
            md = pod.get("metadata") or {}
            ns, name = md.get("namespace"), md.get("name")
            try:
                if action == "run":
                    await self.client.patch(resources.PODS, name, {"status": self._running_status(pod)}, ns,
                                            subresource="status")
                    self.running += 1
                    RUNNING.set(self.running)
                elif action == "ephemeral":  # (the list is replaced whole by a merge patch)
                    await self.client.patch(resources.PODS, name, {"status": {
                        "ephemeralContainerStatuses": _ephemeral_statuses(pod, now_rfc3339())}}, ns,
                        subresource="status")
                else:
                    await self.client.delete(resources.PODS, name, ns, grace_period_seconds=0)
            except ApiStatusError as e:
                if not e.not_found:
                    log.warning("simulated pod update failed", pod=f"{ns}/{name}", action=action, error=str(e))
            finally:
                self._pending.discard((action, f"{ns}/{name}"))  # type: ignore[arg-type]

    # ----------------------------------------------------------------- synthetic stats
    def _settle(self, old: dict, new: dict) -> None:
        """A changed usage annotation: close the counters at the old rate now, continue at the new."""
        now = time.time()
        uid = new["metadata"].get("uid", "")
        for c in (new.get("spec") or {}).get("containers") or []:
            self.usage.cpu_seconds(f"{uid}/{c.get('name')}", cpu_rate(new, c, now), now, self._start_of(old))

    def _start_of(self, pod: dict) -> float:
        st = (pod.get("status") or {}).get("startTime")
        try:
            return parse_time(st) if st else self.started
        except ValueError:
            return self.started

    def sample(self, node: str, now: float | None = None) -> NodeSample:
        """The synthetic statistics of one simulated node at ``now``."""
        now = now or time.time()
        cap = self.spec
        cores = float(parse_quantity(cap["cpu"]))
        mem_cap = int(parse_quantity(cap["memory"]))
        pods = []
        node_rate, node_mem = SYSTEM_SHARE * cores, int(SYSTEM_SHARE * mem_cap)
        for p in self.pods.by_node(node):
            st = p.get("status") or {}
            md = p["metadata"]
            if st.get("phase") != "Running" or md.get("deletionTimestamp"):
                continue
            uid = md.get("uid", "")
            rv = md.get("resourceVersion")
            cached = self._profiles.get(uid)
            if cached is None or cached[0] != rv:
                cached = self._profiles[uid] = (rv, self._start_of(p), profile(p))
            _, start, containers = cached
            cs = []
            prate, pmem, pcpu = 0.0, 0, 0.0
            for c in containers:
                rate = c.cpu(now)
                total = self.usage.cpu_seconds(f"{uid}/{c.name}", rate, now, start)
                mem = c.memory
                cs.append(ContainerSample(c.name, "simulated://" + c.name, c.image, start,
                                          Usage(now, int(total * 1e9), int(rate * 1e9), working_set_bytes=mem,
                                                usage_bytes=mem, rss_bytes=mem)))
                prate, pmem, pcpu = prate + rate, pmem + mem, pcpu + total
            pods.append(PodSample(md.get("namespace", ""), md.get("name", ""), uid, start,
                                  Usage(now, int(pcpu * 1e9), int(prate * 1e9), working_set_bytes=pmem,
                                        usage_bytes=pmem, rss_bytes=pmem), cs))
            node_rate += prate
            node_mem += pmem
        total = self.usage.cpu_seconds(f"node/{node}", node_rate, now, self.started)
        fs = FsSample(100 * 2**30, 80 * 2**30, 20 * 2**30, 10**7, 9 * 10**6)
        return NodeSample(node, self.started, Usage(now, int(total * 1e9), int(node_rate * 1e9),
                                                    working_set_bytes=node_mem, usage_bytes=node_mem),
                          mem_cap, max(0, mem_cap - node_mem), fs, fs, {}, None, 4194304, 0, int(cores), pods)

    async def _forget_loop(self, stop: asyncio.Event, every: float = 60.0) -> None:
        """Drop the CPU counters of pods that are gone."""
        while not stop.is_set():
            await _sleep(stop, every)
            live = {f"node/{n}" for n in self.names}
            for p in self.pods.list():
                uid = (p.get("metadata") or {}).get("uid", "")
                live.update(f"{uid}/{c.get('name')}" for c in (p.get("spec") or {}).get("containers") or [])
            self.usage.forget(live)
            uids = {(p.get("metadata") or {}).get("uid") for p in self.pods.list()}
            for uid in [u for u in self._profiles if u not in uids]:
                del self._profiles[uid]

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        peercert = request.transport.get_extra_info("peercert") if request.transport is not None else None
        try:
            caller = await self.auth.authenticate(peercert, request.headers)
        except Unauthenticated:
            return web.Response(status=401, text="Unauthorized")
        if node not in self._mine:
            raise web.HTTPNotFound(text=f"node {node} is not simulated here")
        allowed, why = await self.auth.authorize(caller, "GET", "/metrics/resource", node=node)
        if not allowed:
            return web.Response(status=403, text=why)
        text = stats_format.resource_metrics(self.sample(node))
        return web.Response(body=text.encode(), headers={"Content-Type": promtext.CONTENT_TYPE})

    async def _serve_stats(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics/nodes/{node}/metrics/resource", self._resource_metrics)
        app.router.add_get("/healthz", lambda _: web.Response(text="ok"))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.stats_address, self.stats_port, ssl_context=self.stats_ssl)
        await site.start()
        self.stats_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("simulated node stats served", address=self.stats_address, port=self.stats_port)

    # ----------------------------------------------------------------- runnable
    async def register(self) -> None:
        await self._bounded([self._register(n) for n in self.names])
        await self._ensure_lease_ns()
        await self._bounded([self._renew(n) for n in self.names])
        self.registered.set()
        log.info("simulated nodes registered", nodes=len(self.names))

    async def start(self, stop: asyncio.Event) -> None:
        tasks: list[asyncio.Task] = []
        try:
            if self.stats_address:
                await self._serve_stats()
            await self.register()
            tasks.append(asyncio.create_task(self.pods.start(stop)))
            tasks.append(asyncio.create_task(self._lease_loop(stop)))
            if self.stats_address:
                tasks.append(asyncio.create_task(self._forget_loop(stop)))
            tasks += [asyncio.create_task(self._worker(stop)) for _ in range(self.concurrency)]
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()


def _new_ephemeral(pod: dict) -> bool:
    """Whether the pod has an ephemeral container its status does not show yet."""
    have = {c.get("name") for c in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []}
    return any(c.get("name") not in have for c in (pod.get("spec") or {}).get("ephemeralContainers") or [])


def _ephemeral_statuses(pod: dict, now: str) -> list[dict]:
    """Every ephemeral container running (those already reported keep their state)."""
    old = {c.get("name"): c for c in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []}
    out = []
    for c in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        name = c.get("name", "")
        state = (old.get(name) or {}).get("state") or {"running": {"startedAt": now}}
        out.append({"name": name, "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                    "containerID": f"simulated://{name}", "state": state})
    return out


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def parse_gpus(spec: str | None) -> tuple[int, str]:
    """``8`` or ``8:MODEL`` (the ``--gpus`` flag) to (count, model)."""
    if not spec:
        return 0, ""
    count, _, model = str(spec).partition(":")
    return int(count), model
