"""The live scheduler: informers feed the cache and the queue; one loop pops a pod, runs its
profile's scheduling cycle (``framework.Framework``), reserves and *assumes* the pod on the
chosen node, and hands the binding cycle (the profile's PreBind and Bind plugins, e.g.
``GpuShare`` recording the GPUs and ``DefaultBinder`` POSTing ``pods/NAME/binding``) to a
background task so a slow bind never stalls the next cycle. Failures become
``FailedScheduling`` events with Kubernetes-style messages; preemption evicts victims and sets
``status.nominatedNodeName``. A binding cycle that fails unreserves and forgets the pod and
retries it after backoff. A profile answers to its ``schedulerName`` and its aliases; a pod
naming no profile is left alone (Pending), as kube-scheduler does.

Observability: one structlog record per decision (``scheduling decision``: pod, node, top
candidates with per-plugin scores, or the failure message); Prometheus
``scheduler_schedule_attempts_total{result,profile}``,
``scheduler_scheduling_attempt_duration_seconds{result,profile}``, ``scheduler_pending_pods``.

Neighbours: ``controlplane.client`` (RestClient, Informer, EventRecorder) only;
``controlplane.cmd.scheduler`` runs it; ``tests/fixtures/scheduler.py`` starts it in tests.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

from prometheus_client import Counter as PCounter
from prometheus_client import Histogram

from controlplane.client import resources
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from schedulers.framework.cache import Cache
from schedulers.framework.framework import Framework
from schedulers.framework.interface import Status
from schedulers.framework.podinfo import PodInfo, resolve_priority, same_scheduling_inputs
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.framework.queue import SchedulingQueue

log = get_logger(__name__)

PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False)
ATTEMPTS = PCounter("scheduler_schedule_attempts_total",
                    "Number of attempts to schedule pods, by the result.", ["result", "profile"])
DURATION = Histogram("scheduler_scheduling_attempt_duration_seconds",
                     "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                     ["result", "profile"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
ALGORITHM = Histogram("scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
                      buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))


class Scheduler:
    def __init__(self, client: RestClient, profiles: dict[str, ProfileConfig], *,
                 seed: int | None = None, scheduled_events: bool = True, max_binds: int = 256) -> None:
        """``profiles``: by real name (``schedulers.profiles.loader.load_profile_configs``);
        each is served under its name and its aliases."""
        self.client = client
        self.cache = Cache()
        self.frameworks: dict[str, Framework] = {}  # every schedulerName and alias -> its framework
        for cfg in profiles.values():
            fw = Framework(build_profile(cfg, self), seed)
            for name in cfg.names:
                if name in self.frameworks:
                    raise ValueError(f"scheduler name {name!r} is used by two profiles")
                self.frameworks[name] = fw
        frameworks = list({id(fw): fw for fw in self.frameworks.values()}.values())
        events: dict[str, tuple[str, ...]] = {}
        for fw in frameworks:
            events.update(fw.profile.events())
            if not fw.binders:
                raise ValueError(f"profile {fw.name!r} has no Bind plugin (e.g. DefaultBinder)")
        sorts = {fw.queue_sort.name if fw.queue_sort else None for fw in frameworks}
        if len(sorts) != 1 or None in sorts:
            raise ValueError(f"every profile needs the same QueueSort plugin (e.g. PrioritySort); got {sorts}")
        self.queue = SchedulingQueue(frameworks[0].queue_sort.queue_sort_key, plugin_events=events)
        self.recorder = EventRecorder(client, "default-scheduler", workers=32, max_pending=16000)
        # no built-in indexes: the scheduler only reads its own cache (saves work per pod event)
        self.nodes = Informer(client, resources.NODES, indexes=False)
        self.pods = Informer(client, resources.PODS, indexes=False)
        self.priority_classes = Informer(client, PRIORITY_CLASSES, indexes=False)
        self.scheduled_events = scheduled_events
        self._bind_slots = asyncio.Semaphore(max_binds)
        self._binds: set[asyncio.Task] = set()
        self._metric_children: dict[str, tuple[Any, Any]] = {}
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)

    # ----------------------------------------------------------------- informer handlers
    def _classes(self) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.priority_classes.list()}

    def _pod_info(self, pod: dict) -> PodInfo:
        p = PodInfo.from_pod(pod)
        if (pod.get("spec") or {}).get("priorityClassName"):
            p.priority = resolve_priority(pod, self._classes())
        return p

    def _confirmed(self, obj: dict, md: dict, spec: dict, node: str) -> PodInfo:
        """The PodInfo of a pod the cache already holds on ``node`` (typically the MODIFIED
        event confirming our own binding): the cached one with the new object and labels when
        nothing it was derived from changed, else a fresh parse."""
        info = self.cache.node_infos.get(node)
        prev = info.pods.get(md.get("uid") or f"{md.get('namespace')}/{md.get('name')}") if info else None
        if prev is None or not same_scheduling_inputs(prev.obj, obj):
            return self._pod_info(obj)
        p = copy.copy(prev)
        p.obj, p.labels, p.node_name = obj, dict(md.get("labels") or {}), node
        return p

    def _on_node(self, etype: str, obj: dict, old: dict | None) -> None:
        if etype == "DELETED":
            self.cache.remove_node(obj["metadata"]["name"])
            self.queue.on_event("Node/Delete")
            return
        if self.cache.add_or_update_node(obj):
            self.queue.on_event("Node/Add" if etype == "ADDED" or old is None else "Node/Update")

    def _on_pod(self, etype: str, obj: dict, old: dict | None) -> None:
        md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        key = f"{md.get('namespace')}/{md.get('name')}"
        phase = (obj.get("status") or {}).get("phase")
        terminal = phase in ("Succeeded", "Failed")
        if etype == "DELETED" or terminal or md.get("deletionTimestamp"):
            self.queue.delete(key)
            if self.cache.remove_pod(md.get("uid") or key) is not None:
                self.queue.on_event("Pod/Delete")
            return
        if spec.get("nodeName"):
            self.queue.delete(key)
            node = spec["nodeName"]
            known = self.cache.pod_node.get(md.get("uid") or key)
            self.cache.add_pod(self._confirmed(obj, md, spec, node) if known == node else self._pod_info(obj), node)
            if known is None:
                self.queue.on_event("Pod/Add")
            elif old is not None and (old.get("metadata") or {}).get("labels") != md.get("labels"):
                self.queue.on_event("Pod/Update")
            return
        if md.get("uid") in self.cache.assumed:
            return  # being bound right now (e.g. the GPU-index annotation patch)
        if (spec.get("schedulerName") or "default-scheduler") in self.frameworks:
            self.queue.add(self._pod_info(obj))

    # ----------------------------------------------------------------- the loop
    async def start(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(i.start(stop)) for i in (self.nodes, self.pods, self.priority_classes)]
        tasks.append(asyncio.create_task(self.recorder.start(stop)))
        try:
            for inf in (self.priority_classes, self.nodes, self.pods):
                await inf.wait_for_sync()
            log.info("scheduler started", profiles=sorted({fw.name for fw in self.frameworks.values()}),
                     aliases=sorted(n for n, fw in self.frameworks.items() if n != fw.name), nodes=len(self.nodes))
            await self._loop(stop)
        finally:
            stop.set()
            for t in list(self._binds):
                t.cancel()
            await asyncio.gather(*self._binds, return_exceptions=True)
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            pod = await self.queue.pop(stop)
            if pod is None:
                break
            await self._bind_slots.acquire()
            try:
                self.schedule_one(pod)
            except Exception:
                log.exception("scheduling cycle failed", pod=pod.key)
                self.queue.requeue_error(pod)
                self._bind_slots.release()
            n += 1
            if n % 64 == 0:
                self.queue.update_metrics()
                await asyncio.sleep(0)  # let informers and binders run

    def schedule_one(self, pod: PodInfo) -> None:
        fw = self.frameworks[pod.scheduler_name]
        t0 = time.perf_counter()
        res = fw.schedule(pod, self.cache)
        ALGORITHM.observe(time.perf_counter() - t0)
        if res.node is None:
            self._slot_free()
            self._fail(fw, pod, res, t0)
            return
        fw.reserve(res.cycle_state, pod, res.node, self.cache)
        self.cache.assume(pod, res.node)
        if log.is_enabled_for(logging.INFO):  # the candidates are only worked out for the log
            log.info("scheduling decision", pod=pod.key, profile=fw.name, node=res.node, feasible=res.feasible,
                     evaluated=res.evaluated, candidates=res.candidates)
        task = asyncio.create_task(self._bind(fw, pod, res.node, res.cycle_state, t0))
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    def _scheduled_metrics(self, profile: str) -> tuple[Any, Any]:
        """The ``result="scheduled"`` children of the attempt metrics (looked up once per profile)."""
        m = self._metric_children.get(profile)
        if m is None:
            m = self._metric_children[profile] = (ATTEMPTS.labels("scheduled", profile),
                                                  DURATION.labels("scheduled", profile))
        return m

    def _slot_free(self) -> None:
        self._bind_slots.release()

    def _fail(self, fw: Framework, pod: PodInfo, res: Any, t0: float) -> None:
        msg = res.failure_message(self.cache.n)
        diag = res.diagnosis
        nominated, victims, pmsg = (None, [], "")
        if diag is not None and fw.post_filters:
            nominated, victims, pmsg = fw.preempt(res.cycle_state, pod, self.cache, diag)
        if nominated:
            msg += f" preemption: victims {', '.join(v.key for v in victims)} on node {nominated}."
            for v in victims:
                self._spawn(self._evict(v, pod, nominated))
            self._spawn(self._nominate(pod, nominated))
        elif pmsg:
            msg += f" preemption: {pmsg}"
        ATTEMPTS.labels("unschedulable", fw.name).inc()
        DURATION.labels("unschedulable", fw.name).observe(time.perf_counter() - t0)
        log.info("scheduling decision", pod=pod.key, profile=fw.name, node=None, reason=msg)
        self.recorder.event(pod.obj, "Warning", "FailedScheduling", msg)
        self.queue.requeue_unschedulable(pod, diag.plugins if diag else set())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    async def _evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        self.recorder.event(victim.obj, "Normal", "Preempted", f"Preempted by pod {preemptor.uid} on node {node}")
        try:
            await self.client.delete(resources.PODS, victim.name, victim.namespace)
        except ApiStatusError as e:
            if not e.not_found:
                log.warning("eviction failed", pod=victim.key, error=str(e))

    async def _nominate(self, pod: PodInfo, node: str) -> None:
        try:
            await self.client.patch(resources.PODS, pod.name, {"status": {"nominatedNodeName": node}},
                                    pod.namespace, subresource="status")
        except ApiStatusError as e:
            log.info("nominating failed", pod=pod.key, error=str(e))

    async def _bind(self, fw: Framework, pod: PodInfo, node: str, cs: Any, t0: float) -> None:
        """The binding cycle: PreBind plugins, then Bind plugins (``DefaultBinder``)."""
        try:
            st = await fw.run_pre_bind_plugins(cs, pod, node)
            if st.is_success:
                st = await fw.run_bind_plugins(cs, pod, node)
        finally:
            self._bind_slots.release()
        if not st.is_success:
            self._binding_failed(fw, pod, node, cs, st, t0)
            return
        self.queue.done(pod.key)
        attempts, duration = self._scheduled_metrics(fw.name)
        attempts.inc()
        duration.observe(time.perf_counter() - t0)
        if self.scheduled_events:
            self.recorder.event(pod.obj, "Normal", "Scheduled", f"Successfully assigned {pod.key} to {node}")

    def _binding_failed(self, fw: Framework, pod: PodInfo, node: str, cs: Any, st: Status, t0: float) -> None:
        """kube-scheduler's handling of a failed binding cycle: forget the assumed pod,
        unreserve, and unless the pod is gone, a ``FailedScheduling`` event and a retry after
        backoff."""
        self.cache.forget(pod)
        fw.unreserve(cs, pod, node, self.cache)
        ATTEMPTS.labels("error", fw.name).inc()
        DURATION.labels("error", fw.name).observe(time.perf_counter() - t0)
        current = self.pods.get(pod.key)
        if current is None or (current.get("spec") or {}).get("nodeName"):
            self.queue.delete(pod.key)  # deleted meanwhile (the binding said NotFound), or bound after all
            return
        msg = "; ".join(st.reasons) or st.code.value
        log.warning("binding failed", pod=pod.key, node=node, plugin=st.plugin, error=msg)
        self.recorder.event(pod.obj, "Warning", "FailedScheduling", msg)
        self.queue.requeue_error(pod)
