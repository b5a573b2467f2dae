"""The processes ``controlplane up`` supervises, behind one small protocol (``Runnable``):
``python -m controlplane <component>`` children (``ChildProcess``) and the embedded etcd
(``EtcdRunnable``). Every child is started with ``PR_SET_PDEATHSIG`` = SIGKILL
(``procutil.die_with_parent``), so none outlives ``up``. ``wait_pid`` waits for a
``subprocess.Popen`` child without a thread (a pidfd wakes the loop); ``describe_exit`` turns
an exit status into the cause the supervisor logs and counts.

Neighbours: ``supervisor.Supervisor`` (restarts), ``cmd/up.py`` (which components, and the
registry's runnable).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any, Callable, Protocol

from controlplane.etcd_process import EtcdProcess, EtcdTLS, free_port
from controlplane.procutil import die_with_parent


def describe_exit(rc: int | None) -> str:
    """``exit status 1`` / ``signal SIGKILL`` (asyncio and Popen give -N for signal N)."""
    if rc is None:
        return "unknown"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


class StartupExit(RuntimeError):
    """A component's process ended before it was ready; ``returncode`` as ``wait`` gives it."""

    def __init__(self, returncode: int, message: str) -> None:
        super().__init__(message)
        self.returncode = returncode


class Runnable(Protocol):
    """A supervised component: one process at a time."""

    name: str

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        """Start the process; with ``wait_ready`` return once it serves (raise if it cannot)."""

    async def wait(self) -> int:
        """Wait for the running process to exit; its exit status (-N: signal N)."""

    async def stop(self) -> None:
        """Stop the process (SIGTERM, grace, SIGKILL); no-op when it is not running."""

    def pid(self) -> int | None: ...


async def wait_pid(proc: Any) -> int:
    """Wait for a ``subprocess.Popen`` child without a thread: a pidfd wakes the loop."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return int(proc.wait())
    done: asyncio.Future = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        if proc.poll() is None:
            await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return int(proc.wait())


class ChildProcess:
    """``python -m controlplane <args>`` as a child, its output appended to
    ``DIR/logs/<name>.log``; ``ready(ctx)`` (blocking, run in a thread) says when it serves,
    ``live(ctx, timeout)`` whether it still does (the supervisor's liveness probe)."""

    def __init__(self, name: str, args: Callable[[Any], list[str]],
                 ready: Callable[[Any], bool] | None = None, ready_timeout: float = 60.0,
                 stop_grace: float = 15.0, live: Callable[[Any, float], bool] | None = None) -> None:
        self.name = name
        self._args = args
        self._ready = ready
        # ``live(ctx, timeout)`` (blocking, run in a thread): the supervisor's liveness probe
        self.live = live
        self._ready_timeout = ready_timeout
        self._stop_grace = stop_grace
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        logs = ctx.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{self.name}.log", "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "controlplane", *self._args(ctx), stdout=out, stderr=out,
                stdin=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent(),
                env={**os.environ, "CONTROLPLANE_LOG_FORMAT": os.environ.get("CONTROLPLANE_LOG_FORMAT", "json")},
            )
        if self._ready is None or not wait_ready:
            return
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise StartupExit(self.proc.returncode,
                                  f"{self.name} exited with {self.proc.returncode}; see {logs / self.name}.log")
            if await asyncio.to_thread(self._ready, ctx):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {self._ready_timeout}s")

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), self._stop_grace)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None


class EtcdRunnable:
    """The embedded etcd (data under ``DIR/etcd``); restarts keep its ports, so the apiserver's
    ``--etcd-endpoints`` stays valid. ``proc``: a member prepared by ``up`` (its name, ports,
    advertised address, initial-cluster flags when it joins a cluster); ``ready_timeout``: how
    long a first start may wait for health (a member of a cluster needs its quorum)."""

    name = "etcd"

    def __init__(self, tls: EtcdTLS | None = None, proc: EtcdProcess | None = None,
                 ready_timeout: float = 15.0) -> None:
        self.tls = tls
        self.proc = proc
        self.ready_timeout = ready_timeout

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        if self.proc is None:
            # metrics on a plain loopback port as kubeadm sets etcd up (client URLs want etcd's CA)
            self.proc = EtcdProcess(data_dir=ctx.data_dir / "etcd", tls=self.tls, tied_to_parent=True,
                                    metrics_port=free_port())
            ctx.extra["etcd_metrics"] = self.proc.metrics_url
        if wait_ready:
            await self.proc.start(self.ready_timeout)
        else:
            self.proc.spawn()
        if not ctx.etcd_endpoints:
            ctx.etcd_endpoints = [self.proc.local_endpoint]

    async def wait(self) -> int:
        assert self.proc is not None and self.proc.proc is not None
        return await wait_pid(self.proc.proc)

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)

    def pid(self) -> int | None:
        p = self.proc.proc if self.proc is not None else None
        return p.pid if p is not None and p.poll() is None else None
