"""Jobs (``pkg/registry/batch/job``): Kubernetes' defaults (completions/parallelism 1,
backoffLimit 6 (MaxInt32 with backoffLimitPerIndex), NonIndexed, podReplacementPolicy Failed
with a podFailurePolicy else TerminatingOrFailed, onPodConditions status True, ...), the generated selector and template labels from the job's
uid (``batch.kubernetes.io/controller-uid``) unless ``manualSelector``, and generation tracking.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
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
        template_defaults(spec)

    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        """``generateSelectorIfNeeded``: unless ``manualSelector``, the template gets the
        job-name and controller-uid labels (those it sets itself are left for validation to
        judge) and the selector the controller-uid one, added to any the user wrote (which
        validation then refuses as "`selector` not auto-generated", as kube-apiserver does)."""
        super().prepare_for_create(info, obj)
        spec = sub(obj, "spec")
        uid = (obj.get("metadata") or {}).get("uid")
        name = (obj.get("metadata") or {}).get("name")
        if not uid or spec.get("manualSelector"):
            return
        labels = sub(sub(sub(spec, "template"), "metadata"), "labels")
        for k, v in (("job-name", name), ("batch.kubernetes.io/job-name", name), ("controller-uid", uid),
                     ("batch.kubernetes.io/controller-uid", uid)):
            labels.setdefault(k, v)
        selector = spec.get("selector")
        if not isinstance(selector, dict):
            selector = spec["selector"] = {}
        match = selector.get("matchLabels")
        if not isinstance(match, dict):
            match = selector["matchLabels"] = {}
        match.setdefault("batch.kubernetes.io/controller-uid", uid)
