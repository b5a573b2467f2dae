"""Reaping the orphans a child subreaper inherits.

The runc runtime makes its process a child subreaper (``PR_SET_CHILD_SUBREAPER``) so the
conmon monitors it starts stay its children. Every other process orphaned below it is
re-parented to it too, and asyncio (or ``subprocess``) waits only for the processes it started.
One kind matters a lot: a process ``runc exec`` started in a container (a probe's command, a
``kubectl exec``) whose ``runc exec`` was killed (the probe timed out or was cancelled). It
lives in the container's PID namespace; when the container's init dies, the kernel kills it,
and the init does not finish exiting until that zombie is reaped (``zap_pid_ns_processes``
waits for every task of the namespace, including zombies whose parent is outside it). Left
unreaped, the container looks alive to runc for as long as its subreaper lives: conmon does not
exit, the stop falls back to killing conmon, and ``runc delete`` fails with "container init
still running", leaving runc's state behind (a CI run's teardown found exactly that).

``zombie_children`` lists this process's zombie children from ``/proc`` (their ``NSpid`` says
whether they lived in a nested PID namespace); ``Reaper.sweep`` reaps those at once, and zombies
of our own namespace only after they stayed zombies for ``host_age`` seconds (asyncio's child
watcher reaps its own children within milliseconds; ``None`` never reaps them, for a process
that keeps ``subprocess.Popen`` children it polls later). Hand-written: no library does this
selective reaping (``waitpid(-1)`` would steal asyncio's children's exit statuses).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Zombie:
    pid: int
    nested: bool  # it lived in a PID namespace below ours (a container's process)


def parse_status(text: str) -> tuple[str, int]:
    """``/proc/<pid>/status`` → (state letter, PID namespace depth from ``NSpid``; 1 without one)."""
    state, depth = "", 1
    for line in text.splitlines():
        if line.startswith("State:"):
            parts = line.split()
            state = parts[1] if len(parts) > 1 else ""
        elif line.startswith("NSpid:"):
            depth = max(1, len(line.split()) - 1)
    return state, depth


def children(pid: int | str = "self") -> set[int]:
    """The children of every thread of process ``pid`` (``/proc/<pid>/task/*/children``)."""
    out: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out.update(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def zombie_children() -> list[Zombie]:
    out = []
    for pid in sorted(children()):
        try:
            with open(f"/proc/{pid}/status") as f:
                state, depth = parse_status(f.read())
        except OSError:
            continue
        if state == "Z":
            out.append(Zombie(pid, depth > 1))
    return out


def to_reap(zombies: list[Zombie], seen: dict[int, float], now: float, host_age: float | None) -> list[int]:
    """Which zombies to reap now, updating ``seen`` (pid → when first seen a zombie; pids no
    longer zombies are forgotten): nested ones at once, ours once ``host_age`` old."""
    current = {z.pid for z in zombies}
    for pid in [p for p in seen if p not in current]:
        del seen[pid]
    out = []
    for z in zombies:
        first = seen.setdefault(z.pid, now)
        if z.nested or (host_age is not None and now - first >= host_age):
            out.append(z.pid)
    return out


@dataclass
class Reaper:
    host_age: float | None = 5.0
    seen: dict[int, float] = field(default_factory=dict)

    def sweep(self, now: float) -> list[tuple[int, int]]:
        """Reap what ``to_reap`` picks; returns (pid, wait status) of each reaped (blocking
        /proc reads: run in a thread)."""
        reaped = []
        for pid in to_reap(zombie_children(), self.seen, now, self.host_age):
            self.seen.pop(pid, None)
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped meanwhile by whoever waited for it
                continue
            if got == pid:
                reaped.append((pid, status))
        return reaped
