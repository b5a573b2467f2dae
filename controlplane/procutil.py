"""Stopping child processes the same way everywhere (etcd, fixtures' component processes):
SIGTERM, wait for the grace period, then SIGKILL and reap."""

from __future__ import annotations

import signal
import subprocess


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
