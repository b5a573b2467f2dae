"""Starting, watching and restarting the containers of one pod (a part of ``PodWorker``).

Image (per pull policy) → env, command and mounts (``podconfig``) → runc create + start →
postStart hook → probes; on exit: OOMKilled/exit code into the state, restart per
``restartPolicy`` (a sidecar init container: always) with the CrashLoopBackOff schedule
(``lifecycle.CrashBackoff``). Startup
probes gate liveness and readiness; liveness/startup failures kill the container.
Ephemeral containers (``kubectl debug``) start once, in the pod's network namespace and, with
``targetContainerName``, in the PID namespace of that container, and are never restarted.
The security context (``security.py``: user and groups, runAsNonRoot, noNewPrivileges,
seccomp, sysctls) and the termination message file (``termination.py``) are decided here.
Neighbours: ``pod_worker.PodWorker`` (the loop, termination, status) extends this.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from controlplane.agent import lifecycle as lc
from controlplane.agent import security, termination
from controlplane.agent.context import NodeContext
from controlplane.agent.podconfig import ConfigError, PodConfig, limits
from controlplane.agent.probes import probe_loop, run_action
from controlplane.agent.service_env import service_env
from controlplane.images.manager import ImageError
from controlplane.machinery.timestamps import go_duration
from controlplane.log import get_logger
from controlplane.runtime import seccomp
from controlplane.runtime.interface import ContainerSpec, Mount, RuntimeError_, Sandbox

log = get_logger(__name__)


class ContainerRunner:
    """The container half of a pod worker; ``PodWorker`` extends it and sets every attribute
    declared here in its ``__init__``."""

    agent: NodeContext
    pod: dict
    uid: str
    ns: str
    name: str
    sandbox: Sandbox | None
    volumes: dict[str, Path] | None
    backoff: dict[str, lc.CrashBackoff]
    probes: dict[str, list[asyncio.Task]]
    waits: dict[str, asyncio.Task]
    wake: asyncio.Event
    killing: set[str]
    terminating: bool
    timer: float | None
    log_dir: Path
    init: list[lc.CState]
    main: list[lc.CState]
    ephemeral: list[lc.CState]

    def pod_config(self) -> PodConfig:
        """The pod's ``PodConfig``, with what the downward API needs from this node (its
        allocatable, for limits a container leaves unset, and its address)."""
        try:
            alloc = self.agent.allocatable()
        except OSError:
            alloc = {}
        return PodConfig(self.agent.client, self.pod, self.agent.cfg.node, self.sandbox.ip, self.agent.tokens,
                         allocatable=alloc, host_ip=self.agent.cfg.address)

    @property
    def spec(self) -> dict:
        return self.pod.get("spec") or {}

    def container_spec(self, c: lc.CState) -> dict:
        key = "ephemeralContainers" if c.ephemeral else "initContainers" if c.init else "containers"
        for x in self.spec.get(key) or []:
            if x["name"] == c.name:
                return x
        return {}

    def _retry_in(self, seconds: float) -> None:
        self.timer = seconds if self.timer is None else min(self.timer, seconds)

    def _grace(self) -> float:
        md = self.pod.get("metadata") or {}
        g = md.get("deletionGracePeriodSeconds")
        if g is None:
            g = self.spec.get("terminationGracePeriodSeconds", 30)
        return float(g if g is not None else 30)


    async def start(self, c: lc.CState) -> None:
        assert self.sandbox is not None and self.volumes is not None
        cs = self.container_spec(c)
        if c.cid is not None or c.last_terminated is not None or c.exit_code is not None:
            attempt = c.restart_count + 1
        else:
            attempt = 0
        image, policy = cs.get("image", ""), cs.get("imagePullPolicy")
        present = self.agent.images.present(image, policy)
        if not present:
            self.agent.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"')
        t_pull = time.monotonic()
        try:
            rec, rootfs = await self.agent.images.ensure(image, policy)
        except ImageError as e:
            c.state, c.reason, c.message = "waiting", e.reason, e.message
            self.agent.metrics.pull_errors.labels(e.reason).inc()
            self.agent.event(self.pod, "Warning", "Failed", f'Failed to pull image "{c.image}": {e.message}')
            self._retry_in(self.agent.cfg.image_retry)
            return
        if present:
            self.agent.event(self.pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        else:
            took = go_duration(time.monotonic() - t_pull)
            self.agent.event(self.pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {took} '
                             f'({took} including waiting). Image size: {rec.size} bytes.')
        c.image, c.image_id = cs.get("image", c.image), f"{rec.ref.split(':')[0].split('@')[0]}@{rec.manifest}"
        pid_ns = None
        if c.ephemeral and cs.get("targetContainerName"):
            pid_ns = self._target_pid_namespace(c, cs["targetContainerName"])
            if pid_ns is None:
                return
        pc = self.pod_config()
        psc, sc = self.spec.get("securityContext") or {}, cs.get("securityContext") or {}
        eff = security.effective(psc, sc)
        try:
            refused = security.verify_run_as_non_root(self.pod, c.name, eff, *security.image_user(rec.config))
            if refused:
                raise ConfigError(refused)
            env = await pc.env(cs, service_env(self.agent.services.list(), self.pod))
            for reason, message in pc.warnings:
                self.agent.event(self.pod, "Warning", reason, message)
            argv = pc.command(cs, rec.config, env)
            mounts = pc.mounts(cs, self.volumes, env)
            db = await asyncio.to_thread(security.Passwd.of_rootfs, rootfs)
            try:
                uid, gid, gids = security.process_user(security.user_string(eff, rec.config), db,
                                                       security.supplemental_groups(psc))
            except security.UserError as e:
                raise ConfigError(str(e), reason="CreateContainerError") from e
            profile = await self._seccomp_profile(psc, sc)
            mounts += self._termination_mount(c, cs)
        except ConfigError as e:
            c.state, c.reason, c.message = "waiting", e.reason, e.message
            self.agent.event(self.pod, "Warning", "Failed", f"Error: {e.message}")
            self._retry_in(5)
            return
        img_env = [e for e in rec.config.get("Env") or [] if e.split("=", 1)[0] not in {x.split("=", 1)[0] for x in env}]
        caps = sc.get("capabilities") or {}
        spec = ContainerSpec(
            name=c.name, rootfs=rootfs, args=argv, env=img_env + env,
            cwd=cs.get("workingDir") or rec.config.get("WorkingDir") or "/",
            uid=uid, gid=gid, additional_gids=gids, no_new_privileges=security.no_new_privileges(sc),
            seccomp=profile, sysctls=security.sysctls(self.pod),
            readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")), cap_add=caps.get("add") or [],
            cap_drop=caps.get("drop") or [], privileged=bool(sc.get("privileged")), mounts=mounts,
            attempt=attempt, log_path=self.log_dir / c.name / f"{attempt}.log",
            stdin=bool(cs.get("stdin")),
            stdin_once=bool(cs.get("stdinOnce")), tty=bool(cs.get("tty")), pid_namespace=pid_ns, **limits(cs))
        if attempt > 0:
            c.restart_count = attempt
            self.agent.metrics.restarts.inc()
        rt = self.agent.runtime
        t0 = time.time()
        try:
            cid = await rt.create_container(self.sandbox, spec)
            self.agent.event(self.pod, "Normal", "Created", f"Created container: {c.name}")
            await rt.start_container(cid)
        except RuntimeError_ as e:
            # like containerd's StartError: a terminated attempt (exit 128) that restarts per policy
            c.cid = None
            c.started_at, c.finished_at, c.exit_code = t0, time.time(), 128
            c.reason, c.message = "StartError", e.message
            self.agent.event(self.pod, "Warning", "Failed", f"Error: {e.message}")
            self._after_exit(c, ran_for=0.0)
            return
        c.cid, c.state, c.reason, c.message = cid, "running", "", ""
        c.started_at, c.finished_at, c.exit_code = time.time(), None, None
        c.started = "startupProbe" not in cs
        c.ready = False
        self.agent.event(self.pod, "Normal", "Started", f"Started container {c.name}")
        self.waits[cid] = asyncio.get_running_loop().create_task(self._wait_exit(c, cid))
        post = ((cs.get("lifecycle") or {}).get("postStart"))
        if post:
            ok, msg = await run_action(rt, cid, self.sandbox.netns, self.sandbox.ip, cs, post, 30)
            if not ok:
                self.agent.event(self.pod, "Warning", "FailedPostStartHook", msg)
                c.started = False
                self.killing.add(cid)
                await rt.stop_container(cid, self._grace())
                return
        if (not c.init or c.restartable) and not c.ephemeral:  # sidecars are probed like containers
            self._start_probes(c, cs, cid)
            if "readinessProbe" not in cs and c.started:
                c.ready = True

    async def _seccomp_profile(self, psc: dict, sc: dict) -> dict | None:
        """The profile to apply (None: Unconfined), read from disk; a file that cannot be read
        is containerd's CreateContainerError."""
        cfg = self.agent.cfg
        root = cfg.seccomp_profile_root or cfg.root / "seccomp"
        try:
            choice = security.seccomp_choice(psc, sc, cfg.seccomp_default, root)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        if choice.kind == "Unconfined":
            return None
        path = choice.path if choice.kind == "Localhost" else seccomp.DEFAULT_PROFILE
        assert path is not None
        if choice.kind == "Localhost" and root not in path.parents:
            raise ConfigError(f'seccomp profile "{path}" is outside the profile root {root}', reason="CreateContainerError")
        try:
            return await asyncio.to_thread(seccomp.load_profile, path)
        except OSError as e:
            raise ConfigError(f'failed to generate seccomp spec opts: cannot load seccomp profile "{path}": '
                              f"open {path}: {(e.strerror or str(e)).lower()}", reason="CreateContainerError") from e
        except seccomp.SeccompError as e:
            raise ConfigError(f"failed to generate seccomp spec opts: {e}", reason="CreateContainerError") from e

    def _termination_mount(self, c: lc.CState, cs: dict) -> list[Mount]:
        """A fresh message file for this attempt at ``terminationMessagePath`` (the previous
        attempt's message is already in ``lastState``)."""
        assert self.sandbox is not None
        path = cs.get("terminationMessagePath", "/dev/termination-log")
        if c.termination_file:
            Path(c.termination_file).unlink(missing_ok=True)
            c.termination_file = None
        if not path:
            return []
        try:
            f = termination.new_file(self.sandbox.pod_dir / "containers" / c.name)
        except OSError as e:
            raise ConfigError(f"unable to create the termination message file: {e}", reason="CreateContainerError") from e
        c.termination_file = str(f)
        return [Mount(path, str(f))]

    def _target_pid_namespace(self, c: lc.CState, target: str) -> str | None:
        """The PID namespace of the running ``target`` container (``/proc/<its init>/ns/pid``),
        which an ephemeral container with ``targetContainerName`` joins, as the kubelet asks the
        runtime to (``NamespaceMode_TARGET``); None (waiting, retried) while it is not running."""
        t = next((x for x in self.init + self.main if x.name == target), None)
        pid = 0
        if t is not None and t.state == "running" and t.cid is not None:
            try:
                pid = self.agent.runtime.status(t.cid).pid
            except RuntimeError_:
                pid = 0
        if pid <= 0 or not Path(f"/proc/{pid}/ns/pid").exists():
            c.state, c.reason = "waiting", "ContainerCreating"
            c.message = f"target container {target} is not running"
            self._retry_in(1)
            return None
        return f"/proc/{pid}/ns/pid"

    def _start_probes(self, c: lc.CState, cs: dict, cid: str) -> None:
        assert self.sandbox is not None
        sb, rt = self.sandbox, self.agent.runtime
        tasks = []
        for kind in ("startup", "liveness", "readiness"):
            probe = cs.get(f"{kind}Probe")
            if not probe:
                continue
            timeout = float(probe.get("timeoutSeconds") or 1)

            async def check(probe: dict = probe, timeout: float = timeout) -> tuple[bool, str]:
                return await run_action(rt, cid, sb.netns, sb.ip, cs, probe, timeout)

            gate = None if kind == "startup" else (lambda: c.started)
            tasks.append(asyncio.get_running_loop().create_task(
                probe_loop(kind, probe, check, lambda k, ok, msg: self._on_probe(c, cid, k, ok, msg), gate)))
        self.probes[cid] = tasks

    def _on_probe(self, c: lc.CState, cid: str, kind: str, ok: bool, msg: str) -> None:
        if c.cid != cid or c.state != "running":
            return
        if kind == "readiness":
            c.ready = ok
            if not ok:
                self.agent.event(self.pod, "Warning", "Unhealthy", f"Readiness probe failed: {msg}")
        elif kind == "startup":
            if ok:
                c.started = True
                if "readinessProbe" not in self.container_spec(c):
                    c.ready = True
            else:
                self.agent.event(self.pod, "Warning", "Unhealthy", f"Startup probe failed: {msg}")
                self._kill_for_probe(c, cid, "startup")
        elif kind == "liveness" and not ok:
            self.agent.event(self.pod, "Warning", "Unhealthy", f"Liveness probe failed: {msg}")
            self._kill_for_probe(c, cid, "liveness")
        self.wake.set()

    def _kill_for_probe(self, c: lc.CState, cid: str, kind: str) -> None:
        if cid in self.killing:
            return
        self.killing.add(cid)
        self.agent.event(self.pod, "Normal", "Killing", f"Container {c.name} failed {kind} probe, will be restarted")
        self.agent.spawn(self._kill_to_restart(c, cid))

    def spec_changed(self) -> None:
        """The kubelet's ``containerChanged``: a regular container or a sidecar whose image the
        pod's spec changed (the one field of a container an update may change) is killed
        ("definition changed") and started again with the new image, whatever the restart
        policy and without back-off (the kubelet's back-off is per container spec hash); one
        waiting out a back-off starts at once. Nothing restarts once the pod terminates;
        finished regular init containers and ephemeral containers are left alone."""
        if self.terminating or (self.pod.get("metadata") or {}).get("deletionTimestamp"):
            return
        for c in self.main + [i for i in self.init if i.restartable]:
            want = self.container_spec(c).get("image")
            if not want or want == c.image or c.done:
                continue
            if c.state == "running" and c.cid is not None:
                if c.cid in self.killing:
                    continue
                c.changed = True
                self.killing.add(c.cid)
                self.agent.event(self.pod, "Normal", "Killing",
                                 f"{'Init container' if c.init else 'Container'} {c.name} definition changed, "
                                 f"will be restarted")
                self.agent.spawn(self._kill_to_restart(c, c.cid))
            elif c.state == "waiting" and c.restart_at is not None:
                self._reset_backoff(c.name)
                c.restart_at, c.reason, c.message = None, "ContainerCreating", ""
                self._retry_in(0.0)

    def _reset_backoff(self, name: str) -> None:
        self.backoff[name] = lc.CrashBackoff(self.agent.cfg.backoff_initial, self.agent.cfg.backoff_cap)

    async def _kill_to_restart(self, c: lc.CState, cid: str) -> None:
        """Stop a container that a failed probe or a changed spec restarts."""
        try:
            await self.agent.runtime.stop_container(cid, self._grace())
        except (RuntimeError_, OSError) as e:
            log.warning("stopping a container to restart it failed", pod=f"{self.ns}/{self.name}",
                        container=c.name, error=str(getattr(e, "message", e)))
        try:
            running = self.agent.runtime.status(cid).state == "running"
        except RuntimeError_:
            running = False  # removed: it exited
        if running:  # not ended: the next failed probe kills again
            log.warning("container still running after its kill to restart it", pod=f"{self.ns}/{self.name}",
                        container=c.name, id=cid)
            self.killing.discard(cid)

    async def _wait_exit(self, c: lc.CState, cid: str) -> None:
        st = await self.agent.runtime.wait(cid)
        for t in self.probes.pop(cid, []):
            t.cancel()
        if c.cid != cid:
            return
        msg = await asyncio.to_thread(
            termination.message, Path(c.termination_file) if c.termination_file else None,
            self.container_spec(c).get("terminationMessagePolicy") or "File", st.exit_code,
            st.log_path or self.log_dir / c.name / f"{c.restart_count}.log")
        if c.cid != cid:
            return
        c.exit_code, c.finished_at = st.exit_code, st.finished_at
        c.reason = st.reason or ("Completed" if st.exit_code == 0 else "Error")
        c.message = msg
        c.ready = False
        ran_for = (st.finished_at or time.time()) - (c.started_at or time.time())
        self.killing.discard(cid)
        self.waits.pop(cid, None)
        try:
            await self.agent.runtime.remove_container(cid)
        except RuntimeError_:
            pass
        if not self.terminating:
            self._after_exit(c, ran_for)
        else:
            c.state = "terminated"
        self.wake.set()

    def _after_exit(self, c: lc.CState, ran_for: float) -> None:
        if c.ephemeral:  # never restarted
            c.state, c.done = "terminated", True
            return
        policy = self.spec.get("restartPolicy") or "Always"
        code = c.exit_code if c.exit_code is not None else 0
        # a sidecar restarts whatever the pod's policy; a regular init container at most on failure
        policy = "Always" if c.restartable else "OnFailure" if c.init and policy == "Always" else policy
        changed, c.changed = c.changed, False
        restart = changed or lc.should_restart(policy, code)
        if not restart:
            c.state, c.done = "terminated", True
            return
        if changed:  # a new spec: a new back-off (the kubelet keys it by the container's hash)
            self._reset_backoff(c.name)
        delay = 0.0 if changed else self.backoff[c.name].next_delay(ran_for)
        c.last_terminated = c.terminated_dict()
        c.state = "waiting"
        if delay > 0:
            c.reason = "CrashLoopBackOff"
            c.message = (f"back-off {int(delay)}s restarting failed container={c.name} "
                         f"pod={self.name}_{self.ns}({self.uid})")
            c.restart_at = max(time.time(), (c.finished_at or time.time()) + delay)  # resumes after an agent restart
            self.agent.event(self.pod, "Warning", "BackOff", "Back-off restarting failed container")
        else:
            c.reason, c.message, c.restart_at = "ContainerCreating", "", None
        self._retry_in(max(delay, 0.0))

