"""Validation rules of the batch/v1 kinds (``pkg/apis/batch/validation`` of Kubernetes 1.32):
Job (and, through ``job_spec``, a CronJob's job template) and CronJob. ``rules.py`` maps kinds
to these functions.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation.podtemplate import immutable, nonneg, selector_and_template, spec_of

Obj = dict[str, Any]


def job(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    for k in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        nonneg(errs, spec, k, f"spec.{k}")
    manual = bool(spec.get("manualSelector"))
    selector_and_template(obj, errs, ("OnFailure", "Never"), "job", update, old,
                           require_selector=manual)
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if rp is None and isinstance(spec.get("template"), dict):
        errs.not_supported("spec.template.spec.restartPolicy", "Always", ("OnFailure", "Never"))
    if update:
        ospec = spec_of(old)
        if ospec.get("completionMode", "NonIndexed") != spec.get("completionMode", "NonIndexed"):
            immutable(errs, "spec.completionMode", spec.get("completionMode"), ospec.get("completionMode"))
        if spec.get("completionMode") != "Indexed":
            immutable(errs, "spec.completions", spec.get("completions"), ospec.get("completions"))
