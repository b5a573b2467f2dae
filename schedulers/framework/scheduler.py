"""The live scheduler: informers feed the cache and the queue; one loop pops a pod, runs its
profile's scheduling cycle (``framework.Framework``), reserves and *assumes* the pod on the
chosen node, and hands the binding cycle (the profile's PreBind and Bind plugins, e.g.
``GpuShare`` recording the GPUs and ``DefaultBinder`` POSTing ``pods/NAME/binding``) to a
background task so a slow bind never stalls the next cycle. Failures become
``FailedScheduling`` events with Kubernetes-style messages; preemption evicts victims and sets
``status.nominatedNodeName``; the preemptor is bound only once its victims are gone (they keep
their resources in the cache while terminating; pods nominated to a node count as placed
there for pods of lower priority). A binding cycle that fails unreserves and forgets the pod
and retries it after backoff. A profile answers to its ``schedulerName`` and its aliases; a
pod naming no profile is left alone (Pending), as kube-scheduler does. Besides nodes and pods
it watches PriorityClasses, Namespaces (labels for affinity terms' ``namespaceSelector``) and
the Services/RCs/ReplicaSets/StatefulSets the apiserver serves (default topology spreading).

Events: ``Scheduled`` (with this project's apiserver carried by the Binding, which the
apiserver turns into the same Event create; else posted by the recorder after the binding),
``FailedScheduling``, ``Preempted``. Observability: a ``SchedulingDecision`` record per decision (``decisions``): one JSON line in
``scheduling.log`` (``decisionlog``) and, when the apiserver serves them, an API object (a
successful one rides in the Binding; an unschedulable one is created, rate-limited per pod);
Prometheus ``scheduler_schedule_attempts_total{result,profile}``,
``scheduler_scheduling_attempt_duration_seconds{result,profile}``, ``scheduler_pending_pods``.
Plugins with an ``async run(stop)`` (the DDQN plugin following the active model) run beside.

Neighbours: ``controlplane.client`` (RestClient, Informer, EventRecorder) only;
``controlplane.cmd.scheduler`` runs it; ``tests/fixtures/scheduler.py`` starts it in tests.
"""

from __future__ import annotations

import asyncio
import copy
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
from schedulers.framework import decisions
from schedulers.framework.cache import Cache
from schedulers.framework.decisionlog import DecisionLog, encode
from schedulers.framework.framework import Framework
from schedulers.framework.interface import Status
from schedulers.framework.podinfo import PodInfo, resolve_priority, same_scheduling_inputs
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.framework.queue import SchedulingQueue

log = get_logger(__name__)

PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False)
DECISIONS = Resource(decisions.GROUP, decisions.VERSION, decisions.PLURAL, decisions.KIND)
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers", "ReplicationController")
WORKLOAD_RESOURCES = (resources.SERVICES, REPLICATIONCONTROLLERS, resources.REPLICASETS, resources.STATEFULSETS)
PDBS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
EVENT_OBJECT_KEY = "_scheduled_event_object"  # the CycleState's Scheduled Event (for the recorder's bookkeeping)
FAILED_RECORD_BURST = 5  # unschedulable records per pod, then one per FAILED_RECORD_REFILL_S
FAILED_RECORD_REFILL_S = 60.0
ATTEMPTS = PCounter("scheduler_schedule_attempts_total",
                    "Number of attempts to schedule pods, by the result.", ["result", "profile"])
