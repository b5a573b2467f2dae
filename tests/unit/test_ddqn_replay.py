"""n-step returns of the DDQN replay buffer, including episode ends."""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.ddqn.replay import Replay


def _filled(rewards: list[float], dones: list[bool]) -> Replay:
    buf = Replay(capacity=64, k=2, n_features=3, seed=0)
    for i, (r, d) in enumerate(zip(rewards, dones)):
        buf.push(np.full((2, 3), i, np.float32), r, d)
    return buf


@pytest.mark.parametrize("n,gamma", [(1, 0.9), (3, 0.5), (4, 1.0)])
def test_nstep_return_and_bootstrap(n: int, gamma: float) -> None:
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    dones = [False, False, False, True, False, False, False, False]
    buf = _filled(rewards, dones)
    b = buf.sample(256, n, gamma)
    assert len(b.ret) > 0
    for ret, disc, x, xn in zip(b.ret, b.disc, b.x, b.x_next):
        t = int(x[0, 0])
        exp, alive = 0.0, True
        for j in range(n):
            exp += gamma ** j * rewards[t + j]
            if dones[t + j]:
                alive = False
                break
        assert ret == pytest.approx(exp)
        assert disc == pytest.approx(gamma ** n if alive else 0.0)
        if alive:
            assert int(xn[0, 0]) == t + n
        assert t + n <= len(rewards) - 1 or not alive  # incomplete windows are never sampled


def test_add_reward_credits_last_step() -> None:
    buf = _filled([0.0, 0.0], [False, False])
    buf.add_reward(-2.5)
    assert buf.r[1] == pytest.approx(-2.5) and buf.r[0] == 0.0
