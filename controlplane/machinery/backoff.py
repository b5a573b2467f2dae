"""Restart back-off for supervised processes (``controlplane up``'s components, the apiserver's
workers): the first restart is immediate, later ones wait ``initial`` doubling up to ``cap``,
and a process that ran ``reset_after`` seconds starts the schedule over (the shape of the
kubelet's CrashLoopBackOff and of systemd's ``RestartSec`` with ``RestartSteps``, with
shorter times: a control-plane component should be back within seconds).

Pure: the caller passes how long the process ran; nothing here reads a clock or sleeps.
Used by ``controlplane.supervisor`` and the apiserver's worker supervisor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class RestartBackoff:
    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0
    jitter: float = 0.0  # up to this fraction added at random (several restarting processes spread out)
    failures: int = 0  # restarts since the last reset

    def next_delay(self, ran_for: float) -> float:
        """The delay before the next start of a process that exited after ``ran_for`` seconds."""
        if ran_for >= self.reset_after:
            self.failures = 0
        delay = 0.0 if self.failures == 0 else min(self.cap, self.initial * 2 ** (self.failures - 1))
        self.failures += 1
        if delay and self.jitter:
            delay *= 1 + random.random() * self.jitter
        return delay
