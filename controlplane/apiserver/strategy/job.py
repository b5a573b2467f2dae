"""Jobs (``pkg/registry/batch/job``): Kubernetes' defaults (completions/parallelism 1,
backoffLimit 6 (MaxInt32 with backoffLimitPerIndex), NonIndexed, podReplacementPolicy Failed
with a podFailurePolicy else TerminatingOrFailed, onPodConditions status True, ...), the generated selector and template labels from the job's
uid (``batch.kubernetes.io/controller-uid``) unless ``manualSelector``, and generation tracking.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy
from controlplane.apiserver.strategy.podtemplate import sub, template_defaults

Obj = dict[str, Any]
MAX_INT32 = 2**31 - 1


class JobStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
        if spec.get("parallelism") is None:
            spec["parallelism"] = 1
        if spec.get("backoffLimit") is None:  # per-index limits make the global one unbounded
            spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        pfp = spec.get("podFailurePolicy")
        if isinstance(pfp, dict):
            for rule in pfp.get("rules") or []:
                for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
                    if isinstance(pattern, dict) and not pattern.get("status"):
                        pattern["status"] = "True"
        if spec.get("podReplacementPolicy") is None:
            spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
        uid = (obj.get("metadata") or {}).get("uid")
        name = (obj.get("metadata") or {}).get("name")
        if uid and not spec.get("manualSelector") and not spec.get("selector"):
            generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                         "controller-uid": uid, "job-name": name}
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            tmeta = sub(sub(spec, "template"), "metadata")
            labels = sub(tmeta, "labels")
            for k, v in generated.items():
                labels.setdefault(k, v)
        template_defaults(spec)
