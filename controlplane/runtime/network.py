"""Sockets inside a pod's network namespace (probes, port checks): ``socket_in_netns``.

The pod network itself (node namespace, bridge, CNI plugins, routes) is
``controlplane.network``; ``runc.py`` asks it for a pod's namespace and address.
Neighbours: the agent's prober.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from controlplane.network.hostcmd import NETNS_DIR  # noqa: F401 - re-exported

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def socket_in_netns(netns_path: str, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside ``netns_path`` (setns on this thread, then back). Blocking-free:
    call it via ``asyncio.to_thread``; the socket stays in that namespace wherever it is used."""
    with _setns_lock:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        target = os.open(netns_path, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns_path}")
            try:
                return socket.socket(family, type_)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)
