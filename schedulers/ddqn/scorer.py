"""Inference side of the DDQN scorer: load the shipped weights once, score nodes in one pass.

Why: the simulator policy and the live scheduler's score plugin both need the same thing:
given the feature rows of every feasible node of a decision, one batched forward pass of the
Q-network's advantage head and FGD-style integer scores (``trunc(100 * sigmoid(A))``; equal
scores are decided by the caller's node rank). Loading is deterministic (pickle-free file,
checked header and sha256, see ``model.py``) and cached per path.

Neighbours: ``policy.py`` (the ``ddqn`` GPU policy), ``model.py`` (file format),
``features.py`` (rows).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from schedulers.ddqn import model as qmodel
from schedulers.ddqn.model import GAIN_COLUMN

DEFAULT_MODEL = Path(__file__).resolve().parent / "ddqn_openb.bin"

_cache: dict[str, "DdqnScorer"] = {}
_lock = threading.Lock()


class DdqnScorer:
    """A loaded Q-network in inference mode."""

    def __init__(self, path: Path | str = DEFAULT_MODEL) -> None:
        self.path = Path(path)
        self.net, self.header = qmodel.load(self.path)
        # one decision is ~1k rows x a few thousand weights: a multi-threaded BLAS only spins
        # (tens of ms on a busy 2-core box), so inference runs single-threaded
        torch.set_num_threads(1)
        lin = [m for m in self.net.residual if isinstance(m, torch.nn.Linear)]
        self._layers = [(m.weight.detach().T.contiguous(), m.bias.detach().clone()) for m in lin]

    def advantages(self, X: np.ndarray) -> np.ndarray:
        """A(s, a) = gain + residual(x) for every row of ``X`` (float32 [K, N_FEATURES]),
        one batched forward pass (numerically the same as ``QNet.advantage``)."""
        h = torch.from_numpy(np.ascontiguousarray(X, np.float32))
        with torch.inference_mode():
            for i, (w, b) in enumerate(self._layers):
                h = torch.addmm(b, h, w)
                if i < len(self._layers) - 1:
                    h = torch.relu_(h)
        return X[:, GAIN_COLUMN] + h[:, 0].numpy()

    def advantages_torch(self, X: np.ndarray) -> np.ndarray:
        """The same through the torch module (used by tests to check the numpy path)."""
        with torch.inference_mode():
            return self.net.advantage(torch.from_numpy(np.ascontiguousarray(X, np.float32))).numpy()

    def scores(self, X: np.ndarray) -> np.ndarray:
        return qmodel.scores(self.advantages(X), X[:, GAIN_COLUMN])

    def scores_and_values(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The integer scores and the value estimates they come from (the advantages A(s, a),
        what a scheduling-decision record shows for DDQN), from one forward pass."""
        adv = self.advantages(X)
        return qmodel.scores(adv, X[:, GAIN_COLUMN]), adv


def get_scorer(path: Path | str | None = None) -> DdqnScorer:
    """The scorer for ``path`` (default: the shipped model), loaded once per process."""
    key = str(Path(path or DEFAULT_MODEL).resolve())
    with _lock:
        sc = _cache.get(key)
        if sc is None:
            sc = _cache[key] = DdqnScorer(key)
        return sc
