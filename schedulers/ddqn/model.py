"""The Q-network and its file format.

Why: one small MLP is shared across nodes: it maps a node's feature row (``features.py``) to
the value of placing the pod there, so a decision is one batched forward pass over all
feasible nodes. The file format is pickle-free and self-checking: a magic line, a JSON header
(format version, feature spec — v1, or v2 with the search columns —, layer sizes, score rule,
training metadata, sha256 of the payload) and the float32 weights. Loading verifies all of it and raises
:class:`ModelFileError` with a readable message on any mismatch or corruption.

Neighbours: ``train.py`` (creates and saves), ``scorer.py`` (loads for inference),
``features.py`` (defines ``FEATURE_SPECS`` / ``N_FEATURES``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from schedulers.ddqn.features import FEATURE_NAMES, FEATURE_SPECS, N_FEATURES

GAIN_COLUMN = FEATURE_NAMES.index("frag_gain")
STATE_COLUMNS = [FEATURE_NAMES.index(n) for n in FEATURE_NAMES if n.startswith("pod_")] + [
    FEATURE_NAMES.index(n) for n in ("cluster_cpu", "cluster_alloc", "feasible_frac")]

MAGIC = b"CONTROLPLANE-DDQN-SCORER\n"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """The model file is missing, corrupt, or was made for other features/format."""


class QNet(nn.Module):
    """Dueling node scorer over a decision's candidate set.

    For candidates ``x`` (B, K, F) with mask ``m``:
    ``Q(s, a) = V(s) + A(s, a) - mean_{a' in cand} A(s, a')`` where
    ``A(s, a) = x[frag_gain] + residual(x)`` is the node-dependent part (the residual MLP's
    last layer starts at zero, so an untrained net ranks nodes exactly like FGD) and ``V``
    reads the pod/cluster columns plus the candidates' mean row. The mean subtraction keeps
    anything state-level out of ``A``, so ranking nodes needs ``A`` alone (see
    :func:`scores` for the integer scores; equal scores go to the node rank).
    """

    def __init__(self, n_in: int = N_FEATURES, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.n_in = n_in
        self.hidden = tuple(hidden)
        layers: list[nn.Module] = []
        prev = n_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        last = nn.Linear(prev, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.residual = nn.Sequential(*layers)
        self.value = nn.Sequential(nn.Linear(len(STATE_COLUMNS) + n_in, 64), nn.ReLU(), nn.Linear(64, 1))
        self.register_buffer("state_cols", torch.tensor(STATE_COLUMNS, dtype=torch.long), persistent=False)

    def advantage(self, x: torch.Tensor) -> torch.Tensor:
        """A for every row (any leading shape)."""
        return x[..., GAIN_COLUMN] + self.residual(x).squeeze(-1)

    def q_all(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Q of every candidate: ``x`` (B, K, F), ``m`` (B, K) bool -> (B, K)."""
        mf = m.to(x.dtype)
        cnt = mf.sum(1).clamp(min=1.0)
        adv = self.advantage(x)
        adv_mean = (adv * mf).sum(1) / cnt
        pooled = (x * mf.unsqueeze(-1)).sum(1) / cnt.unsqueeze(-1)
        v = self.value(torch.cat([x[:, 0].index_select(-1, self.state_cols), pooled], -1)).squeeze(-1)
        return v.unsqueeze(1) + adv - adv_mean.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.advantage(x)


def scores(adv: torch.Tensor | np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Integer node scores: FGD's ``trunc(100 * sigmoid(gain))`` moved by the learned
    residual ``A - gain`` in whole score units, ``trunc(25 * residual)`` (25 = 100 x the
    sigmoid's slope at 0). Residuals under 0.04 GPU change nothing, so an untrained or
    unsure network keeps FGD's ranking and its ties (decided by the node rank)."""
    a = adv.numpy() if isinstance(adv, torch.Tensor) else adv
    g = np.asarray(gain, np.float64)
    base = np.trunc(100.0 / (1.0 + np.exp(-g)))
    return (base + np.trunc(25.0 * (a.astype(np.float64) - g))).astype(np.int64)


def spec_for(n_in: int) -> str:
    """The feature spec of a network with ``n_in`` inputs (v1: 28, v2: 28 + search columns)."""
    for spec, n in FEATURE_SPECS.items():
        if n == n_in:
            return spec
    raise ValueError(f"no feature spec has {n_in} features")


def _payload(net: QNet) -> tuple[bytes, list[dict[str, Any]]]:
    chunks, layout = [], []
    for name, t in net.state_dict().items():
        a = t.detach().cpu().numpy().astype("<f4")
        layout.append({"name": name, "shape": list(a.shape)})
        chunks.append(a.tobytes())
    return b"".join(chunks), layout


def save(net: QNet, path: Path, *, meta: dict[str, Any] | None = None) -> None:
    """Write ``net`` with its header; the file is byte-identical for identical weights."""
    data, layout = _payload(net)
    header = {
        "format_version": FORMAT_VERSION,
        "feature_spec": spec_for(net.n_in),
        "n_in": net.n_in,
        "hidden": list(net.hidden),
        "dtype": "float32-le",
        "tensors": layout,
        "score": "trunc(100*sigmoid(gain)) + trunc(25*(A-gain))",
        "sha256": hashlib.sha256(data).hexdigest(),
        "meta": meta or {},
    }
    line = json.dumps(header, sort_keys=True).encode() + b"\n"
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(MAGIC + line + data)
    tmp.replace(path)


def load(path: Path) -> tuple[QNet, dict[str, Any]]:
    """Read a model file; raise :class:`ModelFileError` on any inconsistency."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read DDQN model file {path}: {e}") from e
    if not raw.startswith(MAGIC):
        raise ModelFileError(f"{path} is not a DDQN scorer file (bad magic)")
    rest = raw[len(MAGIC):]
    nl = rest.find(b"\n")
    try:
        header = json.loads(rest[:nl])
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: corrupt header: {e}") from e
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {header.get('format_version')} != supported {FORMAT_VERSION}")
    spec = header.get("feature_spec")
    if spec not in FEATURE_SPECS:
        raise ModelFileError(f"{path}: feature spec mismatch (file was trained on other features): "
                             f"{spec!r} is none of {sorted(FEATURE_SPECS)!r}")
    if header.get("n_in") != FEATURE_SPECS[spec]:
        raise ModelFileError(f"{path}: n_in {header.get('n_in')!r} does not match its feature spec ({FEATURE_SPECS[spec]})")
    data = rest[nl + 1:]
    if hashlib.sha256(data).hexdigest() != header.get("sha256"):
        raise ModelFileError(f"{path}: sha256 mismatch: weights are corrupt or truncated")
    net = QNet(int(header["n_in"]), tuple(header["hidden"]))
    sd, off = {}, 0
    for t in header["tensors"]:
        n = int(np.prod(t["shape"])) * 4
        if off + n > len(data):
            raise ModelFileError(f"{path}: payload too short for tensor {t['name']}")
        sd[t["name"]] = torch.from_numpy(np.frombuffer(data[off:off + n], "<f4").reshape(t["shape"]).copy())
        off += n
    if off != len(data):
        raise ModelFileError(f"{path}: {len(data) - off} trailing bytes after the weights")
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not match the network layout: {e}") from e
    net.eval()
    return net, header
