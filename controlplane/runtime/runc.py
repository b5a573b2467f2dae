"""The runc implementation of ``ContainerRuntime``: one OCI bundle per container, each watched
by its own ``conmon`` (the container monitor CRI-O uses), so containers outlive the agent.

Per container: an overlay rootfs (image root as the read-only lower layer) under
``<root>/containers/<id>``, a ``config.json`` from ``oci.build_config``, a ``meta.json``
(pod, name, attempt, log path) for re-adoption, and a cgroup at
``/controlplane/<host id>/pod<uid>/<id>``. ``conmon`` runs ``runc create`` (it reports the
init's pid, or runc's error, on a sync pipe), holds the container's stdout/stderr and writes
them as CRI log lines itself, is the container's subreaper, and writes the exit status to
``<root>/exits/<id>`` when it ends; ``runc start`` then runs it. The agent wakes on a pidfd of
the conmon process. Because conmon, not the agent, holds the pipes and reaps the container,
an agent that stops or is killed leaves its containers running; ``recover()`` on the next
start re-adopts every bundle (running, or exited meanwhile with its status in the exit file).
Logs rotate as the kubelet rotates them (``rotate_logs``: rename, then ask conmon to reopen
through its ``ctl`` fifo). OOM kills are read from the memory cgroup before ``runc delete``
removes it. Per pod: a sandbox with a network namespace and address from the node's pod
network (``controlplane.network.node.NodeNetwork``, through the CNI plugins) and a pod directory with ``/etc/hostname|hosts|resolv.conf`` and ``sandbox.json``. ``cleanup_all``
removes everything under the root (``controlplane down``, ``agent cleanup``).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal as _signal
import struct
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane import hostcleanup
from controlplane.log import get_logger
from controlplane.runtime import cgroups, netstats, oci, reaper
from controlplane.runtime.interface import (
    ContainerRuntime, ContainerSpec, ContainerStats, ContainerStatus, RuntimeError_, Sandbox, SandboxSpec,
    SandboxStats,
)
from controlplane.runtime.logs import rotate_files
from controlplane.runtime.stdio import AttachSession

if TYPE_CHECKING:
    from controlplane.network.node import NodeNetwork

log = get_logger(__name__)
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2


def become_subreaper(on: bool = True) -> None:
    """The conmons this process starts (they double-fork) stay its children, and so does every
    other process orphaned below it: ``reap_orphans`` must run while it is one (see
    ``runtime/reaper.py``). ``on=False`` gives the role up (a test process that ran a runtime)."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(1, rows), max(1, cols), 0, 0))


def _mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts) != 0:
        raise OSError(ctypes.get_errno(), f"mount overlay on {target}: {os.strerror(ctypes.get_errno())}")


def _umount(target: Path) -> None:
    _libc.umount2(str(target).encode(), MNT_DETACH)


def mounts_under(prefix: Path) -> list[Path]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = Path(line.split()[4].replace("\\040", " "))
            if mp == prefix or prefix in mp.parents:
                out.append(mp)
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


_ID_BAD = re.compile(r"[^a-zA-Z0-9_.-]")
CONMON = "conmon"


@dataclass
class _Ctr:
    id: str
    name: str
    sandbox: Sandbox
    bundle: Path
    cg_path: str
    log_path: Path
    status: ContainerStatus
    attempt: int = 0
    conmon_pid: int = 0
    tty: bool = False
    stdin: bool = False
    exited: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    pidfd: int = -1


@dataclass
class Recovered:
    """What a previous agent left running (or exited since) under this root."""

    sandboxes: dict[str, Sandbox] = field(default_factory=dict)  # pod uid -> sandbox
    containers: dict[str, list[tuple[int, ContainerStatus]]] = field(default_factory=dict)  # pod uid -> (attempt, status)


def _stdio_args(spec: ContainerSpec) -> list[str]:
    """conmon's flags for a container's stdin and terminal (as CRI-O passes them): ``-i`` keeps
    stdin open for attach, ``--leave-stdin-open`` unless ``stdinOnce``, ``-t`` a terminal."""
    out = []
    if spec.stdin:
        out.append("--stdin")
        if not spec.stdin_once:
            out.append("--leave-stdin-open")
    if spec.tty:
        out.append("--terminal")
    return out


