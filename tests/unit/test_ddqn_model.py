"""DDQN model file: a few training steps on a small synthetic trace, save, reload, identical
deterministic scores; corrupt or mismatched files fail with a clear ModelFileError; the
trained file plugs into the simulator as ``--policy ddqn``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from schedulers.ddqn import model as qmodel
from schedulers.ddqn.__main__ import main as ddqn_main
from schedulers.ddqn.features import N_FEATURES
from schedulers.ddqn.scorer import DdqnScorer
from schedulers.ddqn.train import MODEL_FILE
from schedulers.sim.openb import Workload, run_seeds


def _write_trace(d: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    nodes = d / "nodes.csv"
    rows = ["sn,cpu_milli,memory_mib,gpu,model"]
    for i in range(24):
        g = [1, 2, 4, 8][i % 4]
        rows.append(f"node-{i:03d},{16000 * g},{65536 * g},{g},{'A' if i % 3 else 'B'}")
    nodes.write_text("\n".join(rows) + "\n")
    pods = d / "pods.csv"
    rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec"]
    for i in range(120):
        kind = rng.integers(4)
        if kind == 0:
            rows.append(f"pod-{i:04d},{int(rng.integers(1, 16)) * 1000},4096,0,0,")
        elif kind == 1:
            rows.append(f"pod-{i:04d},4000,8192,1,{int(rng.choice([250, 300, 500, 700]))},{'B' if i % 7 == 0 else ''}")
        elif kind == 2:
            rows.append(f"pod-{i:04d},8000,16384,1,1000,")
        else:
            rows.append(f"pod-{i:04d},16000,16384,{int(rng.choice([2, 4]))},1000,")
    pods.write_text("\n".join(rows) + "\n")
    return nodes, pods


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("ddqn")
    nodes, pods = _write_trace(d)
    out = d / "out"
    rc = ddqn_main(["train", "--pods", str(pods), "--nodes", str(nodes), "--out", str(out), "--episodes", "12", "--learn-start", "200",
                    "--nodes-min", "12", "--nodes-max", "24", "--eval-every", "0", "--max-steps", "2500", "--no-progress"])
    assert rc == 0
    return out / MODEL_FILE, nodes, pods


def test_training_writes_model_curves_and_plot(trained: tuple[Path, Path, Path]) -> None:
    model, _, _ = trained
    curves = json.loads((model.parent / "curves.json").read_text())
    assert curves["summary"]["steps"] > 0 and curves["summary"]["updates"] > 0
    assert len(curves["curves"]) >= 1 and "alloc" in curves["curves"][0]
    assert (model.parent / "curves.png").stat().st_size > 1000


def test_reload_scores_deterministically(trained: tuple[Path, Path, Path]) -> None:
    model, _, _ = trained
    X = np.random.default_rng(0).random((300, N_FEATURES), dtype=np.float32)
    a, b = DdqnScorer(model), DdqnScorer(model)
    np.testing.assert_array_equal(a.advantages(X), b.advantages(X))
    np.testing.assert_array_equal(a.scores(X), a.scores(X.copy()))
    np.testing.assert_allclose(a.advantages(X), a.advantages_torch(X), rtol=1e-5, atol=1e-5)
    net, header = qmodel.load(model)
    assert header["feature_spec"].startswith("v1:")
    tmp = model.parent / "resaved.bin"
    qmodel.save(net, tmp, meta=header["meta"])
    assert tmp.read_bytes() == model.read_bytes()


def _mutate(src: Path, dst: Path, how: str) -> None:
    raw = bytearray(src.read_bytes())
    if how == "flip-weight-byte":
        raw[-5] ^= 0xFF
    elif how == "truncate":
        del raw[-16:]
    elif how == "bad-magic":
        raw[0:4] = b"XXXX"
    elif how == "other-features":
        raw = bytearray(bytes(raw).replace(b'"feature_spec": "v1:', b'"feature_spec": "v0:', 1))
    elif how == "future-version":
        raw = bytearray(bytes(raw).replace(b'"format_version": 1', b'"format_version": 9', 1))
    elif how == "garbage-header":
        nl = raw.index(b"\n") + 1
        raw[nl:nl + 3] = b"{{{"
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("how,message", [
    ("flip-weight-byte", "sha256 mismatch"),
    ("truncate", "sha256 mismatch"),
    ("bad-magic", "bad magic"),
    ("other-features", "feature spec mismatch"),
    ("future-version", "format version"),
    ("garbage-header", "corrupt header"),
])
def test_corrupt_or_mismatched_file_fails_clearly(trained: tuple[Path, Path, Path], tmp_path: Path, how: str, message: str) -> None:
    model, _, _ = trained
    bad = tmp_path / "bad.bin"
    _mutate(model, bad, how)
    with pytest.raises(qmodel.ModelFileError, match=message):
        DdqnScorer(bad)


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(qmodel.ModelFileError, match="cannot read"):
        DdqnScorer(tmp_path / "nope.bin")


def test_trained_model_runs_as_simulator_policy(trained: tuple[Path, Path, Path]) -> None:
    model, nodes, pods = trained
    wl = Workload.load(nodes, pods)
    out = run_seeds(wl, "ddqn", [1, 2], options={"model": str(model)})
    again = run_seeds(wl, "ddqn", [1, 2], options={"model": str(model)})
    assert out["policy"] == "ddqn" and out["alloc_at_100"] is not None
    assert [r["used_milli"] for r in out["per_seed"]] == [r["used_milli"] for r in again["per_seed"]]
    assert all(r["used_milli"] > 0 for r in out["per_seed"])
