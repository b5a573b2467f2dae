"""Validation rules of the batch/v1 kinds (``pkg/apis/batch/validation`` of Kubernetes 1.32):
Job (its failure and success policies in ``jobpolicies.py``) and CronJob (its schedule and
time zone as robfig/cron and Go's time package judge them, ``controlplane.machinery.cron``; its
job template as a Job's spec). ``rules.py`` maps kinds to these functions.
"""

from __future__ import annotations

import copy

import re
from typing import Any

from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation import jobpolicies
from controlplane.apiserver.validation.podtemplate import go_map, immutable, nonneg, selector_and_template, spec_of
from controlplane.machinery.cron import UTC, CronError, load_location, parse_standard
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
# IANA zone name components (https://data.iana.org/time-zones/theory.html#naming), digits and
# "+" tolerated for legacy names, as kube-apiserver checks them before loading the zone
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")
# a Job's name is <cronjob>-<minutes since epoch>: 11 characters within the 63 of a label
MAX_CRONJOB_NAME = 52
MAX_INDEXED_PARALLELISM = 100_000  # maxParallelismForIndexedJob


def job(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    job_spec(spec, errs, "spec", update=update, old_spec=spec_of(old), manual=bool(spec.get("manualSelector")))
    if not update:
        generated_selector(obj, spec, errs)
    if update:
        ospec = spec_of(old)
        if ospec.get("completionMode", "NonIndexed") != spec.get("completionMode", "NonIndexed"):
            immutable(errs, "spec.completionMode", spec.get("completionMode"), ospec.get("completionMode"))
        if spec.get("completionMode") != "Indexed":
            immutable(errs, "spec.completions", spec.get("completions"), ospec.get("completions"))
        jobpolicies.immutable_fields(spec, ospec, errs, "spec")
        job_template_update(spec, ospec, errs, allow_scheduling=bool(ospec.get("suspend"))
                            and not (old.get("status") or {}).get("startTime"))


# what a suspended Job that never started may change in its template (``validateJobTemplateUpdate``
# with ``AllowMutableSchedulingDirectives``)
MUTABLE_SCHEDULING = ("affinity", "nodeSelector", "tolerations", "schedulingGates")


def job_template_update(spec: Obj, old_spec: Obj, errs: Errors, *, allow_scheduling: bool) -> None:
    """``validateJobTemplateUpdate``: a Job's pod template is immutable, except the scheduling
    directives, labels and annotations of a suspended Job that has not started yet."""
    def norm(t: Any) -> Obj:
        t = copy.deepcopy(t) if isinstance(t, dict) else {}
        md = t.get("metadata") if isinstance(t.get("metadata"), dict) else {}
        if md.get("creationTimestamp") is None:
            md.pop("creationTimestamp", None)
        t["metadata"] = {k: v for k, v in md.items() if v not in (None, {}, [])}
        return t
    new, old = norm(spec.get("template")), norm(old_spec.get("template"))
    if allow_scheduling:
        old["metadata"] = {**old["metadata"], "labels": new["metadata"].get("labels"),
                           "annotations": new["metadata"].get("annotations")}
        old["metadata"] = {k: v for k, v in old["metadata"].items() if v not in (None, {}, [])}
        ospec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        nspec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
        for k in MUTABLE_SCHEDULING:
            if k in nspec:
                ospec[k] = nspec[k]
            else:
                ospec.pop(k, None)
        old["spec"] = ospec
    if new != old:
        errs.invalid("spec.template", spec.get("template"), "field is immutable")


def generated_selector(obj: Obj, spec: Obj, errs: Errors) -> None:
    """``ValidateGeneratedSelector`` (creates without ``manualSelector``): the template carries
    the job's own name and uid labels, and the selector selects exactly what the generated one
    would (a selector the user wrote is refused: "`selector` not auto-generated")."""
    if spec.get("manualSelector") or not isinstance(spec.get("selector"), dict):
        return
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid") or "", meta.get("name") or ""
    if not uid:
        errs.required("metadata.uid", "")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    for key, want in (("controller-uid", uid), ("job-name", name), ("batch.kubernetes.io/controller-uid", uid),
                      ("batch.kubernetes.io/job-name", name)):
        path = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            errs.required(path, want)
        elif labels[key] != want:
            errs.invalid(path, go_map(labels), f"must be '{want}'")
    try:
        selects = LabelSelector.from_dict(spec["selector"]).matches({"batch.kubernetes.io/controller-uid": uid})
    except (ValueError, TypeError):
        return  # an unparsable selector has its own cause
    if not selects:
        errs.invalid("spec.selector", spec["selector"], "`selector` not auto-generated")


def job_spec(spec: Obj, errs: Errors, path: str, *, update: bool = False, old_spec: Obj | None = None,
             manual: bool = False) -> None:
    """A JobSpec at ``path`` (a Job's ``spec`` or a CronJob's ``spec.jobTemplate.spec``)."""
    for k in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        nonneg(errs, spec, k, f"{path}.{k}")
    selector_and_template(spec, errs, ("OnFailure", "Never"), "job", update, old_spec or {}, path=path,
                          require_selector=manual)
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            errs.not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed"))
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.required(f"{path}.completions", "when completion mode is Indexed")
            par = spec.get("parallelism")
            if isinstance(par, int) and par > MAX_INDEXED_PARALLELISM:
                errs.invalid(f"{path}.parallelism", par,
                             f"must be less than or equal to {MAX_INDEXED_PARALLELISM} when completion mode is Indexed")
    jobpolicies.per_index(spec, errs, path)
    jobpolicies.pod_failure_policy(spec, errs, f"{path}.podFailurePolicy")
    jobpolicies.success_policy(spec, errs, f"{path}.successPolicy")
    jobpolicies.pod_replacement_policy(spec, errs, f"{path}.podReplacementPolicy")
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if rp is None and isinstance(spec.get("template"), dict):
        errs.not_supported(f"{path}.template.spec.restartPolicy", "Always", ("OnFailure", "Never"))
    jobpolicies.restart_policy_for_policies(spec, errs, path)


def cronjob(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """``ValidateCronJobCreate``/``ValidateCronJobUpdate``."""
    spec = spec_of(obj)
    old_spec = spec_of(old) if update else None
    name = (obj.get("metadata") or {}).get("name") or ""
    if not update and len(name) > MAX_CRONJOB_NAME:
        errs.invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME} characters")
    schedule = spec.get("schedule")
    time_zone = spec.get("timeZone")
    if not schedule:
        errs.required("spec.schedule", "")
    elif isinstance(schedule, str):
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        schedule_format(schedule, allow_tz, time_zone, errs)
    sds = spec.get("startingDeadlineSeconds")
    if isinstance(sds, int) and sds < 0:
        errs.invalid("spec.startingDeadlineSeconds", sds, "must be greater than or equal to 0")
    if old_spec is None or old_spec.get("timeZone") != time_zone:
        validate_time_zone(time_zone, errs)
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.required("spec.concurrencyPolicy", "")
    elif policy not in CONCURRENCY_POLICIES:
        errs.not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES)
    template = spec.get("jobTemplate")
    tspec = spec_of(template) if isinstance(template, dict) else {}
    job_spec(tspec, errs, "spec.jobTemplate.spec")
    if tspec.get("selector") is not None:
        errs.invalid("spec.jobTemplate.spec.selector", tspec["selector"], "`selector` will be auto-generated")
    if tspec.get("manualSelector"):
        errs.not_supported("spec.jobTemplate.spec.manualSelector", tspec["manualSelector"], ("nil", "false"))
    for k in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):  # zero is valid
        v = spec.get(k)
        if isinstance(v, int) and v < 0:
            errs.invalid(f"spec.{k}", v, "must be greater than or equal to 0")


def schedule_format(schedule: str, allow_tz: bool, time_zone: Any, errs: Errors) -> None:
    """``validateScheduleFormat``: robfig's ParseStandard must accept it; ``TZ=`` only in
    schedules that had it before (use ``timeZone``), never together with ``timeZone``."""
    try:
        parse_standard(schedule, UTC)
    except CronError as e:
        errs.invalid("spec.schedule", schedule, str(e))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        errs.invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
    elif not allow_tz and "TZ" in schedule:
        errs.invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")


def validate_time_zone(time_zone: Any, errs: Errors) -> None:
    """``validateTimeZone``: an explicit IANA zone this machine knows."""
    if time_zone is None:
        return
    if not isinstance(time_zone, str) or not time_zone:
        errs.invalid("spec.timeZone", time_zone, "timeZone must be nil or non-empty string")
        return
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            errs.invalid("spec.timeZone", time_zone, f"unknown time zone {time_zone}")
            return
    if time_zone.lower() == "local":
        errs.invalid("spec.timeZone", time_zone, "timeZone must be an explicit time zone as defined in "
                     "https://www.iana.org/time-zones")
    try:
        load_location(time_zone)
    except CronError as e:
        errs.invalid("spec.timeZone", time_zone, str(e))
