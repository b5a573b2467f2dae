"""Child processes handled the same way everywhere (etcd, the registry, ``controlplane up``'s
components, the fixtures' processes): stopping (SIGTERM, the grace period, then SIGKILL and
reap); tying a child's life to its parent (``die_with_parent``: ``PR_SET_PDEATHSIG``, so a
SIGKILLed ``up`` leaves no etcd, registry or component behind); pidfiles under a data dir so
the next owner of that dir reclaims what a killed one left (``PidFiles``); plus the readiness
poll and the CPU-time reading the benchmarks share."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child receive ``sig`` when the process that spawned it
    dies (``prctl(PR_SET_PDEATHSIG)``; kept across ``execve``, cleared in the child's own
    children). The signal follows the death of the *thread* that forked, so spawn from a
    thread that lives as long as the owner (the event loop's). If the parent is already gone
    when the child starts, the child kills itself."""
    parent = os.getpid()

    def setup() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), int(sig))

    return setup


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22);
    with the pid it identifies a process even after pids wrap. None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # a zombie: exited, not reaped
        return None
    return int(fields[19])


class PidFiles:
    """``DIR/<name>.pid`` holding ``<pid> <start time>`` for each live child of an owner
    (``controlplane up``); ``reclaim()`` (run by the next owner, or ``controlplane down``)
    stops every recorded process that still runs (same pid *and* start time, so a reused pid
    is never signalled) and removes the files."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def record(self, name: str, pid: int) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.pid.tmp"
        tmp.write_text(f"{pid} {start_time(pid) or 0}\n")
        tmp.replace(self.path(name))

    def forget(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def live(self) -> dict[str, int]:
        """name -> pid of every recorded process that still runs (identity checked)."""
        out: dict[str, int] = {}
        for f in sorted(self.dir.glob("*.pid")) if self.dir.is_dir() else []:
            try:
                pid_s, st_s = f.read_text().split()[:2]
                pid, st = int(pid_s), int(st_s)
            except (OSError, ValueError):
                continue
            if st and start_time(pid) == st:
                out[f.stem] = pid
        return out

    def reclaim(self, grace: float = 10.0) -> dict[str, int]:
        """SIGTERM every recorded live process, SIGKILL what is left after ``grace``; remove
        the pidfiles. Returns what was found running (name -> pid)."""
        found = self.live()
        for pid in found.values():
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(start_time(p) is not None for p in found.values()):
            time.sleep(0.05)
        for pid in found.values():
            if start_time(pid) is not None:
                _signal(pid, signal.SIGKILL)
        for f in self.dir.glob("*.pid") if self.dir.is_dir() else []:
            f.unlink(missing_ok=True)
        return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM ``proc``, SIGKILL it if it is still alive after ``timeout`` s; always reaps it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0, context: Any = None) -> None:
    """Poll ``url + "/readyz"`` until it answers 200; fail early if ``proc`` exits. ``context``:
    the ``ssl.SSLContext`` for an https ``url``."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (this process when None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants (from ``/proc/<pid>/task/*/children``), e.g. an
    apiserver supervisor and its workers."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except OSError:  # exited meanwhile
            pass
    return total


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its live descendants, in MiB."""
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024
