"""Replay buffer of decisions, with n-step returns for Double DQN.

Why: a decision's state is a variable-size set of feasible nodes. Storing all of them for
every step would cost megabytes per transition, so each step keeps a fixed-size candidate set
of ``k`` feature rows: slot 0 is the node that was chosen, the others are the best-scored
alternatives at that moment. Transition t's next state is step t+n's candidate set, so each
set is stored once (a ring of steps, not of (s, a, s') triples). Episode ends are marked so
n-step sums never run across episodes.

Neighbours: ``train.py`` (pushes steps from ``env.py``, samples batches for the update).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    x: np.ndarray          # (B, k, F) candidate rows of the state, row 0 the chosen node
    m: np.ndarray          # (B, k) bool, valid candidate rows
    ret: np.ndarray        # (B,) discounted n-step reward sum
    disc: np.ndarray       # (B,) gamma**n, or 0 when the episode ended within n steps
    x_next: np.ndarray     # (B, k, F) candidate rows of the bootstrap state
    m_next: np.ndarray     # (B, k) bool, valid candidate rows


class Replay:
    """Ring buffer of decision steps (candidate rows, reward, episode-end flag)."""

    def __init__(self, capacity: int, k: int, n_features: int, seed: int = 0) -> None:
        self.cap, self.k = capacity, k
        self.x = np.zeros((capacity, k, n_features), np.float16)
        self.m = np.zeros((capacity, k), bool)
        self.r = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, bool)
        self.size = 0
        self.pos = 0
        self.rng = np.random.default_rng(seed)

    def push(self, cand: np.ndarray, reward: float, done: bool) -> None:
        """Add one step: ``cand`` (<= k, F) rows, row 0 the chosen node."""
        n = min(len(cand), self.k)
        self.x[self.pos, :n] = cand[:n]
        self.m[self.pos] = False
        self.m[self.pos, :n] = True
        self.r[self.pos] = reward
        self.done[self.pos] = done
        self.pos = (self.pos + 1) % self.cap
        self.size = min(self.size + 1, self.cap)

    def add_reward(self, extra: float) -> None:
        """Credit ``extra`` to the most recent step (e.g. a later pod failed to fit)."""
        if self.size:
            self.r[(self.pos - 1) % self.cap] += extra

    def mark_done(self) -> None:
        if self.size:
            self.done[(self.pos - 1) % self.cap] = True

    def sample(self, batch: int, n: int, gamma: float) -> Batch:
        """Uniform sample of steps whose n-step window is complete (ended or fully stored)."""
        # valid starting points: at least n steps after them already written, unless done earlier
        newest = (self.pos - 1) % self.cap
        idx = self.rng.integers(0, self.size, size=batch * 2)
        age = (newest - idx) % self.cap          # steps written after idx
        ret = np.zeros(len(idx), np.float32)
        alive = np.ones(len(idx), bool)
        for j in range(n):
            s = (idx + j) % self.cap
            ok = alive & (j <= age)
            ret += np.where(ok, (gamma ** j) * self.r[s], 0.0)
            alive &= ~self.done[s]
        boot = (idx + n) % self.cap
        complete = ~alive | (age >= n)
        idx, ret, alive, boot = idx[complete][:batch], ret[complete][:batch], alive[complete][:batch], boot[complete][:batch]
        return Batch(
            x=self.x[idx].astype(np.float32),
            m=self.m[idx],
            ret=ret,
            disc=np.where(alive, gamma ** n, 0.0).astype(np.float32),
            x_next=self.x[boot].astype(np.float32),
            m_next=self.m[boot],
        )
