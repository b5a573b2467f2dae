"""Network and disk usage counters for the stats a node reports: ``/proc/net/dev`` of a network
namespace (read through its path with ``setns`` on a worker thread, so the pod's namespace is
asked directly, whatever runs in it) and ``du``-style byte and inode counts of a directory tree
(a container's writable layer, a volume, a log directory).

Blocking: call from ``asyncio.to_thread``. Callers: ``runc.py`` (sandbox and container stats)
and the agent's stats provider (node interfaces).
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()


@dataclass(frozen=True)
class NetDev:
    """One interface's cumulative counters (as ``/proc/net/dev`` and cAdvisor name them)."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


def parse_net_dev(text: str) -> dict[str, NetDev]:
    """``/proc/net/dev`` to {interface: counters} (the two header lines skipped)."""
    out: dict[str, NetDev] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        f = rest.split()
        if len(f) < 12:
            continue
        try:
            out[name.strip()] = NetDev(int(f[0]), int(f[1]), int(f[2]), int(f[3]),
                                       int(f[8]), int(f[9]), int(f[10]), int(f[11]))
        except ValueError:
            continue
    return out


def read_netns(netns_path: str) -> dict[str, NetDev]:
    """The interfaces of the network namespace at ``netns_path`` (``{}`` when it is gone).

    The calling thread joins the namespace, reads ``/proc/thread-self/net/dev`` (which shows the
    thread's namespace) and returns to its own; a failure to return raises (the thread must not
    be reused inside the pod's namespace)."""
    try:
        target = os.open(netns_path, os.O_RDONLY)
    except OSError:
        return {}
    with _lock:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                return {}
            try:
                with open("/proc/thread-self/net/dev") as f:
                    return parse_net_dev(f.read())
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the agent's network namespace")
        finally:
            os.close(own)
            os.close(target)


def read_host() -> dict[str, NetDev]:
    """The interfaces of this process's own network namespace."""
    try:
        with open("/proc/thread-self/net/dev") as f:
            return parse_net_dev(f.read())
    except OSError:
        return {}


def default_interface() -> str | None:
    """The interface of the default IPv4 route of this namespace (``/proc/net/route``)."""
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                p = line.split()
                if len(p) > 2 and p[1] == "00000000":
                    return p[0]
    except OSError:
        pass
    return None


def disk_usage(path: str | Path) -> tuple[int, int]:
    """(bytes, inodes) used by the tree at ``path`` as ``du`` counts them (allocated blocks,
    hard links once, not crossing into other file systems); (0, 0) when it does not exist."""
    total = inodes = 0
    seen: set[tuple[int, int]] = set()
    try:
        dev = os.lstat(path).st_dev
    except OSError:
        return 0, 0
    stack = [str(path)]
    while stack:
        d = stack.pop()
        try:
            st = os.lstat(d)
        except OSError:
            continue
        total += st.st_blocks * 512
        inodes += 1
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    s = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if s.st_dev != dev:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                    continue
                if s.st_nlink > 1:
                    key = (s.st_dev, s.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += s.st_blocks * 512
                inodes += 1
    return total, inodes
