"""Supervision for ``controlplane up``: every component is a child process that is restarted
with backoff when it exits, and none outlives ``up``.

``Supervisor.start(runnables)`` starts the components in order (each ``start`` returns once the
component is ready; a failure here stops ``up``: nothing half-started is left serving), then
one task per component waits for its exit and restarts it: the first restart at once, later
ones on ``machinery.backoff.RestartBackoff`` (1 s doubling to 30 s, reset after 60 s up). Each
restart is logged with its cause (``exit status N`` / ``signal SIGKILL``) and counted in
``controlplane_component_restarts_total{component, cause}``. A restarted component is not
waited on for readiness (its dependencies may be down: the apiserver's ``/readyz`` fails while
etcd is); its own health endpoints say when it serves again.

Orphans: every child is started with ``PR_SET_PDEATHSIG`` = SIGKILL (``procutil.die_with_parent``),
so a SIGKILLed ``up`` takes etcd, the registry and the components with it, and its pid is
recorded under ``DATA_DIR/run/<name>.pid`` (``procutil.PidFiles``): the next ``up`` or
``controlplane down`` on the same data dir stops whatever is still recorded as running. Node
containers are not children of ``up`` (each has its ``conmon`` monitor): they keep running
while ``up`` or the agent is down and the agent re-adopts them.

Neighbours: ``cmd/up.py`` (which components, in which order), ``cmd/down.py`` (stops an
instance), ``procutil`` (pidfiles, parent-death signal).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from prometheus_client import Counter, Gauge

from controlplane.etcd_process import EtcdProcess
from controlplane.images.registry import LocalRegistry
from controlplane.log import get_logger
from controlplane.machinery.backoff import RestartBackoff
from controlplane.procutil import PidFiles, die_with_parent

log = get_logger(__name__)

RESTARTS = Counter("controlplane_component_restarts_total",
                   "Restarts of a component by `controlplane up` after it exited, by cause", ["component", "cause"])
UP = Gauge("controlplane_component_up", "1 while the supervised component's process runs", ["component"])


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
    ``DIR/logs/<name>.log``; ``ready(ctx)`` (blocking, run in a thread) says when it serves."""

    def __init__(self, name: str, args: Callable[[Any], list[str]],
                 ready: Callable[[Any], bool] | None = None, ready_timeout: float = 60.0,
                 stop_grace: float = 15.0) -> None:
        self.name = name
        self._args = args
        self._ready = ready
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
                env={**os.environ, "CONTROLPLANE_LOG_FORMAT": os.environ.get("CONTROLPLANE_LOG_FORMAT", "json"),
                     "CONTROLPLANE_AGENT_TOKEN_FILE": str(ctx.agent_token_file)},
            )
        if self._ready is None or not wait_ready:
            return
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {logs / self.name}.log")
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
    ``--etcd-endpoints`` stays valid."""

    name = "etcd"

    def __init__(self) -> None:
        self.proc: EtcdProcess | None = None

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        if self.proc is None:
            self.proc = EtcdProcess(data_dir=ctx.data_dir / "etcd", tied_to_parent=True)
        if wait_ready:
            await self.proc.start()
        else:
            self.proc.spawn()
        ctx.etcd_endpoints = [self.proc.endpoint]

    async def wait(self) -> int:
        assert self.proc is not None and self.proc.proc is not None
        return await wait_pid(self.proc.proc)

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)

    def pid(self) -> int | None:
        p = self.proc.proc if self.proc is not None else None
        return p.pid if p is not None and p.poll() is None else None


class RegistryRunnable:
    """The seeded local OCI registry under ``DIR/registry``; puts its URL in
    ``ctx.extra["registry_mirror"]`` for the agent's ``--registry-mirror`` (a restart keeps the
    port and the stored images)."""

    name = "registry"

    def __init__(self) -> None:
        self.reg: LocalRegistry | None = None

    async def start(self, ctx: Any, wait_ready: bool = True) -> None:
        first = self.reg is None
        if self.reg is None:
            self.reg = LocalRegistry(ctx.data_dir / "registry", tied_to_parent=True)
        self.reg.spawn()
        if wait_ready:
            await asyncio.to_thread(self.reg.wait_serving, first)
        ctx.extra["registry_mirror"] = self.reg.url

    async def wait(self) -> int:
        assert self.reg is not None and self.reg.proc is not None
        return await wait_pid(self.reg.proc)

    async def stop(self) -> None:
        if self.reg is not None:
            await asyncio.to_thread(self.reg.stop)

    def pid(self) -> int | None:
        p = self.reg.proc if self.reg is not None else None
        return p.pid if p is not None and p.poll() is None else None


@dataclass
class _Slot:
    runnable: Runnable
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    started_at: float = 0.0
    restarts: int = 0
    running: bool = False
    task: asyncio.Task | None = None


class Supervisor:
    """Starts components in order, restarts them when they exit, stops them in reverse."""

    def __init__(self, ctx: Any, pidfiles: PidFiles,
                 backoff: Callable[[], RestartBackoff] = RestartBackoff) -> None:
        self.ctx = ctx
        self.stop_event = asyncio.Event()  # set by stop_all: no more restarts
        self.pidfiles = pidfiles
        self._backoff = backoff
        self.slots: list[_Slot] = []

    def running(self, name: str) -> bool:
        return any(s.running for s in self.slots if s.runnable.name == name)

    def health_check(self, name: str) -> Callable[[], str | None]:
        """For ``up``'s own /readyz: fails while the component is not running."""
        def check() -> str | None:
            for s in self.slots:
                if s.runnable.name == name:
                    return None if s.running else f"{name} is not running (restarts: {s.restarts})"
            return f"{name} not started"
        return check

    async def start(self, r: Runnable, on_started: Callable[[Runnable], None] | None = None) -> None:
        """Start one component (waiting until it is ready) and supervise it from then on."""
        slot = _Slot(r, self._backoff())
        self.slots.append(slot)
        await r.start(self.ctx)
        self._started(slot)
        if on_started is not None:
            on_started(r)
        slot.task = asyncio.ensure_future(self._supervise(slot))

    def _started(self, slot: _Slot) -> None:
        slot.started_at = time.monotonic()
        slot.running = True
        UP.labels(slot.runnable.name).set(1)
        pid = slot.runnable.pid()
        if pid is not None:
            self.pidfiles.record(slot.runnable.name, pid)

    async def _supervise(self, slot: _Slot) -> None:
        r = slot.runnable
        while not self.stop_event.is_set():
            rc = await r.wait()
            slot.running = False
            UP.labels(r.name).set(0)
            self.pidfiles.forget(r.name)
            if self.stop_event.is_set():
                return
            cause = describe_exit(rc)
            ran = time.monotonic() - slot.started_at
            delay = slot.backoff.next_delay(ran)
            slot.restarts += 1
            RESTARTS.labels(r.name, cause).inc()
            log.error("component exited; restarting", component=r.name, cause=cause, ran_for=round(ran, 1),
                      restart_in=delay, restarts=slot.restarts)
            while not self.stop_event.is_set():
                if delay and await _stopped_within(self.stop_event, delay):
                    return
                try:
                    await r.start(self.ctx, wait_ready=False)
                except Exception as e:  # noqa: BLE001 - a failed start is one more failure to back off from
                    delay = slot.backoff.next_delay(0.0)
                    log.error("component restart failed", component=r.name, error=str(e), restart_in=delay)
                    continue
                self._started(slot)
                log.info("component restarted", component=r.name, pid=r.pid(), restarts=slot.restarts)
                break

    async def stop_all(self) -> None:
        """Stop supervising, then stop every component in reverse start order."""
        self.stop_event.set()
        for slot in reversed(self.slots):
            try:
                await slot.runnable.stop()
                log.info("component stopped", component=slot.runnable.name)
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                log.warning("component stop failed", component=slot.runnable.name, error=str(e))
            slot.running = False
            self.pidfiles.forget(slot.runnable.name)
        tasks = [s.task for s in self.slots if s.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False


def run_dir(data_dir: Path) -> Path:
    """Where ``up`` keeps its lock and the pidfiles of its children."""
    return data_dir / "run"
