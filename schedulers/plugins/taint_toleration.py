"""TaintToleration: filter out nodes with an untolerated ``NoSchedule``/``NoExecute`` taint;
score by the number of untolerated ``PreferNoSchedule`` taints, normalised in reverse
(``100 - 100 * count / max``)."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import FilterResult, Plugin
from schedulers.framework.registry import register
from schedulers.plugins.helpers import tolerates


def taint_text(t: dict) -> str:
    return "{" + f"{t.get('key', '')}: {t.get('value', '')}" + "}"


@register
class TaintToleration(Plugin):
    name = "TaintToleration"
    uniform_raw = 0  # every node's raw score when uniform_score applies
    events = ("Node/Add", "Node/Update")

    def filter(self, cs, pod, snap, idx: np.ndarray) -> FilterResult:
        tainted = snap.tainted_rows()
        if not len(tainted):
            return FilterResult.all(len(idx))
        ok = np.ones(len(idx), dtype=bool)
        reasons: dict[str, np.ndarray] = {}
        pos = {int(r): k for k, r in enumerate(idx)}
        for r in tainted:
            k = pos.get(int(r))
            if k is None:
                continue
            for t in snap.nodes[r].taints:
                if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod.tolerations, t):
                    ok[k] = False
                    msg = f"node(s) had untolerated taint {taint_text(t)}"
                    reasons.setdefault(msg, np.zeros(len(idx), dtype=bool))[k] = True
                    break
        return FilterResult(ok, reasons=reasons, unresolvable=True)

    def uniform_score(self, cs, pod, snap) -> int | None:
        return 100 if not len(snap.tainted_rows()) else None  # all zero counts normalise to 100

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        out = np.zeros(len(idx), dtype=np.int64)
        tainted = set(int(r) for r in snap.tainted_rows())
        if not tainted:
            return out
        for k, r in enumerate(idx):
            if int(r) in tainted:
                out[k] = sum(1 for t in snap.nodes[r].taints
                             if t.get("effect") == "PreferNoSchedule" and not tolerates(pod.tolerations, t))
        return out

    def normalize(self, cs, pod, snap, idx, scores: np.ndarray) -> np.ndarray:
        mx = scores.max() if len(scores) else 0
        if mx <= 0:
            return np.full(len(scores), 100, dtype=np.int64)
        return 100 - scores * 100 // mx