def _monitor_facts(pid: int) -> dict[str, Any]:
    """What a conmon that should have exited is doing: its state, the kernel function it sleeps
    in, its children and how many descriptors it holds (for the log)."""
    facts: dict[str, Any] = {"conmon": f"{pid} {cgroups.proc_state(pid)}"}
    base = Path(f"/proc/{pid}")
    try:
        facts["conmon_wchan"] = (base / "wchan").read_text().strip()
    except OSError:
        pass
    try:
        kids = []
        for t in (base / "task").iterdir():
            kids += (t / "children").read_text().split()
        facts["conmon_children"] = {k: cgroups.proc_state(int(k)) for k in kids[:10]}
    except OSError:
        pass
    try:
        facts["conmon_fds"] = {fd.name: os.readlink(fd) for fd in list((base / "fd").iterdir())[:20]}
    except OSError:
        pass
    return facts


def _pid_alive_as(pid: int, needle: str) -> bool:
    """Whether ``pid`` runs and its command line mentions ``needle`` (a pid reused by another
    program is not our conmon)."""
    try:
        return needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class RuncRuntime(ContainerRuntime):
    def __init__(self, root: Path, node: str, network: "NodeNetwork | None" = None, runc: str = "runc",
                 log_max_bytes: int = 10 * 1024 * 1024) -> None:
        self.root = Path(root).resolve()
        self.node = node
        self.runc = runc
        self.state_dir = self.root / "runc"
        self.bundles = self.root / "containers"
        self.pods_dir = self.root / "pods"
        self.exits = self.root / "exits"
        self.sockets = self.root / "sock"
        for d in (self.state_dir, self.bundles, self.pods_dir, self.exits, self.sockets):
            d.mkdir(parents=True, exist_ok=True)
        self.conmon = shutil.which(CONMON) or "/usr/bin/conmon"
        self.kill_wait = 10.0  # seconds for an exit after each SIGKILL step (stop_container)
        self.runc_path = shutil.which(runc) or runc
        self.network = network
        self.log_max_bytes = log_max_bytes
        self._ctrs: dict[str, _Ctr] = {}
        self._du: dict[str, tuple[float, int, int]] = {}  # writable layer use, cached (cAdvisor's du is periodic too)
        become_subreaper()

    # -- helpers -------------------------------------------------------------------------
    async def _runc(self, *args: str, stdout: int | None = None, stderr: int | None = None,
                    log_file: Path | None = None, timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """Run runc; with ``timeout``, a runc still running then is killed and the call answers
        rc -1 (a stuck ``runc kill`` must not hold up a container's stop forever)."""
        pre = [self.runc, "--root", str(self.state_dir)]
        if log_file is not None:
            pre += ["--log", str(log_file), "--log-format", "json"]
        proc = await asyncio.create_subprocess_exec(
            *pre, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout if stdout is not None else asyncio.subprocess.PIPE,
            stderr=stderr if stderr is not None else asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, b"", f"runc {args[0]} timed out after {timeout}s".encode()
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
            raise
        return proc.returncode or 0, out or b"", err or b""

    @staticmethod
    def _runc_error(log_file: Path, fallback: bytes) -> str:
        msg = ""
        try:
            for line in log_file.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("error", "fatal"):
                    msg = rec.get("msg", "")
        except OSError:
            pass
        return msg or fallback.decode(errors="replace").strip() or "runc failed"

    def _get(self, cid: str) -> _Ctr:
        c = self._ctrs.get(cid)
        if c is None:
            raise RuntimeError_("NotFound", f"container {cid} not found")
        return c

    # -- sandboxes ----------------------------------------------------------------------
    async def create_sandbox(self, spec: SandboxSpec) -> Sandbox:
        if self.network is None or self.network.addrs is None:
            raise RuntimeError_("NetworkNotReady", "network is not ready: container runtime network not ready: "
                                "NetworkReady=false reason:NetworkPluginNotReady (no pod CIDR yet)")
        if spec.resources is not None:
            await self._ensure_pod_cgroup(spec)
        pod_dir = spec.pod_dir or (self.pods_dir / spec.uid)
        (pod_dir / "etc").mkdir(parents=True, exist_ok=True)
        (pod_dir / "sandbox.json").write_text(json.dumps({"uid": spec.uid}))  # cleanup finds it even if ADD fails
        try:
            att = await self.network.add_pod(spec.uid, spec.port_mappings or None)
        except BaseException:  # no sandbox to remove later: take the pod cgroup back now
            await asyncio.to_thread(cgroups.remove_tree, cgroups.pod_path(self.node, spec.uid))
            raise
        netns, ip = att.netns_path, att.ip
        (pod_dir / "etc" / "hostname").write_text(spec.hostname + "\n")
        hosts = spec.hosts(ip) if spec.hosts else \
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{spec.hostname}\n"
        (pod_dir / "etc" / "hosts").write_text(hosts)
        (pod_dir / "etc" / "resolv.conf").write_text(spec.resolv_conf if spec.resolv_conf is not None else "")
        (pod_dir / "sandbox.json").write_text(json.dumps({"uid": spec.uid, "netns": netns, "ip": ip}))
        return Sandbox(id=spec.uid, uid=spec.uid, hostname=spec.hostname, netns=netns, ip=ip, pod_dir=pod_dir)

    async def _ensure_pod_cgroup(self, spec: SandboxSpec) -> None:
        """The pod cgroup with the pod's limits, before any container (the kubelet's
        ``podContainerManager.EnsureExists``); a value the kernel refuses fails the sandbox."""
        assert spec.resources is not None
        try:
            path = await asyncio.to_thread(cgroups.ensure_pod, self.node, spec.uid, spec.resources)
        except OSError as e:
            await asyncio.to_thread(cgroups.remove_tree, cgroups.pod_path(self.node, spec.uid))
            raise RuntimeError_("FailedToCreatePodContainer", f"unable to ensure pod container exists: "
                                f"failed to ensure that the pod: {spec.uid} cgroups exist and are correctly "
                                f"applied: {e}") from e
        log.debug("pod cgroup", pod_uid=spec.uid, path=path, resources=spec.resources)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        for c in [c for c in self._ctrs.values() if c.sandbox.uid == sandbox.uid]:
            await self.remove_container(c.id)
        if self.network is not None:
            await self.network.remove_pod(sandbox.uid)
        cgroups.remove_tree(cgroups.pod_path(self.node, sandbox.uid))
        for mp in mounts_under(sandbox.pod_dir):
            _umount(mp)
        await asyncio.to_thread(shutil.rmtree, sandbox.pod_dir, True)

    # -- containers ---------------------------------------------------------------------
    async def create_container(self, sandbox: Sandbox, spec: ContainerSpec) -> str:
        cid = _ID_BAD.sub("-", f"{sandbox.uid[:13]}-{spec.name}-{spec.attempt}")
        if cid in self._ctrs:
            raise RuntimeError_("CreateContainerError", f"container {cid} already exists")
        bundle = self.bundles / cid
        if bundle.exists():
            await self._runc("delete", "--force", cid)
            await self._remove_bundle(bundle, cid)
        rootfs = bundle / "rootfs"
        for d in ("rootfs", "upper", "work"):
            (bundle / d).mkdir(parents=True, exist_ok=True)
        cg_path = cgroups.container_path(self.node, sandbox.uid, cid)
        log_path = spec.log_path or (sandbox.pod_dir / "logs" / spec.name / f"{spec.attempt}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        (self.exits / cid).unlink(missing_ok=True)
        status = ContainerStatus(id=cid, name=spec.name, state="created", log_path=log_path)
        try:
            try:
                _mount_overlay(spec.rootfs, bundle / "upper", bundle / "work", rootfs)
            except OSError as e:
                raise RuntimeError_("CreateContainerError", str(e)) from e
            cfg = oci.build_config(spec, sandbox, str(rootfs), cg_path)
            (bundle / "config.json").write_text(json.dumps(cfg))
            (bundle / "meta.json").write_text(json.dumps({
                "id": cid, "name": spec.name, "podUID": sandbox.uid, "attempt": spec.attempt,
                "logPath": str(log_path), "cgroupsPath": cg_path, "tty": spec.tty, "stdin": spec.stdin}))
            pid, conmon_pid = await self._conmon_create(cid, bundle, log_path, spec)
            status.pid = pid
        except BaseException:
            await self._runc("delete", "--force", cid)
            await self._remove_bundle(bundle, cid)
            cgroups.remove_tree(cg_path)
            raise
        self._ctrs[cid] = _Ctr(cid, spec.name, sandbox, bundle, cg_path, log_path, status, spec.attempt, conmon_pid,
                               tty=spec.tty, stdin=spec.stdin)
        return cid

    async def _conmon_create(self, cid: str, bundle: Path, log_path: Path, spec: ContainerSpec) -> tuple[int, int]:
        """``conmon`` runs ``runc create``; returns (container init pid, conmon pid) or raises
        ``StartError`` with runc's message. conmon double-forks: the process we start exits at
        once and the monitor lives on (re-parented to this subreaper, or to init if we die)."""
        runc_log = bundle / "runc.log"
        r, w = os.pipe()
        try:
            with open(bundle / "conmon.log", "ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    self.conmon, "--api-version", "1", "-c", cid, "-u", cid, "-n", cid, "-r", self.runc_path,
                    "--runtime-arg", "--root", "--runtime-arg", str(self.state_dir),
                    "--runtime-arg", "--log", "--runtime-arg", str(runc_log),
                    "--runtime-arg", "--log-format", "--runtime-arg", "json",
                    "-b", str(bundle), "-p", str(bundle / "pid"), "-P", str(bundle / "conmon.pid"),
                    "-l", f"k8s-file:{log_path}", "--exit-dir", str(self.exits),
                    "--socket-dir-path", str(self.sockets), "--log-level", "error", *_stdio_args(spec),
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(w,),
                    # conmon writes its `oom` marker into its working directory: the bundle's
                    env={**os.environ, "_OCI_SYNCPIPE": str(w)}, start_new_session=True, cwd=str(bundle))
        finally:
            os.close(w)
        try:
            await proc.wait()
            raw = await asyncio.to_thread(_read_line, r)
        finally:
            os.close(r)
        try:
            msg = json.loads(raw.splitlines()[0]) if raw.strip() else {}
        except ValueError:
            msg = {}
        pid = int(msg.get("data", -1)) if isinstance(msg.get("data"), int) else -1
        if pid <= 0:
            fallback = (msg.get("message") or raw.decode(errors="replace") or "conmon failed").encode()
            raise RuntimeError_("StartError", self._runc_error(runc_log, fallback))
        try:
            conmon_pid = int((bundle / "conmon.pid").read_text().strip())
        except (OSError, ValueError) as e:
            raise RuntimeError_("StartError", f"conmon wrote no pid: {e}") from e
        return pid, conmon_pid

    async def start_container(self, cid: str) -> None:
        c = self._get(cid)
        self._watch(c)
        rc, _, err = await self._runc("start", cid, log_file=c.bundle / "runc.log")
        if rc != 0:
            raise RuntimeError_("StartError", self._runc_error(c.bundle / "runc.log", err))
        c.status.state = "running"
        c.status.started_at = time.time()
        (c.bundle / "started").write_text(f"{c.status.started_at}\n")

    def _watch(self, c: _Ctr) -> None:
        """Wake ``_on_exit`` when the container's conmon ends (it writes the exit file first)."""
        try:
            c.pidfd = os.pidfd_open(c.conmon_pid)
        except OSError:
            self._on_exit(c)  # already gone
            return
        asyncio.get_running_loop().add_reader(c.pidfd, self._on_exit, c)

    def _on_exit(self, c: _Ctr) -> None:
        if c.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        try:
            os.waitpid(c.conmon_pid, os.WNOHANG)  # our child when we were its subreaper
        except ChildProcessError:
            pass
        self._set_exited(c)
        if not c.exited.done():
            c.exited.set_result(c.status)

    def _set_exited(self, c: _Ctr) -> None:
        exit_file = self.exits / c.id
        try:
            code = int(exit_file.read_text().strip())
            c.status.finished_at = exit_file.stat().st_mtime
        except (OSError, ValueError):
            code = 255  # the monitor died without a status (killed)
            c.status.finished_at = time.time()
            c.status.message = "container monitor exited without an exit status"
        c.status.state = "exited"
        c.status.exit_code = code
        if cgroups.oom_kills(c.cg_path) > 0:
            c.status.oom_killed = True
            c.status.reason = "OOMKilled"
        elif code == 0:
            c.status.reason = "Completed"
        else:
            c.status.reason = "Error"

    async def wait(self, cid: str) -> ContainerStatus:
        c = self._get(cid)
        await asyncio.shield(c.exited)
        return c.status

    async def kill_container(self, cid: str, sig: int) -> None:
        c = self._get(cid)
        if c.status.state in ("running", "created"):
            rc, _, err = await self._runc("kill", cid, str(int(sig)), timeout=10)
            if rc != 0 and not c.exited.done():
                log.warning("runc kill failed", id=cid, signal=int(sig), rc=rc,
                            error=err.decode(errors="replace").strip()[:300])

    async def stop_container(self, cid: str, grace: float) -> ContainerStatus:
        c = self._get(cid)
        if c.status.state == "running":
            await self.kill_container(cid, _signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(c.exited), timeout=max(0.0, grace))
            except asyncio.TimeoutError:
                await self.kill_container(cid, _signal.SIGKILL)
                try:
                    await asyncio.wait_for(asyncio.shield(c.exited), timeout=self.kill_wait)
                except asyncio.TimeoutError:
                    # the last resort (seen once in CI: the container outlived runc's SIGKILL and
                    # its restart never came): SIGKILL every process of its cgroup, and say what
                    # was left and in which state
                    left = await asyncio.to_thread(cgroups.kill_all, c.cg_path)
                    log.warning("container did not die after SIGKILL; killed its cgroup's processes", id=cid,
                                processes={p: cgroups.proc_state(p) for p in left[:10]},
                                conmon=f"{c.conmon_pid} {cgroups.proc_state(c.conmon_pid)}")
                    try:
                        await asyncio.wait_for(asyncio.shield(c.exited), timeout=self.kill_wait)
                    except asyncio.TimeoutError:
                        await self._end_stuck_monitor(c)
        return c.status

    async def _end_stuck_monitor(self, c: _Ctr) -> None:
        """The container's cgroup is empty (or was killed) but its conmon has not exited: seen
        in CI with the cgroup already empty and conmon sleeping, so the container never
        counted as exited and its restart never came. Say what conmon waits on, then SIGKILL
        that conmon (ours: its command line names the container) so the exit is seen; without
        an exit file the status is 137, the SIGKILL the container was sent."""
        left = await asyncio.to_thread(cgroups.pids, c.cg_path)
        diag = _monitor_facts(c.conmon_pid)
        exit_file = (self.exits / c.id).exists()
        if left or not _pid_alive_as(c.conmon_pid, c.id):
            log.warning("container did not die after its cgroup was killed", id=c.id, processes=left[:10],
                        exit_file=exit_file, **diag)
            return
        log.warning("container gone but its monitor lives on; killing the monitor", id=c.id,
                    exit_file=exit_file, **diag)
        if not exit_file:  # the exit the container was given: its SIGKILL
            (self.exits / c.id).write_text(f"{128 + int(_signal.SIGKILL)}\n")
        try:
            os.kill(c.conmon_pid, _signal.SIGKILL)
        except OSError:
            pass
        try:
            await asyncio.wait_for(asyncio.shield(c.exited), timeout=5)
        except asyncio.TimeoutError:
            log.warning("container monitor did not end after SIGKILL", id=c.id, **_monitor_facts(c.conmon_pid))

    async def remove_container(self, cid: str) -> None:
        c = self._ctrs.get(cid)
        if c is None:
            return
        if c.status.state == "running":
            await self.stop_container(cid, 0)
        if c.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        await self._delete_state(cid)
        await self._remove_bundle(c.bundle, cid)
        cgroups.remove_tree(c.cg_path)
        (self.exits / cid).unlink(missing_ok=True)
        self._ctrs.pop(cid, None)
        self._du.pop(cid, None)

    async def _delete_state(self, cid: str, tries: int = 3) -> bool:
        """``runc delete --force``, tried again while runc still knows the container (a delete
        can fail while a process of the container is still being killed); a failure that stays
        is logged with runc's message (runc's state would otherwise be left on the host)."""
        err = b""
        for i in range(tries):
            rc, _, err = await self._runc("delete", "--force", cid, timeout=30)
            if rc == 0:
                return True
            rc_state, _, _ = await self._runc("state", cid, timeout=10)
            if rc_state != 0:  # runc no longer knows it: deleted (or never created)
                return True
            await asyncio.sleep(0.2 * (i + 1))
        log.warning("runc delete failed; the container's runc state is left", id=cid,
                    error=err.decode(errors="replace").strip()[:300])
        return False

    async def _remove_bundle(self, bundle: Path, cid: str) -> None:
        for mp in mounts_under(bundle):
            _umount(mp)
        await asyncio.to_thread(shutil.rmtree, bundle, True)
        await asyncio.to_thread(shutil.rmtree, self.sockets / cid, True)

    async def reap_orphans(self, stop: asyncio.Event, period: float = 1.0,
                           host_age: float | None = 5.0) -> None:
        """Reap the zombies this subreaper inherits until ``stop`` (``runtime/reaper.py``):
        a container's process orphaned by a killed ``runc exec`` at once (its container's init
        cannot finish exiting before), other orphans once ``host_age`` s old."""
        r = reaper.Reaper(host_age)
        while not stop.is_set():
            try:
                for pid, status in await asyncio.to_thread(r.sweep, time.monotonic()):
                    log.debug("reaped an orphaned process", pid=pid, status=status)
            except OSError as e:  # /proc unreadable: try again next period
                log.warning("reaping orphans failed", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), period)
            except asyncio.TimeoutError:
                pass

    def rotate_logs(self, max_files: int = 5) -> None:
        """The kubelet's container log rotation: a running container's log past
        ``log_max_bytes`` becomes ``<n>.log.1`` (older ones shift, ``max_files`` kept) and its
        conmon is told to reopen the path (``2 0 0`` on the bundle's ``ctl`` fifo)."""
        for c in list(self._ctrs.values()):
            if c.status.state != "running":
                continue
            try:
                if c.log_path.stat().st_size < self.log_max_bytes:
                    continue
            except OSError:
                continue
            rotate_files(c.log_path, max_files)
            try:
                fd = os.open(c.bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
                try:
                    os.write(fd, b"2 0 0\n")
                finally:
                    os.close(fd)
            except OSError as e:
                log.warning("log reopen request failed", id=c.id, error=str(e))

    def status(self, cid: str) -> ContainerStatus:
        return self._get(cid).status

    async def attach(self, cid: str) -> AttachSession:
        """A connection to the container's conmon attach socket (``stdio.py``)."""
        c = self._get(cid)
        if c.status.state != "running":
            raise RuntimeError_("NotRunning", f"container {c.name} is not running")
        try:
            return await AttachSession.open(c.bundle, c.tty, c.stdin)
        except OSError as e:
            raise RuntimeError_("AttachError", f"cannot attach to container {c.name}: {e}") from e

    def log_path(self, cid: str) -> Path | None:
        c = self._ctrs.get(cid)
        return c.log_path if c else None

    def list_containers(self) -> list[ContainerStatus]:
        return [c.status for c in self._ctrs.values()]

    DU_TTL = 10.0

    async def stats(self, cid: str) -> ContainerStats:
        c = self._get(cid)

        def read() -> tuple[cgroups.CgroupStats | None, float]:
            # stamped when read, not before the hop to the thread: on a busy machine that hop
            # can take a tenth of a second, which a 3 s rate window would show as a few percent
            cg = cgroups.read(c.cg_path)
            return cg, time.time()
        cg, now = await asyncio.to_thread(read)
        cached = self._du.get(cid)
        if cached is None or now - cached[0] > self.DU_TTL:
            used, inodes = await asyncio.to_thread(netstats.disk_usage, c.bundle / "upper")
            cached = self._du[cid] = (now, used, inodes)
        if cg is None:
            return ContainerStats(timestamp=now, writable_layer_bytes=cached[1], writable_layer_inodes=cached[2])
        return ContainerStats(cg.cpu_usage_ns, cg.working_set_bytes, cg.pids, cg, cached[1], cached[2], now)

    async def sandbox_stats(self, sandbox: Sandbox) -> SandboxStats:
        def read() -> SandboxStats:
            path = cgroups.pod_path(self.node, sandbox.uid)
            cg, ts = cgroups.read(path), time.time()  # stamped with the counters, not after the netns read
            return SandboxStats(cg, netstats.read_netns(sandbox.netns) if sandbox.netns else {},
                                cgroups.process_count(path), ts)
        return await asyncio.to_thread(read)

    # -- exec ----------------------------------------------------------------------------
    async def exec_process(self, cid: str, cmd: list[str], stdin: bool) -> asyncio.subprocess.Process:
        c = self._get(cid)
        if c.status.state != "running":
            raise RuntimeError_("NotRunning", f"container {c.name} is not running")
        return await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.state_dir), "exec", cid, *cmd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def exec_tty(self, cid: str, cmd: list[str], rows: int = 24,
                       cols: int = 80) -> tuple[asyncio.subprocess.Process, int]:
        """``runc exec -t`` on a pty we own: runc proxies it to the container's terminal and
        follows its size (set ``TIOCSWINSZ`` on the master to resize)."""
        c = self._get(cid)
        if c.status.state != "running":
            raise RuntimeError_("NotRunning", f"container {c.name} is not running")
        master, slave = os.openpty()
        set_winsize(master, rows, cols)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.runc, "--root", str(self.state_dir), "exec", "-t", cid, *cmd,
                stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return proc, master

    async def exec_sync(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        proc = await self.exec_process(cid, cmd, stdin=False)
        try:
            async with asyncio.timeout(timeout):  # (wait_for could drop a cancellation on 3.11)
                out, err = await proc.communicate()
        except TimeoutError:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
            raise RuntimeError_("Timeout", f"command {cmd} timed out after {timeout}s") from None
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
            raise
        return proc.returncode or 0, out, err

    # -- re-adoption, shutdown ----------------------------------------------------------
    async def recover(self) -> Recovered:
        """Re-adopt what a previous agent left under this root: every pod sandbox whose network
        namespace still exists, and every container bundle of such a pod, running (its conmon
        alive: watched again) or exited meanwhile (status from the exit file). Bundles of pods
        without a usable sandbox are removed."""
        out = Recovered()
        for sb_file in sorted(self.pods_dir.glob("*/sandbox.json")):
            try:
                d = json.loads(sb_file.read_text())
                uid, netns, ip = d["uid"], d["netns"], d.get("ip")
            except (OSError, ValueError, KeyError):
                continue
            if not Path(netns).exists():
                log.warning("sandbox lost its network namespace; dropping it", pod_uid=uid)
                continue
            # (its address stays reserved: host-local IPAM keeps reservations on disk)
            hostname = (sb_file.parent / "etc" / "hostname").read_text().strip() \
                if (sb_file.parent / "etc" / "hostname").exists() else ""
            out.sandboxes[uid] = Sandbox(id=uid, uid=uid, hostname=hostname, netns=netns, ip=ip,
                                         pod_dir=sb_file.parent)
        for meta_file in sorted(self.bundles.glob("*/meta.json")):
            bundle = meta_file.parent
            try:
                m = json.loads(meta_file.read_text())
                cid, uid = m["id"], m["podUID"]
            except (OSError, ValueError, KeyError):
                await self._drop_bundle(bundle.name, bundle)
                continue
            sb = out.sandboxes.get(uid)
            if sb is None:
                await self._drop_bundle(cid, bundle)
                continue
            c = await self._adopt(m, bundle, sb)
            if c is None:
                await self._drop_bundle(cid, bundle)
                continue
            out.containers.setdefault(uid, []).append((c.attempt, c.status))
        for uid in list(out.containers):
            out.containers[uid].sort(key=lambda t: t[0])
        log.info("re-adopted", sandboxes=len(out.sandboxes),
                 running=sum(1 for cs in out.containers.values() for _, st in cs if st.state == "running"),
                 exited=sum(1 for cs in out.containers.values() for _, st in cs if st.state == "exited"))
        return out

    async def _adopt(self, m: dict, bundle: Path, sb: Sandbox) -> _Ctr | None:
        cid = m["id"]
        status = ContainerStatus(id=cid, name=m["name"], state="created", log_path=Path(m["logPath"]))
        try:
            status.pid = int((bundle / "pid").read_text().strip())
            conmon_pid = int((bundle / "conmon.pid").read_text().strip())
        except (OSError, ValueError):
            return None  # never got as far as running
        try:
            status.started_at = float((bundle / "started").read_text().strip())
        except (OSError, ValueError):
            return None  # created but never started: nothing worth keeping
        c = _Ctr(cid, m["name"], sb, bundle, m["cgroupsPath"], Path(m["logPath"]), status,
                 int(m.get("attempt", 0)), conmon_pid, tty=bool(m.get("tty")), stdin=bool(m.get("stdin")))
        self._ctrs[cid] = c
        if _pid_alive_as(conmon_pid, cid):
            status.state = "running"
            self._watch(c)
        else:
            if not (self.exits / cid).exists():  # the monitor is gone without a status: stop the orphan
                await self._runc("kill", cid, "KILL")
            self._on_exit(c)
        return c

    async def _drop_bundle(self, cid: str, bundle: Path) -> None:
        await self._runc("kill", cid, "KILL")
        await self._delete_state(cid)
        await self._remove_bundle(bundle, cid)
        (self.exits / cid).unlink(missing_ok=True)

    async def close(self) -> None:
        for cid in list(self._ctrs):
            try:
                await self.remove_container(cid)
            except Exception as e:  # keep cleaning the rest
                log.warning("remove container failed", id=cid, error=str(e))
        await self.cleanup_all()

    async def cleanup_all(self) -> None:
        """Remove every container (and its conmon), bundle, mount, netns and cgroup under this
        root / host id."""
        rc, out, _ = await self._runc("list", "-q")
        for cid in out.decode().split() if rc == 0 else []:
            await self._runc("kill", cid, "KILL", timeout=10)
            await self._delete_state(cid)
        for pidfile in self.bundles.glob("*/conmon.pid"):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if _pid_alive_as(pid, pidfile.parent.name):
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for mp in mounts_under(self.bundles):
            _umount(mp)
        for sb in self.pods_dir.glob("*/sandbox.json"):
            try:
                if self.network is not None:
                    await self.network.remove_pod(json.loads(sb.read_text())["uid"])
            except (OSError, ValueError, KeyError):
                pass
        for mp in mounts_under(self.pods_dir):
            _umount(mp)
        for d in (self.bundles, self.pods_dir, self.exits, self.sockets):
            await asyncio.to_thread(shutil.rmtree, d, True)
            d.mkdir(parents=True, exist_ok=True)
        cgroups.remove_tree(cgroups.node_path(self.node))
        cgroups.remove_if_empty("/" + cgroups.PREFIX)


def _read_line(fd: int) -> bytes:
    """Read one line (or to EOF) from a pipe (blocking: run in a thread). conmon keeps its
    end of the sync pipe open while the container runs."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        b = os.read(fd, 1)
        if not b:
            break
        buf += b
    return bytes(buf)


# -- `controlplane down`: containers, mounts and runtime files of an instance ---------------
def _runc_list(state_dir: Path) -> list[str]:
    import subprocess

    if not state_dir.exists():
        return []
    r = subprocess.run(["runc", "--root", str(state_dir), "list", "-q"], capture_output=True, text=True, timeout=30)
    return r.stdout.split() if r.returncode == 0 else []


def _live_conmons(root: Path) -> list[tuple[int, str]]:
    out = []
    for pidfile in (root / "containers").glob("*/conmon.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive_as(pid, pidfile.parent.name):
            out.append((pid, pidfile.parent.name))
    return out


async def _down_containers(inst: hostcleanup.Instance) -> None:
    root = inst.runtime_root
    state = root / "runc"
    for cid in await asyncio.to_thread(_runc_list, state):
        for args in (["kill", cid, "KILL"], ["delete", "--force", cid]):
            proc = await asyncio.create_subprocess_exec("runc", "--root", str(state), *args,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()
    for pid, _ in _live_conmons(root):
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while _live_conmons(root) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _container_leftovers(inst: hostcleanup.Instance) -> list[str]:
    root = inst.runtime_root
    return [f"runc container {c}" for c in _runc_list(root / "runc")] + \
        [f"conmon {pid} ({cid})" for pid, cid in _live_conmons(root)]


async def _down_mounts(inst: hostcleanup.Instance) -> None:
    for mp in mounts_under(inst.data_dir):
        _umount(mp)


async def _down_files(inst: hostcleanup.Instance) -> None:
    root = inst.runtime_root
    for d in ("containers", "pods", "exits", "sock", "runc"):
        await asyncio.to_thread(shutil.rmtree, root / d, True)


def _file_leftovers(inst: hostcleanup.Instance) -> list[str]:
    root = inst.runtime_root
    return [f"bundle {b}" for b in (root / "containers").glob("*")] + [f"sandbox {p}" for p in (root / "pods").glob("*")]


hostcleanup.register("containers", _down_containers, _container_leftovers, order=20)
hostcleanup.register("mounts", _down_mounts, lambda inst: [f"mount {m}" for m in mounts_under(inst.data_dir)], order=40)
hostcleanup.register("runtime-files", _down_files, _file_leftovers, order=60)
