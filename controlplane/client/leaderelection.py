"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection.

A candidate tries every ``retry_period`` to acquire or renew the Lease with an optimistic
update (the PUT carries the ``resourceVersion`` it read, so two candidates cannot both win).
Another holder's lease counts as expired only after ``lease_duration`` has passed on *our*
clock since we last saw its record change (no clock-skew trust). A leader that fails to renew
within ``renew_deadline`` stops leading; ``manager.Manager`` then stops its controllers.
On a clean stop the leader releases the Lease so a standby takes over at once.
Defaults match kube-controller-manager: lease 15 s, renew deadline 10 s, retry 2 s
(``controlplane up`` passes shorter ones: docs/reliability.md, "Leader election").

A leader attempts a renewal every ``retry_period`` counted from the start of the previous
attempt, so one that overran (a request stuck behind a dead etcd leader) is followed at once
by the next, as client-go's ``PollImmediateUntil`` ticker does; each attempt is cut at half the
renew deadline and at the deadline itself (client-go's renew context), so a single stuck
request cannot use up the deadline and the leader always notices a lost lease within it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from controlplane.client import resources
from controlplane.client.faults import count_transient
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.timestamps import micro_time

log = get_logger(__name__)
JITTER_FACTOR = 1.2  # client-go's: renewDeadline must exceed retryPeriod * JitterFactor


@dataclass
class LeaderElectionConfig:
    name: str
    namespace: str = "kube-system"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True


@dataclass
class _Observed:
    record: dict = field(default_factory=dict)
    rv: str | None = None
    at: float = 0.0  # monotonic time we last saw the record change


def holder_expired(observed_at: float, lease_duration: float, now: float) -> bool:
    """Whether another holder's lease may be taken (observed change + duration <= now)."""
    return observed_at + lease_duration <= now


class LeaderElector:
    """``await elector.run(stop_event, on_started_leading)``: campaigns, then calls
    ``on_started_leading(lost_event)`` as a task; ``lost_event`` is set when leadership is lost
    or ``stop_event`` is set. ``run`` returns after leadership ends."""

    def __init__(self, client: RestClient, cfg: LeaderElectionConfig,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if cfg.renew_deadline >= cfg.lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        if cfg.renew_deadline <= JITTER_FACTOR * cfg.retry_period:
            raise ValueError("renew_deadline must be longer than retry_period * 1.2")
        self.client = client
        self.cfg = cfg
        self.monotonic = monotonic
        self._observed = _Observed()
        self.is_leader = False
        self.last_renew = 0.0  # monotonic time of the last successful acquire/renew (health check)
        self.transitions_seen = 0

    async def try_acquire_or_renew(self) -> bool:
        cfg = self.cfg
        now_wall = micro_time()
        mine = {"holderIdentity": cfg.identity, "leaseDurationSeconds": int(round(cfg.lease_duration)),
                "acquireTime": now_wall, "renewTime": now_wall, "leaseTransitions": 0}
        try:
            lease = await self.client.get(resources.LEASES, cfg.name, cfg.namespace)
        except ApiStatusError as e:
            if not e.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": mine}
            try:
                created = await self.client.create(resources.LEASES, body, cfg.namespace)
            except ApiStatusError as ce:
                if ce.code == 409:
                    return False
                raise
            self._observe(created)
            return True
        spec = lease.get("spec") or {}
        rec_key = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
        obs_key = (self._observed.record.get("holderIdentity"), self._observed.record.get("renewTime"),
                   self._observed.record.get("acquireTime"))
        if rec_key != obs_key or self._observed.rv is None:
            self._observe(lease)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and not holder_expired(self._observed.at, duration, self.monotonic()):
            return False
        if holder == cfg.identity:
            mine["acquireTime"] = spec.get("acquireTime") or now_wall
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0)
        else:
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = {**spec, **mine}
        try:
            updated = await self.client.update(resources.LEASES, lease)
        except ApiStatusError as e:
            if e.code == 409:
                return False
            raise
        self._observe(updated)
        return True

    def _observe(self, lease: dict) -> None:
        self._observed = _Observed(dict(lease.get("spec") or {}), (lease.get("metadata") or {}).get("resourceVersion"),
                                   self.monotonic())

    async def _attempt(self, timeout: float) -> bool:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the inner result when the
        # caller is cancelled in the step the request completes, and the cancellation is lost
        try:
            async with asyncio.timeout(max(timeout, 0.001)):
                return await self.try_acquire_or_renew()
        except ApiStatusError as e:
            count_transient(f"leaderelection/{self.cfg.name}", e)
            log.warning("lease update failed", lease=self.cfg.name, error=str(e))
            return False
        except asyncio.TimeoutError as e:
            count_transient(f"leaderelection/{self.cfg.name}", e)
            log.warning("lease update failed", lease=self.cfg.name, error=f"timed out after {timeout:.1f}s")
            return False

    async def run(self, stop_event: asyncio.Event,
                  on_started_leading: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        cfg = self.cfg
        while not stop_event.is_set():
            if await self._attempt(cfg.renew_deadline):  # kube-controller-manager: client timeout = renew deadline
                break
            await _wait(stop_event, cfg.retry_period)
        if stop_event.is_set():
            return
        self.last_renew = last_renew = self.monotonic()
        self.is_leader = True
        log.info("became leader", lease=cfg.name, identity=cfg.identity)
        lost = asyncio.Event()
        work = asyncio.create_task(on_started_leading(lost))
        started = last_renew
        try:
            while not stop_event.is_set() and not work.done():
                await _wait(stop_event, max(0.0, started + cfg.retry_period - self.monotonic()))
                if stop_event.is_set():
                    break
                started = self.monotonic()
                left = last_renew + cfg.renew_deadline - started
                if left > 0 and await self._attempt(min(left, cfg.renew_deadline / 2)):
                    self.last_renew = last_renew = self.monotonic()
                elif self.monotonic() - last_renew >= cfg.renew_deadline:
                    log.error("leadership lost: lease not renewed within the deadline", lease=cfg.name)
                    break
        finally:
            self.is_leader = False
            lost.set()
            try:
                await asyncio.wait_for(asyncio.shield(work), 30)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down regardless
                work.cancel()
            if stop_event.is_set() and cfg.release_on_cancel:
                await self._release()

    async def _release(self) -> None:
        try:
            lease = await self.client.get(resources.LEASES, self.cfg.name, self.cfg.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.cfg.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time()}
            await self.client.update(resources.LEASES, lease)
            log.info("released lease", lease=self.cfg.name)
        except ApiStatusError as e:
            log.warning("lease release failed", error=str(e))


async def _wait(stop_event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop_event.wait()
    except TimeoutError:
        pass
