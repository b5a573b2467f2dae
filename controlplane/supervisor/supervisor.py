"""``Supervisor``: starts ``controlplane up``'s components in order, restarts each one that
exits with backoff, and stops them in reverse.

``start(runnable)`` starts one component and returns once it is ready (a failure here stops
``up``: nothing half-started is left serving; only a process killed by a signal during
start-up, a crash rather than a refusal, is started again, at most ``START_ATTEMPTS`` times in
all, on the same backoff); from then on a task waits for its exit and
restarts it: the first restart at once, later ones on ``machinery.backoff.RestartBackoff`` (1 s
doubling to 30 s, reset after 60 s up). Each restart is logged with its cause (``exit status
N`` / ``signal SIGKILL``) and counted in ``controlplane_component_restarts_total{component,
cause}``; ``controlplane_component_up{component}`` is 1 while the process runs. A restarted
component is not waited on for readiness (its dependencies may be down: the apiserver's
``/readyz`` fails while etcd does); its own health endpoints say when it serves again.

Liveness (``LivenessProbe``, the kubelet's probe of a static pod, with kubeadm's leniency): a
component that has a ``live`` check (its ``/livez``) is probed every ``period`` seconds from
``initial_delay`` after each start; after ``failure_threshold`` failures in a row (no answer
within ``timeout``, or not 200: a stalled event loop, a lost leader Lease) the supervisor
SIGKILLs it and the restart is counted with the cause ``liveness probe failed``. So a hung
component, one that never exits, comes back like a crashed one.

Orphans: each child's pid and start time are recorded under ``DATA_DIR/run/<name>.pid``
(``procutil.PidFiles``): the next ``up`` or ``controlplane down`` on the same data dir stops
whatever is still recorded as running. Node containers are not children of ``up`` (each has
its own ``conmon``): they keep running while ``up`` or the agent is down.

Neighbours: ``process`` (the runnables), ``cmd/up.py``, ``cmd/down.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prometheus_client import Counter, Gauge

from controlplane.log import get_logger
from controlplane.machinery.backoff import RestartBackoff
from controlplane.procutil import PidFiles
from controlplane.supervisor.process import Runnable, StartupExit, describe_exit

log = get_logger(__name__)

RESTARTS = Counter("controlplane_component_restarts_total",
                   "Restarts of a component by `controlplane up` after it exited, by cause", ["component", "cause"])
UP = Gauge("controlplane_component_up", "1 while the supervised component's process runs", ["component"])


START_ATTEMPTS = 3  # starts of a component that crashes (a signal) before it is ready
LIVENESS_CAUSE = "liveness probe failed"


@dataclass(frozen=True)
class LivenessProbe:
    """How components are probed (kubeadm's static pods: 10 s period, 15 s timeout, 8
    failures; a little quicker here, still about a minute of failing before a kill)."""

    period: float = 10.0
    timeout: float = 5.0
    failure_threshold: int = 6
    initial_delay: float = 10.0


@dataclass
class _Slot:
    runnable: Runnable
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    started_at: float = 0.0
    restarts: int = 0
    running: bool = False
    task: asyncio.Task | None = None
    probe: asyncio.Task | None = None
    kill_cause: str | None = None  # set when the supervisor itself killed the process


class Supervisor:
    """Starts components in order, restarts them when they exit, stops them in reverse."""

    def __init__(self, ctx: Any, pidfiles: PidFiles,
                 backoff: Callable[[], RestartBackoff] = RestartBackoff,
                 liveness: LivenessProbe | None = LivenessProbe()) -> None:
        self.ctx = ctx
        self.stop_event = asyncio.Event()  # set by stop_all: no more restarts
        self.pidfiles = pidfiles
        self._backoff = backoff
        self.liveness = liveness  # None: no probing
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
        attempt = 1
        while True:
            try:
                await r.start(self.ctx)
                break
            except StartupExit as e:
                # an exit status is the component refusing (bad flags, port taken): up fails;
                # a signal is a crash (seen once: SIGABRT in gRPC's poller at start): again
                if e.returncode >= 0 or attempt >= START_ATTEMPTS or self.stop_event.is_set():
                    raise
                delay = slot.backoff.next_delay(0.0)
                slot.restarts += 1
                RESTARTS.labels(r.name, describe_exit(e.returncode)).inc()
                log.error("component crashed during start-up; starting it again", component=r.name,
                          cause=describe_exit(e.returncode), attempt=attempt, restart_in=delay)
                attempt += 1
                if await _stopped_within(self.stop_event, delay):
                    raise
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
        if slot.probe is not None:
            slot.probe.cancel()
            slot.probe = None
        live = getattr(slot.runnable, "live", None)
        if self.liveness is not None and live is not None and pid is not None:
            slot.probe = asyncio.ensure_future(self._probe(slot, live, pid, self.liveness))

    async def _probe(self, slot: _Slot, live: Callable[[Any, float], bool], pid: int, p: LivenessProbe) -> None:
        """Probe one process (``pid``) until it ends; SIGKILL it after ``failure_threshold``
        failures in a row."""
        name = slot.runnable.name
        failures = 0
        if await _stopped_within(self.stop_event, p.initial_delay):
            return
        while slot.running and slot.runnable.pid() == pid:
            try:
                ok = await asyncio.wait_for(asyncio.to_thread(live, self.ctx, p.timeout), p.timeout + 1.0)
            except asyncio.TimeoutError:
                ok = False
            except Exception as e:  # noqa: BLE001 - a probe that raises is a failed probe
                log.warning("liveness probe error", component=name, error=repr(e))
                ok = False
            if not (slot.running and slot.runnable.pid() == pid) or self.stop_event.is_set():
                return
            failures = 0 if ok else failures + 1
            if failures:
                log.warning("liveness probe failed", component=name, pid=pid, failures=failures,
                            threshold=p.failure_threshold)
            if failures >= p.failure_threshold:
                log.error("component failed its liveness probe; killing it to restart it", component=name, pid=pid,
                          failures=failures)
                slot.kill_cause = LIVENESS_CAUSE
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            if await _stopped_within(self.stop_event, p.period):
                return

    async def _supervise(self, slot: _Slot) -> None:
        r = slot.runnable
        while not self.stop_event.is_set():
            rc = await r.wait()
            slot.running = False
            UP.labels(r.name).set(0)
            self.pidfiles.forget(r.name)
            if self.stop_event.is_set():
                return
            cause = slot.kill_cause or describe_exit(rc)
            slot.kill_cause = None
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
        tasks = [t for s in self.slots for t in (s.task, s.probe) if t is not None]
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