DURATION = Histogram("scheduler_scheduling_attempt_duration_seconds",
                     "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                     ["result", "profile"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
ALGORITHM = Histogram("scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
                      buckets=(0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))


class Scheduler:
    def __init__(self, client: RestClient, profiles: dict[str, ProfileConfig], *,
                 seed: int | None = None, scheduled_events: bool = True, max_binds: int = 256,
                 decision_log: DecisionLog | None = None, decision_records: bool = True) -> None:
        """``profiles``: by real name (``schedulers.profiles.loader.load_profile_configs``);
        each is served under its name and its aliases. ``decision_log``: the
        ``scheduling.log`` writer (None: no file); ``decision_records``: store a
        ``SchedulingDecision`` per decision in the API (when the apiserver serves them)."""
        self.client = client
        self.decision_log = decision_log
        self.decision_records = decision_records
        self.records_api = False  # found at start: does the apiserver serve SchedulingDecisions?
        # found at start too: does the apiserver create the Scheduled Event a Binding carries?
        # (this project's apiserver, the one that serves SchedulingDecisions, does)
        self.binding_events = False
        self._record_budget: dict[str, tuple[float, float]] = {}
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
        # what PodTopologySpread's defaults and affinity terms' namespaceSelector read
        self.namespaces = Informer(client, resources.NAMESPACES, indexes=False)
        self.workload_informers: list[Informer] = []  # those the apiserver serves (found at start)
        self.scheduled_events = scheduled_events
        self._bind_slots = asyncio.Semaphore(max_binds)
        self._binds: set[asyncio.Task] = set()
        self._metric_children: dict[str, tuple[Any, Any]] = {}
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)
        self.namespaces.add_handler(self._on_namespace)

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

    def _on_namespace(self, etype: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        if etype == "DELETED":
            self.cache.namespace_labels.pop(md.get("name", ""), None)
            return
        labels = dict(md.get("labels") or {})
        if self.cache.namespace_labels.get(md.get("name", "")) != labels:
            self.cache.namespace_labels[md.get("name", "")] = labels
            if old is not None:
                self.queue.on_event("Namespace/Update")

    def _on_workload(self, etype: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        kind = obj.get("kind") or ""
        if etype == "DELETED":
            self.cache.workloads.delete(kind, md.get("namespace") or "default", md.get("name") or "")
        else:
            self.cache.workloads.set(kind, obj)

    def _on_pdb(self, etype: str, obj: dict, old: dict | None) -> None:
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace") or "default", md.get("name") or ""
        if etype == "DELETED":
            self.cache.pdbs.get(ns, {}).pop(name, None)
        else:
            self.cache.pdbs.setdefault(ns, {})[name] = obj

    def _on_pod(self, etype: str, obj: dict, old: dict | None) -> None:
        md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        key = f"{md.get('namespace')}/{md.get('name')}"
        uid = md.get("uid") or key
        phase = (obj.get("status") or {}).get("phase")
        terminal = phase in ("Succeeded", "Failed")
        if etype == "DELETED" or terminal:
            self.queue.delete(key)
            self.cache.nominated.pop(uid, None)
            if self.cache.remove_pod(uid) is not None:
                self.queue.on_event("Pod/Delete")
            return
        if md.get("deletionTimestamp"):
            # as kube-scheduler: a pod being deleted is not scheduled, and a bound one keeps its
            # resources in the cache until it is gone (a preemptor waits for its victims)
            self.queue.delete(key)
            self.cache.nominated.pop(uid, None)
            if spec.get("nodeName"):
                self.cache.add_pod(self._pod_info(obj), spec["nodeName"])
            return
        if spec.get("nodeName"):
            self.cache.nominated.pop(uid, None)
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
            p = self._pod_info(obj)
            nominated = (obj.get("status") or {}).get("nominatedNodeName")
            if nominated and uid not in self.cache.nominated:
                self.cache.nominate(p, nominated)  # e.g. after a restart
            self.queue.add(p)

    # ----------------------------------------------------------------- the loop
    async def _discover_records_api(self) -> bool:
        try:
            lst = await self.client.request("GET", f"/apis/{decisions.API_VERSION}")
        except ApiStatusError as e:
            if e.code != 404:
                log.warning("discovery of scheduling decisions failed", error=str(e))
            return False
        return any(r.get("name") == decisions.PLURAL for r in lst.get("resources") or [])

    async def _served(self, res: Resource) -> bool:
        path = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
        try:
            lst = await self.client.request("GET", path)
        except ApiStatusError:
            return False
        return any(r.get("name") == res.plural for r in lst.get("resources") or [])

    async def start(self, stop: asyncio.Event) -> None:
        for res in WORKLOAD_RESOURCES:
            if await self._served(res):
                inf = Informer(self.client, res, indexes=False)
                inf.add_handler(self._on_workload)
                self.workload_informers.append(inf)
            else:
                log.info("not served, no default spreading by it", resource=res.plural)
        if await self._served(PDBS):  # DefaultPreemption spares the pods their budgets protect
            inf = Informer(self.client, PDBS, indexes=False)
            inf.add_handler(self._on_pdb)
            self.workload_informers.append(inf)
        informers = [self.nodes, self.pods, self.priority_classes, self.namespaces, *self.workload_informers]
        tasks = [asyncio.create_task(i.start(stop)) for i in informers]
        # plugins with a background part (the DDQN plugin follows the active model)
        runnables = {id(pl): pl for fw in self.frameworks.values() for pl in fw.profile.plugins
                     if callable(getattr(pl, "run", None))}
        tasks += [asyncio.create_task(pl.run(stop)) for pl in runnables.values()]
        tasks.append(asyncio.create_task(self.recorder.start(stop)))
        if self.decision_log is not None:
            tasks.append(asyncio.create_task(self.decision_log.start(stop)))
        if self.decision_records or self.scheduled_events:
            served = await self._discover_records_api()
            self.records_api = self.decision_records and served
            self.binding_events = self.scheduled_events and served
        try:
            if not await _synced_or_stopped((self.priority_classes, self.namespaces, *self.workload_informers,
                                             self.nodes, self.pods), stop):
                return  # stopped (a lost Lease) before the caches synced: the informers have ended
            log.info("scheduler started", profiles=sorted({fw.name for fw in self.frameworks.values()}),
                     aliases=sorted(n for n, fw in self.frameworks.items() if n != fw.name), nodes=len(self.nodes),
                     decision_records=self.records_api,
                     decision_log=str(self.decision_log.path) if self.decision_log else None)
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
        nominated = self.cache.add_nominated_for(pod) if self.cache.nominated else []
        try:
            res = fw.schedule(pod, self.cache)
            ALGORITHM.observe(time.perf_counter() - t0)
            if res.node is None:
                self._slot_free()
                self._fail(fw, pod, res, t0)
                return
            self._scheduled(fw, pod, res, t0)
        finally:
            if nominated:
                self.cache.remove_nominated(nominated)

    def _scheduled(self, fw: Framework, pod: PodInfo, res: Any, t0: float) -> None:
        self.cache.nominated.pop(pod.uid, None)
        if self.decision_log is not None or self.records_api:  # built before Reserve (see decisions)
            rec = decisions.build_record(pod, fw.name, res, self.cache.n, nanos=time.time_ns(), attempt=pod.attempts,
                                         duration_s=time.perf_counter() - t0)
            line = self.decision_log.write(rec) if self.decision_log is not None else encode(rec)
            if self.records_api:
                res.cycle_state[decisions.CYCLE_STATE_KEY] = line
        if self.binding_events:  # the Scheduled Event rides in the Binding (see DefaultBinder)
            ev = self.recorder.build(pod.obj, "Normal", "Scheduled", f"Successfully assigned {pod.key} to {res.node}")
            if ev is not None:
                res.cycle_state[decisions.EVENT_CYCLE_STATE_KEY] = encode(ev)
                res.cycle_state[EVENT_OBJECT_KEY] = ev
        fw.reserve(res.cycle_state, pod, res.node, self.cache)
        self.cache.assume(pod, res.node)
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
        waiting_on = self.cache.nominated.get(pod.uid, (None, None))[0]
        if diag is not None and fw.post_filters:
            if waiting_on and self.cache.terminating_on(waiting_on, pod.priority):
                # kube-scheduler's podEligibleToPreemptOthers: the victims of an earlier
                # preemption are still terminating on the nominated node: wait for them
                pmsg = "not eligible due to a terminating pod on the nominated node."
            else:
                nominated, victims, pmsg = fw.preempt(res.cycle_state, pod, self.cache, diag)
                if not nominated and waiting_on:
                    self.cache.nominate(pod, None)
                    self._spawn(self._nominate(pod, None))
        if nominated:
            # a successful preemption adds nothing to the message (kube-scheduler's PostFilter
            # status is Success, without a message); the victims get their Preempted Events
            log.info("preempting", pod=pod.key, node=nominated, victims=[v.key for v in victims])
            for v in victims:
                self._spawn(self._evict(v, pod, nominated))
            self.cache.nominate(pod, nominated)
            self._spawn(self._nominate(pod, nominated))
        elif pmsg:
            msg += f" preemption: {pmsg}"
        ATTEMPTS.labels("unschedulable", fw.name).inc()
        DURATION.labels("unschedulable", fw.name).observe(time.perf_counter() - t0)
        log.info("scheduling decision", pod=pod.key, profile=fw.name, node=None, reason=msg)
        self._record_failure(fw, pod, res, msg, nominated, t0)
        self.recorder.event(pod.obj, "Warning", "FailedScheduling", msg)
        self._condition(pod, "Unschedulable", msg)
        self.queue.requeue_unschedulable(pod, diag.plugins if diag else set())

    def _condition(self, pod: PodInfo, reason: str, message: str) -> None:
        """kube-scheduler's ``updatePod`` after a failed attempt: ``PodScheduled=False`` with
        the reason (``Unschedulable``, ``SchedulerError``) and the failure message, written
        only when it differs from the pod's condition (a retry with the same outcome writes
        nothing); the binding replaces it with ``True``."""
        current = self.pods.get(pod.key)
        if current is None or (current.get("spec") or {}).get("nodeName"):
            return
        cond = unschedulable_condition(current, reason, message, time.time())
        if cond is not None:
            self._spawn(self._patch_condition(pod, cond))

    async def _patch_condition(self, pod: PodInfo, cond: dict) -> None:
        try:
            await self.client.patch(resources.PODS, pod.name, {"status": {"conditions": [cond]}}, pod.namespace,
                                    patch_type="strategic", subresource="status")
        except ApiStatusError as e:
            if not e.not_found:
                log.info("pod condition update failed", pod=pod.key, error=str(e))

    def _record_failure(self, fw: Framework, pod: PodInfo, res: Any, msg: str, nominated: str | None,
                        t0: float) -> None:
        """The record of a decision that found no node: to the log always, to the API within a
        per-pod budget (an unschedulable pod is retried on every relevant cluster event)."""
        if self.decision_log is None and not self.records_api:
            return
        rec = decisions.build_record(pod, fw.name, res, self.cache.n, nanos=time.time_ns(), attempt=pod.attempts,
                                     duration_s=time.perf_counter() - t0, message=msg, nominated=nominated)
        if self.decision_log is not None:
            self.decision_log.write(rec)
        if self.records_api and self._record_allowed(pod.uid):
            self._spawn(self._create_record(rec))

    def _record_allowed(self, uid: str) -> bool:
        now = time.monotonic()
        tokens, last = self._record_budget.get(uid, (float(FAILED_RECORD_BURST), now))
        tokens = min(float(FAILED_RECORD_BURST), tokens + (now - last) / FAILED_RECORD_REFILL_S)
        if len(self._record_budget) > 20000:
            self._record_budget.clear()
        if tokens < 1.0:
            self._record_budget[uid] = (tokens, now)
            return False
        self._record_budget[uid] = (tokens - 1.0, now)
        return True

    async def _create_record(self, rec: dict) -> None:
        try:
            await self.client.create(DECISIONS, rec, rec["metadata"]["namespace"])
        except ApiStatusError as e:
            log.warning("scheduling decision record failed", pod=f"{rec['pod']['namespace']}/{rec['pod']['name']}",
                        error=str(e))

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

    async def _nominate(self, pod: PodInfo, node: str | None) -> None:
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
        if cs.get(decisions.EVENT_CARRIED_KEY):
            self.recorder.sent(cs[EVENT_OBJECT_KEY])
        elif self.scheduled_events:
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
        self._condition(pod, "SchedulerError", msg)
        self.queue.requeue_error(pod)


def unschedulable_condition(pod: dict, reason: str, message: str, now: float) -> dict | None:
    """The ``PodScheduled=False`` condition to write after a failed attempt, or None when the
    pod already has it with this reason and message (``podutil.UpdatePodCondition``: the
    probe and transition times alone are no change). The transition time is kept while the
    status stays False."""
    old = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if old is not None and old.get("status") == "False" and old.get("reason") == reason and old.get("message") == message:
        return None
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == "False" else None
    return {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": since or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


async def _synced_or_stopped(informers, stop: asyncio.Event) -> bool:
    """Wait for every informer's first list, or for ``stop`` (then False: a stopped informer
    never syncs, and a scheduler that lost its Lease while starting must end at once, not hang
    until its elector gives up on it)."""
    synced = asyncio.ensure_future(asyncio.gather(*(i.wait_for_sync() for i in informers)))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((synced, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (synced, stopped):
            t.cancel()
        await asyncio.gather(synced, stopped, return_exceptions=True)
    return not stop.is_set()
