"""Sessions: the only thing the dashboard keeps about a user, and only in memory.

A session is created at sign-in and found again by an opaque random cookie (256 bits,
``HttpOnly``, ``SameSite=Strict``, ``Secure`` when served over TLS). It holds the user's
credentials and their ``Upstream`` (connection pool), nothing else; it ends at sign-out, after
``idle_timeout`` without a request, after ``max_age`` in any case, or when the dashboard
stops. Nothing is written to disk: a restarted dashboard asks everyone to sign in again.
Open WebSockets (watch streams, exec terminals) register with their session and are closed
when it ends.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from controlplane.dashboard.credentials import Credentials
from controlplane.dashboard.upstream import Identity, Upstream
from controlplane.log import get_logger

log = get_logger(__name__)
COOKIE = "cp_dashboard_session"


@dataclass
class Session:
    id: str
    creds: Credentials
    upstream: Upstream
    identity: Identity
    created: float
    last_used: float
    closers: set[Callable[[], Any]] = field(default_factory=set)  # open sockets' close callbacks


class SessionStore:
    def __init__(self, *, idle_timeout: float = 1800.0, max_age: float = 12 * 3600.0, max_sessions: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(self, creds: Credentials, upstream: Upstream, identity: Identity) -> Session:
        await self.sweep()
        while len(self._sessions) >= self.max_sessions:  # the least recently used goes first
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            await self.drop(oldest.id)
        now = self.clock()
        s = Session(id=secrets.token_urlsafe(32), creds=creds, upstream=upstream, identity=identity,
                    created=now, last_used=now)
        self._sessions[s.id] = s
        return s

    def expired(self, s: Session, now: float) -> bool:
        if now - s.created > self.max_age:
            return True
        # a session with open sockets (watches, a terminal) is in use even without new requests
        return not s.closers and now - s.last_used > self.idle_timeout

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        if not sid:
            return None
        s = self._sessions.get(sid)
        if s is None:
            return None
        now = self.clock()
        if self.expired(s, now):
            return None  # the sweeper closes it
        if touch:
            s.last_used = now
        return s

    async def drop(self, sid: str) -> None:
        s = self._sessions.pop(sid, None)
        if s is None:
            return
        for close in list(s.closers):
            try:
                close()
            except Exception as e:  # noqa: BLE001 - a socket already gone
                log.debug("closing a session socket failed", error=str(e))
        await s.upstream.close()

    async def sweep(self) -> int:
        now = self.clock()
        gone = [sid for sid, s in self._sessions.items() if self.expired(s, now)]
        for sid in gone:
            await self.drop(sid)
        return len(gone)

    async def sweep_forever(self, stop: asyncio.Event, every: float = 30.0) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                n = await self.sweep()
                if n:
                    log.info("sessions expired", count=n)

    def attach(self, s: Session, close: Callable[[], Any]) -> None:
        """A socket of the session opened: it keeps the session in use until it closes."""
        s.closers.add(close)

    def detach(self, s: Session, close: Callable[[], Any]) -> None:
        s.closers.discard(close)
        s.last_used = self.clock()  # idle time counts from the last socket's end

    async def close_all(self) -> None:
        for sid in list(self._sessions):
            await self.drop(sid)
