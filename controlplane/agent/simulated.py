"""Simulated nodes (like kwok): node objects with no machine behind them, for scheduling
experiments and benchmarks at thousands of nodes.

``controlplane agent --simulated --nodes N --prefix P --cpu 4 --memory 32Gi --pods 110
[--gpus 8[:MODEL]] [--labels k=v,...]`` runs :class:`SimulatedNodes` (the CLI module
``controlplane.cmd.agent`` owns the flags and the process). It

- registers nodes ``P-0 … P-(N-1)`` (Ready, with capacity/allocatable, hostname label,
  ``nvidia.com/gpu`` and the ``nvidia.com/gpu.product`` label when GPUs are given);
- keeps one Lease per node in ``kube-node-lease`` fresh (renewals spread over the interval);
- watches pods once (one informer for all nodes) and marks pods bound to its nodes Running
  and Ready, with a bounded pool of concurrent status writes; pods being deleted are
  finished (deleted with grace period 0), as a kubelet would.

:class:`SimulatedNodes` is a runnable (``async start(stop)``), also used in-process by the
scheduling benchmark. Talks to the cluster only through ``controlplane.client``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.client import resources
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.timestamps import micro_time, now_rfc3339

log = get_logger(__name__)

LEASE_NS = "kube-node-lease"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"


def parse_labels(text: str | None) -> dict[str, str]:
    out = {}
    for part in (text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def node_object(name: str, cpu: str, memory: str, pods: str, gpus: int = 0, model: str = "",
                labels: dict[str, str] | None = None) -> dict:
    cap: dict[str, str] = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    lab = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
           "type": "simulated", **(labels or {})}
    if gpus:
        cap[GPU_RESOURCE] = str(gpus)
        if model:
            lab[GPU_MODEL_LABEL] = model
    now = now_rfc3339()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": lab, "annotations": {"node.controlplane.io/simulated": "true"}},
        "spec": {},
        "status": {
            "capacity": cap, "allocatable": dict(cap),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "simulated node is ready", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-sim", "containerRuntimeVersion": "simulated://1",
                         "operatingSystem": "linux", "architecture": "amd64"},
            "addresses": [{"type": "InternalIP", "address": "10.255.0.1"}, {"type": "Hostname", "address": name}],
        },
    }


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


class SimulatedNodes:
    def __init__(self, client: RestClient, *, count: int, prefix: str = "sim-node", cpu: str = "4",
                 memory: str = "32Gi", pods: str = "110", gpus: int = 0, model: str = "",
                 labels: dict[str, str] | None = None, lease_duration: float = 40.0,
                 lease_interval: float = 10.0, concurrency: int = 32,
                 node_specs: list[dict[str, Any]] | None = None) -> None:
        """``node_specs``: one dict per node (``name``, ``cpu``, ``memory``, ``gpus``, ``model``)
        instead of ``count`` alike nodes (``read_node_list``: an openb node list)."""
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
        self.pods = Informer(client, resources.PODS)
        self.pods.add_handler(self._on_pod)
        self._todo: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self._pending: set[str] = set()
        self.running = 0
        self.registered = asyncio.Event()

    # ----------------------------------------------------------------- registration
    async def _bounded(self, coros: list) -> None:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(c: Any) -> None:
            async with sem:
                await c

        await asyncio.gather(*(one(c) for c in coros))

    async def _register(self, name: str) -> None:
        obj = node_object(name, **self.per_node.get(name, self.spec))
        try:
            created = await self.client.create(resources.NODES, obj)
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            created = await self.client.get(resources.NODES, name)
        if not (created.get("status") or {}).get("allocatable"):
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
        key = f"{md.get('namespace')}/{md.get('name')}"
        if md.get("deletionTimestamp"):
            action = "delete"
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
        return {"phase": "Running", "hostIP": "10.255.0.1", "podIP": "10.255.0.1", "startTime": now,
                "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                               for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                "containerStatuses": cs}

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
                else:
                    await self.client.delete(resources.PODS, name, ns, grace_period_seconds=0)
            except ApiStatusError as e:
                if not e.not_found:
                    log.warning("simulated pod update failed", pod=f"{ns}/{name}", action=action, error=str(e))
            finally:
                self._pending.discard((action, f"{ns}/{name}"))  # type: ignore[arg-type]

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
            await self.register()
            tasks.append(asyncio.create_task(self.pods.start(stop)))
            tasks.append(asyncio.create_task(self._lease_loop(stop)))
            tasks += [asyncio.create_task(self._worker(stop)) for _ in range(self.concurrency)]
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


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
