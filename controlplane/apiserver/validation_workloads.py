"""Workload validation (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job): selectors that
must match template labels, pod templates (``validation_pods.py``), allowed restart
policies, non-negative counts and immutable fields on update. Caller: ``validation_rules.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver import validation_pods
from controlplane.apiserver.validation_names import Errors, validate_labels
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]


def spec_of(o: Obj) -> Obj:
    s = o.get("spec")
    return s if isinstance(s, dict) else {}


def immutable(errs: Errors, path: str, new: Any, old: Any) -> None:
    if new != old:
        errs.invalid(path, new, "field is immutable")


def nonneg(errs: Errors, spec: Obj, key: str, path: str) -> None:
    v = spec.get(key)
    if isinstance(v, int) and v < 0:
        errs.invalid(path, v, "must be greater than or equal to 0")


def _selector_and_template(obj: Obj, errs: Errors, restart: tuple[str, ...], kind: str,
                           update: bool, old: Obj, require_selector: bool = True) -> None:
    spec = spec_of(obj)
    sel = spec.get("selector")
    if require_selector and not sel:
        errs.required("spec.selector", "")
    elif isinstance(sel, dict):
        if require_selector and not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.invalid("spec.selector", sel, f"empty selector is invalid for {kind}")
        validate_labels(sel.get("matchLabels"), "spec.selector.matchLabels", errs)
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.required("spec.template", "")
        return
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    validate_labels(labels, "spec.template.metadata.labels", errs)
    if isinstance(sel, dict) and (sel.get("matchLabels") or sel.get("matchExpressions")):
        try:
            matches = LabelSelector.from_dict(sel).matches(labels)
        except ValueError as exc:
            errs.invalid("spec.selector", sel, str(exc))
            matches = True
        if not matches:
            errs.invalid("spec.template.metadata.labels", _go_map(labels),
                         "`selector` does not match template `labels`")
    tspec = tmpl.get("spec")
    if not isinstance(tspec, dict):
        errs.required("spec.template.spec.containers", "")
        return
    validation_pods.validate_pod_spec(tspec, "spec.template.spec", errs)
    rp = tspec.get("restartPolicy")
    if rp is not None and rp not in restart:
        errs.not_supported("spec.template.spec.restartPolicy", rp, restart)
    if update and sel is not None:
        immutable(errs, "spec.selector", sel, spec_of(old).get("selector"))


def _go_map(labels: Obj) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def deployment(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    nonneg(errs, spec, "replicas", "spec.replicas")
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    st = (spec.get("strategy") or {}).get("type")
    if st is not None and st not in ("Recreate", "RollingUpdate"):
        errs.not_supported("spec.strategy.type", st, ("Recreate", "RollingUpdate"))
    _selector_and_template(obj, errs, ("Always",), "deployment", update, old)


def replicaset(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    nonneg(errs, spec_of(obj), "replicas", "spec.replicas")
    _selector_and_template(obj, errs, ("Always",), "replicaset", update, old)


def statefulset(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    nonneg(errs, spec, "replicas", "spec.replicas")
    pmp = spec.get("podManagementPolicy")
    if pmp is not None and pmp not in ("OrderedReady", "Parallel"):
        errs.not_supported("spec.podManagementPolicy", pmp, ("OrderedReady", "Parallel"))
    _selector_and_template(obj, errs, ("Always",), "statefulset", update, old)
    if update:
        mutable = {"replicas", "ordinals", "template", "updateStrategy",
                   "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
        new_rest = {k: v for k, v in spec.items() if k not in mutable}
        old_rest = {k: v for k, v in spec_of(old).items() if k not in mutable}
        if new_rest != old_rest:
            errs.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                           "'ordinals', 'template', 'updateStrategy', "
                           "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def daemonset(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _selector_and_template(obj, errs, ("Always",), "daemonset", update, old)


def job(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    for k in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        nonneg(errs, spec, k, f"spec.{k}")
    manual = bool(spec.get("manualSelector"))
    _selector_and_template(obj, errs, ("OnFailure", "Never"), "job", update, old,
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
