"""Sockets inside a network namespace we own: ``socket_in_netns`` creates one there (setns on
the calling thread, then back); the socket stays in that namespace wherever it is used. The
agent's probes and port forwarding dial pods with it (re-exported by
``controlplane.runtime.network``); the service proxy listens in the node's namespace with it
(its health-check ports). Blocking: call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

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
