"""The node agent process: wires the API client, the runc runtime, the image manager, the
Node/Lease heartbeats, the pod informer (``spec.nodeName=<node>``) and one ``PodWorker`` per
pod, the statistics provider (``stats.py``) with the eviction manager (``pressure.py``), plus
the authenticated log/exec/stats server (``server.py``). It owns the node's pod network
(``controlplane.network.node.NodeNetwork``: safety routes at start, the node namespace once
the Node has ``spec.podCIDR``) and runs the node's service proxy (``controlplane.proxy``);
a Services informer feeds the pods' environment variables.

``Agent.run(stop)`` owns every task it starts and, on stop, cancels them and (by default)
removes every container, netns, cgroup and mount it created; with ``--keep-containers``
(``controlplane up`` passes it) containers, the node network and the proxy's rules keep
running (the proxy runs as ``--proxy-kubeconfig``'s identity when given, ``system:kube-proxy``
under ``up``). On start the network re-adopts an intact node namespace and the runtime re-adopts what
a previous agent left (``RuncRuntime.recover``): each pod the API still binds here takes its
sandbox and containers back (``PodWorker.adopt``); sandboxes of pods that are gone are removed
once the pod informer has synced. Started by ``controlplane agent`` (``cmd/agent.py``) and by
``controlplane up``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controlplane.agent.context import AgentConfig
from controlplane.agent.localstorage import LocalStorage
from controlplane.agent.metrics import AgentMetrics
from controlplane.agent.node import NodeStatus
from controlplane.agent.pod_worker import PodWorker
from controlplane.agent.pressure import PressureMonitor
from controlplane.agent.server import AgentServer
from controlplane.agent.stats import StatsProvider
from controlplane.agent.tokens import TokenManager
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer
from controlplane.client.resources import NODES, PODS, SERVICES
from controlplane.client.rest import ApiStatusError, RestClient, kubeconfig_ca_pem
from controlplane.images import reference
from controlplane.images.manager import ImageManager
from controlplane.images.reference import Mirrors
from controlplane.log import get_logger
from controlplane.network.addressing import ClusterNetworks
from controlplane.network.node import NodeNetwork, NodeNetworkConfig
from controlplane.network.routes import cluster_id
from controlplane.proxy.proxier import Proxier, ProxyConfig
from controlplane.runtime.interface import ContainerRuntime
from controlplane.runtime.runc import Recovered, RuncRuntime

log = get_logger(__name__)


class Agent:
    """The node agent; implements ``context.NodeContext`` for its parts."""

    def __init__(self, cfg: AgentConfig, client: RestClient, runtime: ContainerRuntime | None = None) -> None:
        self.cfg = cfg
        cfg.root = Path(cfg.root).resolve()
        cfg.root.mkdir(parents=True, exist_ok=True)
        if cfg.host_path_root is None:
            cfg.host_path_root = cfg.root / "hostpath"
        self.client = client
        self.nets = ClusterNetworks.parse(cfg.cluster_cidr, cfg.service_cidr)
        if cfg.cluster_dns is None:
            cfg.cluster_dns = [str(self.nets.dns_service_ip)]
        self.network: NodeNetwork | None = None
        if runtime is None:
            kc = getattr(client, "kubeconfig", None)  # the cluster's CA names it in route tags
            ca = kubeconfig_ca_pem(*kc) if kc else None
            self.network = NodeNetwork(NodeNetworkConfig(root=cfg.root, node=cfg.node, nets=self.nets,
                                                         api_url=client.base_url,
                                                         cluster_id=cluster_id(ca, client.base_url)))
            runtime = RuncRuntime(cfg.root / "runtime", cfg.host_id or cfg.node, network=self.network)
        self.runtime = runtime
        self.network_ready = self.network is None
        self.services = Informer(client, SERVICES)
        self.proxier: Proxier | None = None
        self._proxy_client: RestClient | None = None
        self.images = ImageManager(cfg.root / "images", Mirrors({"docker.io": list(cfg.registry_mirrors)}),
                                   backoff_initial=cfg.image_backoff_initial, ssl=cfg.registry_ssl)
        self.tokens = TokenManager(client)
        self.local_storage = LocalStorage(cfg.root, client)
        self.local_storage.prepare()
        self.recorder = EventRecorder(client, "kubelet", host=cfg.node)
        self.node = NodeStatus(self)
        self.metrics = AgentMetrics()
        self.workers: dict[str, PodWorker] = {}
        self.stats = StatsProvider(self)
        self.pressure = PressureMonitor(self, self.stats, self._pressure_changed)
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={cfg.node}")
        self.server_port = cfg.port
        self._tasks: set[asyncio.Task] = set()
        self.ready = asyncio.Event()
        self.recovered = Recovered()

    def spawn(self, coro: Any) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def event(self, pod: dict, etype: str, reason: str, message: str) -> None:
        try:
            self.recorder.event(pod, etype, reason, message)
        except Exception as e:  # events are best effort
            log.debug("event dropped", error=str(e))

    def allocatable(self) -> dict[str, str]:
        return self.node.allocatable()

    async def _pressure_changed(self, conditions: dict[str, bool]) -> None:
        self.node.pressure = conditions
        await self.node.update_status()

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            if w.ns == namespace and w.name == name and not w.finished:
                return w
        return None

    # -- informer events ---------------------------------------------------------------------
    def _on_pod(self, etype: str, pod: dict, _old: dict | None) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if not uid:
            return
        w = self.workers.get(uid)
        if etype == "DELETED":
            if w is not None:
                w.removed()
            return
        if w is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and \
                    not (pod.get("metadata") or {}).get("deletionTimestamp"):
                return  # finished before this agent started: nothing to run
            w = PodWorker(self, pod)
            sb = self.recovered.sandboxes.pop(uid, None)
            if sb is not None:
                w.adopt(sb, self.recovered.containers.pop(uid, []))
            self.workers[uid] = w
            w.task = self.spawn(self._run_worker(w))
        else:
            w.update(pod)

    async def _run_worker(self, w: PodWorker) -> None:
        try:
            await w.run()
        finally:
            if self.workers.get(w.uid) is w and w.finished:
                del self.workers[w.uid]

    # -- run ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        if self.network is not None:
            await self.network.start()  # safety routes first; refuses CIDRs someone else routes
        if isinstance(self.runtime, RuncRuntime):
            self.recovered = await self.runtime.recover()
        server = AgentServer(self)
        self.server_port = await server.start()
        inner = self._inner = asyncio.Event()
        try:
            while True:  # the apiserver may not be up yet
                try:
                    await self.node.register()
                    break
                except ApiStatusError as e:
                    log.warning("node registration failed; retrying", error=str(e))
                    try:
                        await asyncio.wait_for(stop.wait(), 2.0)
                        return
                    except asyncio.TimeoutError:
                        pass
            self.spawn(self.recorder.start(inner))
            self.spawn(self.node.heartbeat_loop(inner))
            self.spawn(self.services.start(inner))
            if self.network is not None and not await self._setup_network(stop):
                return
            await self.services.wait_for_sync(30)  # pods get Service env vars from the start
            self.informer.add_handler(self._on_pod)
            self.spawn(self.informer.start(inner))
            self.spawn(self._gc_loop(inner))
            self.spawn(self.pressure.run(inner))
            self.spawn(self._log_rotation_loop(inner))
            reap = getattr(self.runtime, "reap_orphans", None)  # the runc runtime is a subreaper
            if reap is not None:
                self.spawn(reap(inner))
            self.spawn(self.local_storage.run(inner, self.cfg.storage_sweep))
            await self.informer.wait_for_sync(60)
            await self._remove_orphans()
            self.ready.set()
            log.info("agent ready", node=self.cfg.node, port=self.server_port)
            await stop.wait()
        finally:
            inner.set()
            workers = list(self.workers.values())
            for w in workers:
                if w.task is not None:
                    w.task.cancel()
            if self.cfg.cleanup_on_exit and workers:
                try:
                    await asyncio.wait_for(self._shutdown_pods(workers), self.cfg.shutdown_grace + 10)
                except (asyncio.TimeoutError, Exception) as e:  # shutdown goes on regardless
                    log.warning("graceful pod shutdown incomplete", error=repr(e))
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.stop()
            if self.proxier is not None and self.cfg.cleanup_on_exit:
                await self.proxier.cleanup()
            if self._proxy_client is not None:
                await self._proxy_client.close()
            if self.cfg.cleanup_on_exit:
                await self.runtime.close()
                if self.network is not None:
                    await self.network.teardown()
            log.info("agent stopped", node=self.cfg.node)

    async def _setup_network(self, stop: asyncio.Event) -> bool:
        """Wait for the node's pod CIDR (ours from --pod-cidr, or the node IPAM controller's),
        build the pod network, start the service proxy. False if stopped meanwhile."""
        assert self.network is not None
        waited = 0.0
        while not stop.is_set():
            try:
                node = await self.client.get(NODES, self.cfg.node)
                cidr = (node.get("spec") or {}).get("podCIDR")
                if cidr:
                    break
            except ApiStatusError as e:
                log.warning("reading the node failed", error=str(e))
            if waited == 0 or waited % 30 < 1:
                log.info("waiting for the node's pod CIDR (node IPAM controller)", node=self.cfg.node)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                waited += 1.0
        if stop.is_set():
            return False
        await self.network.setup(cidr)
        self.network_ready = True
        await self.node.update_status()
        if self.cfg.proxy:
            pclient = self.client
            if self.cfg.proxy_kubeconfig is not None:
                pclient = self._proxy_client = RestClient.from_kubeconfig(self.cfg.proxy_kubeconfig,
                                                                          user_agent=f"kube-proxy/{self.cfg.node}")
            self.proxier = Proxier(pclient, ProxyConfig(node=self.cfg.node, nets=self.nets, iid=self.network.iid,
                                                            pod_cidr=cidr),
                                   services=self.services, registry=self.metrics.registry)
            self.spawn(self.proxier.run(self._inner))
        return True

    async def _shutdown_pods(self, workers: list[PodWorker]) -> None:
        """Graceful node shutdown (the kubelet's): stop every pod within ``shutdown_grace`` and
        report it Failed/Terminated so its owner replaces it."""
        async def one(w: PodWorker) -> None:
            if w.task is not None:
                await asyncio.gather(w.task, return_exceptions=True)
            if w.finished:
                return
            w.shutdown = True
            await w.terminate(min(w._grace(), self.cfg.shutdown_grace))
        await asyncio.gather(*(one(w) for w in workers), return_exceptions=True)

    async def _remove_orphans(self) -> None:
        """Sandboxes a previous agent left for pods no longer bound here (deleted meanwhile)."""
        orphans = list(self.recovered.sandboxes.values())
        self.recovered = Recovered()
        for sb in orphans:
            log.info("removing the sandbox of a pod that is gone", pod_uid=sb.uid)
            try:
                await self.runtime.remove_sandbox(sb)
            except Exception as e:  # noqa: BLE001 - keep going; `controlplane down` removes the rest
                log.warning("orphan sandbox removal failed", pod_uid=sb.uid, error=repr(e))

    async def _log_rotation_loop(self, stop: asyncio.Event) -> None:
        """The kubelet's container log manager: rotate logs past their size every 10 s."""
        rotate = getattr(self.runtime, "rotate_logs", None)
        while rotate is not None and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 10)
                return
            except asyncio.TimeoutError:
                pass
            try:
                rotate()
            except OSError as e:
                log.warning("log rotation failed", error=str(e))

    async def _gc_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 60)
                return
            except asyncio.TimeoutError:
                pass
            in_use = {str(c.image) for w in self.workers.values() for c in w.init + w.main}
            refs = set()
            for i in in_use:
                try:
                    refs.add(str(reference.parse(i)))
                except reference.InvalidReference:
                    pass
            await asyncio.to_thread(self.images.gc_if_needed, refs)
