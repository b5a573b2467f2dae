"""One pod on this node, driven level-based by its own task (the kubelet's pod worker).

Each pass re-reads the latest pod and acts: sandbox (netns, pod IP) → volumes → init
containers in order (sidecars, ``restartPolicy: Always``, started and kept running) → app
containers (image pull per policy, env/volumes, runc create+start, postStart) → restart per
``restartPolicy`` with CrashLoopBackOff → probes (startup gates liveness/readiness; liveness
failure restarts) → status through ``pods/status`` when it changed. A deletionTimestamp means graceful termination (preStop, SIGTERM, grace, SIGKILL;
regular containers first, then sidecars in reverse order), removal of everything on the host,
then the final delete with gracePeriodSeconds=0. A Never/OnFailure pod whose regular
containers all finished has its sidecars stopped the same way and ends Succeeded or Failed.

Agent restarts: every container's state (restart count, backoff position, last termination,
when a backoff ends) is checkpointed to ``<pod dir>/containers.json``; ``adopt`` takes the
sandbox and containers the runtime re-adopted plus that checkpoint, so a running container
goes on under the new agent (same container ID, restart count kept), one that exited
meanwhile is handled as an exit now, and a crash loop resumes where its backoff was.
Ephemeral containers (``kubectl debug``, added to the spec through ``pods/ephemeralcontainers``)
are picked up on the next pass once the pod runs, started once and reported in
``ephemeralContainerStatuses``; they are stopped and removed with the pod.
Admission: a pod whose sysctls the node does not allow (``security.SysctlAllowlist``) is
rejected as the kubelet does: never started, ``Failed`` with reason ``SysctlForbidden``.
Neighbours: ``agent.Agent`` owns workers; ``lifecycle`` (pure rules), ``podconfig``, ``probes``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from controlplane.agent import lifecycle as lc
from controlplane.agent import pod_dns
from controlplane.agent.security import SysctlAllowlist
from controlplane.agent.context import NodeContext
from controlplane.agent.podcgroup import resource_config_for_pod
from controlplane.agent.podconfig import ConfigError, PodConfig
from controlplane.agent.containers import ContainerRunner
from controlplane.agent.probes import run_action
from controlplane.agent.runtimeclass import DEFAULT_HANDLERS, resolve_handler
from controlplane.client.resources import PODS
from controlplane.client.rest import ApiStatusError
from controlplane.client.retry import update_with_retry
from controlplane.log import get_logger
from controlplane.machinery.podresources import host_ports
from controlplane.machinery.timestamps import rfc3339
from controlplane.runtime.interface import ContainerStatus, RuntimeError_, Sandbox, SandboxSpec

log = get_logger(__name__)


class PodWorker(ContainerRunner):
    def __init__(self, agent: NodeContext, pod: dict) -> None:
        self.agent = agent
        self.pod = pod
        md = pod["metadata"]
        self.uid: str = md["uid"]
        self.ns: str = md.get("namespace") or "default"
        self.name: str = md["name"]
        spec = pod.get("spec") or {}
        self.init = [lc.CState(c["name"], c.get("image", ""), init=True, restartable=c.get("restartPolicy") == "Always")
                     for c in spec.get("initContainers") or []]
        self.main = [lc.CState(c["name"], c.get("image", "")) for c in spec.get("containers") or []]
        self.ephemeral: list[lc.CState] = []
        self.backoff = {c.name: lc.CrashBackoff(agent.cfg.backoff_initial, agent.cfg.backoff_cap) for c in self.init + self.main}
        self._add_ephemeral()
        self.sandbox: Sandbox | None = None
        self.sandbox_error: str | None = None
        self.volumes: dict[str, Path] | None = None
        self.volumes_at = 0.0
        self.probes: dict[str, list[asyncio.Task]] = {}
        self.waits: dict[str, asyncio.Task] = {}
        self.wake = asyncio.Event()
        self.gone = False
        self.finished = False
        self.terminating = False
        self.killing: set[str] = set()
        self.shutdown = False  # graceful node shutdown: report Failed/Terminated
        self.evicted: str | None = None  # the eviction manager's message: report Failed/Evicted
        # the kubelet's admission (sysctls): (reason, message) of a rejected pod, which never runs
        self.rejected: tuple[str, str] | None = None
        self.rejection_recorded = False
        forbidden = SysctlAllowlist(agent.cfg.allowed_unsafe_sysctls).admit(pod)
        if forbidden:
            self.rejected = ("SysctlForbidden", forbidden)
        self.started_reported = False
        self.start_time = time.time()
        self.last_status: dict | None = None
        self.timer: float | None = None
        self.log_dir = agent.cfg.root / "logs" / f"{self.ns}_{self.name}_{self.uid}"
        self.task: asyncio.Task | None = None
        self._adopted: list[tuple[lc.CState, ContainerStatus]] = []
        self._checkpointed = ""

    # -- agent restarts ----------------------------------------------------------------------
    CHECKPOINT = "containers.json"

    def adopt(self, sandbox: Sandbox, containers: list[tuple[int, ContainerStatus]]) -> None:
        """Take over a sandbox and the containers a previous agent left (see the docstring)."""
        self.sandbox = sandbox
        self.started_reported = True
        self.rejected = None  # admitted when it started
        try:
            saved = json.loads((sandbox.pod_dir / self.CHECKPOINT).read_text())
        except (OSError, ValueError):
            saved = {}
        latest: dict[str, tuple[int, ContainerStatus]] = {}
        for attempt, st in containers:
            prev = latest.get(st.name)
            if prev is not None:
                self.agent.spawn(self.agent.runtime.remove_container(prev[1].id))  # only the last one is kept
            latest[st.name] = (attempt, st)
        # (``image`` is the one the last attempt ran: a spec changed meanwhile restarts it, ``spec_changed``)
        fields = {f.name for f in dataclasses.fields(lc.CState)} - {"name", "init", "restartable", "ephemeral"}
        for c in self.init + self.main + self.ephemeral:
            d = saved.get(c.name) or {}
            for k, v in (d.get("state") or {}).items():
                if k in fields:
                    setattr(c, k, v)
            if "backoff" in d:
                self.backoff[c.name].restarts = int(d["backoff"])
            c.ready = False
            rec = latest.get(c.name)
            if rec is not None:
                attempt, st = rec
                c.restart_count = max(c.restart_count, attempt)
                c.cid, c.state, c.started_at = st.id, "running", st.started_at
                c.exit_code, c.finished_at, c.reason, c.message, c.done = None, None, "", "", False
                self._adopted.append((c, st))
            elif c.state == "running":  # the checkpoint saw it running, the runtime has nothing
                c.state, c.exit_code, c.finished_at = "running", 137, time.time()
                c.reason = "ContainerStatusUnknown"
                c.message = "The container could not be located when the agent restarted"
                self._after_exit(c, ran_for=0.0)
        log.info("pod re-adopted", pod=f"{self.ns}/{self.name}",
                 containers={c.name: (st.state, c.restart_count) for c, st in self._adopted})

    def _resume_adopted(self) -> None:
        """Watch re-adopted containers again (exit handling, probes)."""
        for c, st in self._adopted:
            self.waits[st.id] = asyncio.get_running_loop().create_task(self._wait_exit(c, st.id))
            if st.state == "running" and (not c.init or c.restartable) and not c.ephemeral:
                cs = self.container_spec(c)
                self._start_probes(c, cs, st.id)
                if "readinessProbe" not in cs and c.started:
                    c.ready = True
        if self._adopted:
            self.spec_changed()  # the spec may have changed while no agent ran
        self._adopted = []

    def checkpoint(self) -> None:
        """Write the containers' states next to the sandbox (only when they changed)."""
        if self.sandbox is None:
            return
        doc = json.dumps({c.name: {"state": dataclasses.asdict(c), "backoff": self.backoff[c.name].restarts}
                          for c in self.init + self.main + self.ephemeral}, sort_keys=True)
        if doc == self._checkpointed:
            return
        tmp = self.sandbox.pod_dir / f".{self.CHECKPOINT}.tmp"
        try:
            tmp.write_text(doc)
            tmp.replace(self.sandbox.pod_dir / self.CHECKPOINT)
            self._checkpointed = doc
        except OSError as e:
            log.warning("container checkpoint failed", pod=f"{self.ns}/{self.name}", error=str(e))

    # -- inputs ------------------------------------------------------------------------------
    def update(self, pod: dict) -> None:
        self.pod = pod
        self._add_ephemeral()
        self.spec_changed()
        self.wake.set()

    def _add_ephemeral(self) -> None:
        """Track the ephemeral containers the spec gained (they are only ever added)."""
        have = {c.name for c in self.ephemeral}
        for c in self.spec.get("ephemeralContainers") or []:
            if c.get("name") and c["name"] not in have:
                self.ephemeral.append(lc.CState(c["name"], c.get("image", ""), ephemeral=True))
                self._reset_backoff(c["name"])

    def removed(self) -> None:
        self.gone = True
        self.wake.set()

    def evict(self, message: str) -> None:
        """Node-pressure eviction (``pressure.PressureMonitor``): kill now, report Failed/Evicted."""
        self.evicted = message
        self.wake.set()

    def state(self, name: str) -> lc.CState | None:
        return next((c for c in self.init + self.main + self.ephemeral if c.name == name), None)

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._resume_adopted()
        while not self.finished:
            self.wake.clear()
            self.timer = None
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod sync failed", pod=f"{self.ns}/{self.name}")
                self.timer = 2.0
            if self.finished:
                break
            try:
                async with asyncio.timeout(self.timer if self.timer is not None else 30.0):
                    await self.wake.wait()  # (not wait_for: on 3.11 it can drop the worker's cancellation)
            except TimeoutError:
                pass

    async def sync(self) -> None:
        md = self.pod.get("metadata") or {}
        if self.gone or md.get("deletionTimestamp"):
            await self.terminate(self._grace())
            if not self.gone:
                try:
                    await self.agent.client.delete(PODS, self.name, self.ns, grace_period_seconds=0,
                                                   preconditions={"uid": self.uid})
                except ApiStatusError as e:
                    if not (e.not_found or e.conflict or e.code == 409):
                        raise
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.finished = True
            return
        if self.rejected:
            if not self.rejection_recorded:
                self.rejection_recorded = True
                self.agent.event(self.pod, "Warning", *self.rejected)
            await self.push_status()
            return
        if self.evicted:
            if self.sandbox is not None:
                await self.terminate(0)  # a hard threshold: no grace period, as the kubelet
            else:
                await self.push_status()
            return
        policy = self.spec.get("restartPolicy") or "Always"
        if not self.terminating and lc.regular_containers_done(policy, self.main) \
                and any(c.restartable and c.state == "running" for c in self.init):
            # the pod is done (a Job's pod with a sidecar): its sidecars must not keep it alive
            self.terminating = True
            await self._kill_containers(self._grace())
        phase = lc.pod_phase(policy, self.init, self.main)
        if phase in ("Succeeded", "Failed"):
            await self._release()
            await self.push_status()
            return
        if self.sandbox is None:
            try:
                await resolve_handler(self.agent.client, self.spec,
                                      getattr(self.agent.runtime, "handlers", DEFAULT_HANDLERS))
                self.sandbox = await self.agent.runtime.create_sandbox(self._sandbox_spec())
                self.sandbox_error = None
            except (OSError, RuntimeError_) as e:
                self.sandbox_error = str(e)
                self.agent.event(self.pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
                self._retry_in(5)
                await self.push_status()
                return
        if self.volumes is None:
            try:
                self.volumes_at = time.monotonic()
                self.volumes = await self.pod_config() \
                    .prepare_volumes(self.sandbox.pod_dir / "volumes", self.agent.cfg.host_path_root,
                                     self.agent.cfg.root / "storage")
            except ConfigError as e:
                # as the kubelet: the containers wait in ContainerCreating (no message) while
                # the volume manager's FailedMount Events say why
                for c in self.init + self.main:
                    if c.state == "waiting":
                        c.reason, c.message = e.reason, ("" if e.reason == "ContainerCreating" else e.message)
                self.agent.event(self.pod, "Warning", "FailedMount", e.message)
                self._retry_in(10)
                await self.push_status()
                return
        elif time.monotonic() - self.volumes_at >= self.agent.cfg.volume_refresh:
            await self._refresh_volumes()
        self._retry_in(self.agent.cfg.volume_refresh)
        await self.sync_containers()
        await self.push_status()

    async def _refresh_volumes(self) -> None:
        """ConfigMap/Secret/projected volumes follow their sources (like the kubelet's sync). A
        volume that cannot be brought up to date keeps its contents and, as the kubelet's
        operation executor, records a ``FailedMount`` Warning each time (the recorder folds the
        repeats into one Event whose ``count`` grows, as client-go's correlator)."""
        assert self.sandbox is not None
        self.volumes_at = time.monotonic()
        pc = self.pod_config()
        await pc.prepare_volumes(self.sandbox.pod_dir / "volumes", self.agent.cfg.host_path_root,
                                 self.agent.cfg.root / "storage", refresh=True)
        for message in pc.failed_mounts:
            log.info("volume refresh failed; keeping contents", pod=f"{self.ns}/{self.name}", error=message)
            self.agent.event(self.pod, "Warning", "FailedMount", message)

    async def sync_containers(self) -> None:
        if self.terminating:  # the pod finished: nothing starts again
            return
        now = time.time()
        # ephemeral containers first, as the kubelet starts them: a failing init container
        # does not keep a debugger out; each runs once
        for c in self.ephemeral:
            if c.state == "waiting" and not c.done and c.cid is None and c.exit_code is None:
                await self.start(c)
        if not await self._sync_init():
            return
        for c in self.main:
            if c.state == "running" or c.done:
                continue
            if c.restart_at and now < c.restart_at:
                self._retry_in(c.restart_at - now)
                continue
            await self.start(c)

    async def _sync_init(self) -> bool:
        """Init containers in order, as the kubelet's ``computeInitContainerActions`` (1.32):
        a regular one runs to completion before the next starts; a sidecar (``restartPolicy:
        Always``) is started and the next one starts once it has *started* (startup probe passed,
        or with none: running and postStart done). Sidecars the sequence has passed are
        restarted whenever they exit (backoff as any container) without holding anything up.
        True when the regular containers may run (every init container passed)."""
        now = time.time()
        initialized = any(lc.begun(c) for c in self.main)
        for i, c in enumerate(self.init):
            passed = initialized or any(lc.begun(x) for x in self.init[i + 1:])
            if not c.restartable:
                if passed or (c.state == "terminated" and c.exit_code == 0):
                    continue
                if c.state == "running" or c.done:
                    return False
                if c.restart_at and now < c.restart_at:
                    self._retry_in(c.restart_at - now)
                    return False
                await self.start(c)
                return False
            if c.state == "running":
                if c.started or passed:
                    continue
                return False  # the startup probe (or postStart) decides; it wakes the worker
            if c.restart_at and now < c.restart_at:
                self._retry_in(c.restart_at - now)
                if passed:
                    continue
                return False
            await self.start(c)
            if not (passed or (c.state == "running" and c.started)):
                return False
        return True

    # -- termination ------------------------------------------------------------------------
    async def _stop_one(self, c: lc.CState, grace: float, after: list[asyncio.Task] | None = None) -> None:
        """``killContainer``: the Killing Event, preStop, then (a sidecar) the wait for ``after``
        (the containers that must exit first) within the grace period, then SIGTERM, the rest
        of the grace period, SIGKILL."""
        if c.state != "running" or c.cid is None or self.sandbox is None:
            return
        cid = c.cid
        deadline = time.monotonic() + grace
        self.agent.event(self.pod, "Normal", "Killing", f"Stopping container {c.name}")
        pre = (self.container_spec(c).get("lifecycle") or {}).get("preStop")
        if pre:
            try:
                await asyncio.wait_for(run_action(self.agent.runtime, cid, self.sandbox.netns, self.sandbox.ip,
                                                  self.container_spec(c), pre, grace), grace)
            except asyncio.TimeoutError:
                pass
        pending = [t for t in after or [] if not t.done()]
        if pending and deadline > time.monotonic():
            await asyncio.wait(pending, timeout=deadline - time.monotonic())
        try:
            await self.agent.runtime.stop_container(cid, max(0.0, deadline - time.monotonic()))
        except RuntimeError_:
            pass
        w = self.waits.get(cid)
        if w is not None:
            await asyncio.wait([w], timeout=5)

    async def _kill_containers(self, grace: float) -> None:
        """Stop every running container with the kubelet's termination ordering (1.29+): the
        regular (and ephemeral, and running regular init) containers at once; each sidecar only
        once every regular container and the sidecars defined after it have exited, so sidecars
        stop in reverse order of definition, after the containers they serve."""
        exits = {c.name: self.waits[c.cid] for c in self.init + self.main
                 if c.state == "running" and c.cid is not None and c.cid in self.waits}
        stops = [self._stop_one(c, grace) for c in self.ephemeral + self.main + [x for x in self.init if not x.restartable]]
        before = [exits[c.name] for c in self.main if c.name in exits]
        for c in reversed([x for x in self.init if x.restartable]):
            stops.append(self._stop_one(c, grace, list(before)))
            if c.name in exits:
                before.append(exits[c.name])
        await asyncio.gather(*stops)

    async def terminate(self, grace: float) -> None:
        self.terminating = True
        await self._kill_containers(grace)
        await self._release()
        for c in self.main + self.init + self.ephemeral:
            if c.state == "waiting":
                c.state, c.exit_code, c.reason = "terminated", c.exit_code or 0, c.reason or "Completed"
        if not self.gone:
            await self.push_status()

    async def _release(self) -> None:
        """Remove containers, network and pod directory (logs stay until the pod is deleted)."""
        for tasks in self.probes.values():
            for t in tasks:
                t.cancel()
        self.probes.clear()
        for w in list(self.waits.values()):
            w.cancel()
        self.waits.clear()
        if self.sandbox is not None:
            await self.agent.runtime.remove_sandbox(self.sandbox)
            self.sandbox = None
            self.volumes = None

    def _sandbox_spec(self) -> SandboxSpec:
        """Sandbox inputs: hostPorts for portmap (the regular containers' and the sidecars'),
        resolv.conf and hosts per the pod's DNS settings, the pod cgroup's limits."""
        cfg = self.agent.cfg
        mappings = [{"hostPort": int(p["hostPort"]), "containerPort": int(p["containerPort"]),
                     "protocol": (p.get("protocol") or "TCP").lower(), "hostIP": p.get("hostIP") or ""}
                    for p in host_ports(self.spec) if p.get("containerPort")]
        domain = cfg.cluster_domain
        host_rc = None
        if cfg.resolv_conf:
            try:
                host_rc = pod_dns.parse_resolv_conf(Path(cfg.resolv_conf).read_text())
            except OSError:
                host_rc = None
        rc = pod_dns.resolv_conf(self.pod, list(cfg.cluster_dns or []), domain, host_rc)
        hostname, pod = self._hostname(), self.pod
        return SandboxSpec(uid=self.uid, name=self.name, namespace=self.ns, hostname=hostname,
                           port_mappings=mappings, resolv_conf=rc.render(),
                           hosts=lambda ip: pod_dns.hosts_file(pod, ip, hostname, domain),
                           resources=resource_config_for_pod(self.spec,
                                                             pids_limit=self.agent.cfg.pod_pids_limit))

    # -- status -----------------------------------------------------------------------------
    def _hostname(self) -> str:
        h = self.spec.get("hostname") or self.name
        return h[:63]

    def build_status(self) -> dict[str, Any]:
        if self.rejected:  # the kubelet's rejectPod: phase, reason, message (and the QoS class)
            old = self.pod.get("status") or {}
            return {"phase": "Failed", "reason": self.rejected[0], "message": f"Pod was rejected: {self.rejected[1]}",
                    "qosClass": lc.qos_class(self.spec), "conditions": old.get("conditions") or [],
                    "startTime": old.get("startTime") or rfc3339(self.start_time)}
        policy = self.spec.get("restartPolicy") or "Always"
        phase = lc.pod_phase(policy, self.init, self.main)
        old = self.pod.get("status") or {}
        now = time.time()
        ip = self.sandbox.ip if self.sandbox else (self.last_status or {}).get("podIP")
        st: dict[str, Any] = {
            "phase": phase,
            "conditions": lc.pod_conditions(phase, self.sandbox is not None, self.init, self.main,
                                            old.get("conditions") or [], now),
            "hostIP": self.agent.cfg.address, "hostIPs": [{"ip": self.agent.cfg.address}],
            "startTime": old.get("startTime") or rfc3339(self.start_time),
            "qosClass": lc.qos_class(self.spec),
            "containerStatuses": [c.status() for c in self.main],
        }
        if self.init:
            st["initContainerStatuses"] = [c.status() for c in self.init]
        if self.ephemeral:
            st["ephemeralContainerStatuses"] = [c.status() for c in self.ephemeral]
        if ip:
            st["podIP"], st["podIPs"] = ip, [{"ip": ip}]
        if self.sandbox_error:
            st["message"] = self.sandbox_error
        if self.shutdown or self.evicted:
            st["phase"], st["reason"] = ("Failed", "Evicted") if self.evicted else ("Failed", "Terminated")
            st["message"] = self.evicted or "Pod was terminated in response to imminent node shutdown."
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady") and c["status"] == "True":
                    c.update(status="False", reason="PodCompleted", lastTransitionTime=rfc3339(now))
            if self.evicted:
                prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
                st["conditions"].append({"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                                         "message": self.evicted,
                                         "lastTransitionTime": (prev or {}).get("lastTransitionTime") or rfc3339(now)})
        return st

    async def push_status(self) -> None:
        self.checkpoint()
        st = self.build_status()
        if st["phase"] == "Running" and not self.started_reported:
            self.started_reported = True
            self.agent.metrics.pod_start.observe(time.time() - self.start_time)
        comparable = {k: v for k, v in st.items() if k != "conditions"}
        comparable["conds"] = [(c["type"], c["status"]) for c in st["conditions"]]
        if comparable == self.last_status:
            return
        try:
            current = self.pod if (self.pod.get("metadata") or {}).get("resourceVersion") else None

            def mutate(p: dict) -> None:
                if (p.get("metadata") or {}).get("uid") != self.uid:
                    raise ApiStatusError(404, "NotFound", f"pod {self.ns}/{self.name} was replaced")
                p["status"] = st

            updated = await update_with_retry(self.agent.client, PODS, self.name, self.ns, mutate,
                                              subresource="status", current=current)
            self.last_status = comparable
            self.pod = updated
        except ApiStatusError as e:
            if e.not_found:
                self.gone = True
                self.wake.set()
            else:
                log.warning("pod status update failed", pod=f"{self.ns}/{self.name}", error=str(e))
                self._retry_in(1)

    # -- logs -------------------------------------------------------------------------------
    def log_file(self, container: str, previous: bool) -> Path | None:
        c = self.state(container)
        if c is None:
            return None
        n = c.restart_count - (1 if previous else 0)  # attempt n logs to n.log
        if n < 0:
            return None
        p = self.log_dir / container / f"{n}.log"
        return p if p.exists() or os.path.exists(str(p) + ".1") else None

    def is_running(self, container: str) -> bool:
        c = self.state(container)
        return c is not None and c.state == "running" and not self.finished

    def running_cid(self, container: str) -> str | None:
        c = self.state(container)
        return c.cid if c is not None and c.state == "running" else None
