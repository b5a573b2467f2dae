"""The runc implementation of ``ContainerRuntime``: one OCI bundle per container.

Per container: an overlay rootfs (image root as the read-only lower layer) under
``<root>/containers/<id>``, a ``config.json`` from ``oci.build_config``, a cgroup at
``/controlplane/<node>/pod<uid>/<id>``, stdout/stderr pipes drained by ``logs.LogWriter``.
``runc create`` + ``runc start`` run it; the agent process is a child subreaper, so the
container's init is re-parented to us and its exit status is read with ``waitpid`` (woken by a
pidfd). OOM kills are read from the memory cgroup before ``runc delete`` removes it.
Per pod: a sandbox with a network namespace (``network.PodNetwork``) and a pod directory with
``/etc/hostname|hosts|resolv.conf``. ``cleanup_all`` removes whatever a previous run left.
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

from controlplane.log import get_logger
from controlplane.runtime import cgroups, netstats, oci
from controlplane.runtime.interface import (
    ContainerRuntime, ContainerSpec, ContainerStats, ContainerStatus, RuntimeError_, Sandbox, SandboxSpec,
    SandboxStats,
)
from controlplane.runtime.logs import LogWriter
from controlplane.runtime.network import PodNetwork

log = get_logger(__name__)
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36
MNT_DETACH = 2


def become_subreaper() -> None:
    """Orphaned container inits are re-parented to this process (so we can waitpid them)."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
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


@dataclass
class _Ctr:
    id: str
    name: str
    sandbox: Sandbox
    bundle: Path
    cg_path: str
    log_path: Path
    writer: LogWriter | None
    status: ContainerStatus
    exited: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    pidfd: int = -1


class RuncRuntime(ContainerRuntime):
    def __init__(self, root: Path, node: str, subnet: str | None = None, runc: str = "runc",
                 log_max_bytes: int = 10 * 1024 * 1024) -> None:
        self.root = Path(root).resolve()
        self.node = node
        self.runc = runc
        self.state_dir = self.root / "runc"
        self.bundles = self.root / "containers"
        self.pods_dir = self.root / "pods"
        for d in (self.state_dir, self.bundles, self.pods_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.network = PodNetwork(node, subnet)
        self.log_max_bytes = log_max_bytes
        self._ctrs: dict[str, _Ctr] = {}
        self._du: dict[str, tuple[float, int, int]] = {}  # writable layer use, cached (cAdvisor's du is periodic too)
        become_subreaper()

    # -- helpers -------------------------------------------------------------------------
    async def _runc(self, *args: str, stdout: int | None = None, stderr: int | None = None,
                    log_file: Path | None = None) -> tuple[int, bytes, bytes]:
        pre = [self.runc, "--root", str(self.state_dir)]
        if log_file is not None:
            pre += ["--log", str(log_file), "--log-format", "json"]
        proc = await asyncio.create_subprocess_exec(
            *pre, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout if stdout is not None else asyncio.subprocess.PIPE,
            stderr=stderr if stderr is not None else asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
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
        pod_dir = spec.pod_dir or (self.pods_dir / spec.uid)
        (pod_dir / "etc").mkdir(parents=True, exist_ok=True)
        netns, ip = await self.network.add_pod(spec.uid)
        (pod_dir / "etc" / "hostname").write_text(spec.hostname + "\n")
        (pod_dir / "etc" / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{spec.hostname}\n")
        (pod_dir / "etc" / "resolv.conf").write_text(
            f"search {spec.namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
        (pod_dir / "sandbox.json").write_text(json.dumps({"uid": spec.uid, "netns": netns, "ip": ip}))
        return Sandbox(id=spec.uid, uid=spec.uid, hostname=spec.hostname, netns=netns, ip=ip, pod_dir=pod_dir)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        for c in [c for c in self._ctrs.values() if c.sandbox.uid == sandbox.uid]:
            await self.remove_container(c.id)
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
            await self._remove_bundle(bundle, cid)
        rootfs = bundle / "rootfs"
        for d in ("rootfs", "upper", "work"):
            (bundle / d).mkdir(parents=True, exist_ok=True)
        cg_path = cgroups.container_path(self.node, sandbox.uid, cid)
        log_path = spec.log_path or (sandbox.pod_dir / "logs" / spec.name / f"{spec.attempt}.log")
        status = ContainerStatus(id=cid, name=spec.name, state="created", log_path=log_path)
        writer: LogWriter | None = None
        fds: list[int] = []
        try:
            try:
                _mount_overlay(spec.rootfs, bundle / "upper", bundle / "work", rootfs)
            except OSError as e:
                raise RuntimeError_("CreateContainerError", str(e)) from e
            cfg = oci.build_config(spec, sandbox, str(rootfs), cg_path)
            (bundle / "config.json").write_text(json.dumps(cfg))
            writer = LogWriter(log_path, max_bytes=self.log_max_bytes)
            rout, wout = os.pipe()
            rerr, werr = os.pipe()
            fds = [rout, rerr]
            runc_log = bundle / "runc.log"
            try:
                rc, _, err = await self._runc("create", "--bundle", str(bundle), "--pid-file", str(bundle / "pid"),
                                              cid, stdout=wout, stderr=werr, log_file=runc_log)
            finally:
                os.close(wout)
                os.close(werr)
            if rc != 0:
                raise RuntimeError_("StartError", self._runc_error(runc_log, err))
            status.pid = int((bundle / "pid").read_text().strip())
            writer.attach("stdout", rout)
            writer.attach("stderr", rerr)
            fds = []
        except BaseException:
            for fd in fds:
                os.close(fd)
            if writer is not None:
                await writer.close()
            await self._runc("delete", "--force", cid)
            await self._remove_bundle(bundle, cid)
            cgroups.remove_tree(cg_path)
            raise
        self._ctrs[cid] = _Ctr(cid, spec.name, sandbox, bundle, cg_path, log_path, writer, status)
        return cid

    async def start_container(self, cid: str) -> None:
        c = self._get(cid)
        loop = asyncio.get_running_loop()
        try:
            c.pidfd = os.pidfd_open(c.status.pid)
        except OSError as e:
            raise RuntimeError_("StartError", f"container init {c.status.pid} is gone: {e}") from e
        loop.add_reader(c.pidfd, self._on_exit, c)
        rc, _, err = await self._runc("start", cid, log_file=c.bundle / "runc.log")
        if rc != 0:
            raise RuntimeError_("StartError", self._runc_error(c.bundle / "runc.log", err))
        c.status.state = "running"
        c.status.started_at = time.time()

    def _on_exit(self, c: _Ctr) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(c.pidfd)
        os.close(c.pidfd)
        c.pidfd = -1
        code: int | None
        try:
            _, st = os.waitpid(c.status.pid, 0)
            code = os.waitstatus_to_exitcode(st)
            code = 128 - code if code < 0 else code
        except ChildProcessError:
            code = None  # not our child (no subreaper): exit status unknown
        c.status.state = "exited"
        c.status.exit_code = code if code is not None else 255
        c.status.finished_at = time.time()
        if cgroups.oom_kills(c.cg_path) > 0:
            c.status.oom_killed = True
            c.status.reason = "OOMKilled"
        elif c.status.exit_code == 0:
            c.status.reason = "Completed"
        else:
            c.status.reason = "Error"
        if not c.exited.done():
            c.exited.set_result(c.status)

    async def wait(self, cid: str) -> ContainerStatus:
        c = self._get(cid)
        await asyncio.shield(c.exited)
        if c.writer is not None:
            await c.writer.wait_drained()
        return c.status

    async def kill_container(self, cid: str, sig: int) -> None:
        c = self._get(cid)
        if c.status.state in ("running", "created"):
            await self._runc("kill", cid, str(int(sig)))

    async def stop_container(self, cid: str, grace: float) -> ContainerStatus:
        c = self._get(cid)
        if c.status.state == "running":
            await self.kill_container(cid, _signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(c.exited), timeout=max(0.0, grace))
            except asyncio.TimeoutError:
                await self.kill_container(cid, _signal.SIGKILL)
                try:
                    await asyncio.wait_for(asyncio.shield(c.exited), timeout=10)
                except asyncio.TimeoutError:
                    log.warning("container did not die after SIGKILL", id=cid)
        return c.status

    async def remove_container(self, cid: str) -> None:
        c = self._ctrs.get(cid)
        if c is None:
            return
        if c.status.state == "running":
            await self.stop_container(cid, 0)
        if c.writer is not None:
            await c.writer.wait_drained(1.0)
            await c.writer.close()
        if c.pidfd >= 0:
            asyncio.get_running_loop().remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        await self._runc("delete", "--force", cid)
        await self._remove_bundle(c.bundle, cid)
        cgroups.remove_tree(c.cg_path)
        self._ctrs.pop(cid, None)
        self._du.pop(cid, None)

    async def _remove_bundle(self, bundle: Path, cid: str) -> None:
        for mp in mounts_under(bundle):
            _umount(mp)
        await asyncio.to_thread(shutil.rmtree, bundle, True)

    def status(self, cid: str) -> ContainerStatus:
        return self._get(cid).status

    def log_path(self, cid: str) -> Path | None:
        c = self._ctrs.get(cid)
        return c.log_path if c else None

    def list_containers(self) -> list[ContainerStatus]:
        return [c.status for c in self._ctrs.values()]

    DU_TTL = 10.0

    async def stats(self, cid: str) -> ContainerStats:
        c = self._get(cid)
        now = time.time()
        cg = await asyncio.to_thread(cgroups.read, c.cg_path)
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
            return SandboxStats(cgroups.read(path), netstats.read_netns(sandbox.netns) if sandbox.netns else {},
                                cgroups.process_count(path), time.time())
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
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
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

    # -- shutdown / recovery ------------------------------------------------------------
    async def close(self) -> None:
        for cid in list(self._ctrs):
            try:
                await self.remove_container(cid)
            except Exception as e:  # keep cleaning the rest
                log.warning("remove container failed", id=cid, error=str(e))
        await self.cleanup_all()

    async def cleanup_all(self) -> None:
        """Remove every container, bundle, mount, netns and cgroup under this root/node."""
        rc, out, _ = await self._runc("list", "-q")
        for cid in out.decode().split() if rc == 0 else []:
            await self._runc("kill", cid, "KILL")
            await self._runc("delete", "--force", cid)
        for mp in mounts_under(self.bundles):
            _umount(mp)
        for sb in self.pods_dir.glob("*/sandbox.json"):
            try:
                await self.network.remove_pod(json.loads(sb.read_text())["uid"])
            except (OSError, ValueError, KeyError):
                pass
        for mp in mounts_under(self.pods_dir):
            _umount(mp)
        await asyncio.to_thread(shutil.rmtree, self.bundles, True)
        await asyncio.to_thread(shutil.rmtree, self.pods_dir, True)
        self.bundles.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        await self.network.teardown()
        cgroups.remove_tree(cgroups.node_path(self.node))
        cgroups.remove_if_empty("/" + cgroups.PREFIX)
