"""Validation rules of the apps/v1 workloads (``pkg/apis/apps/validation`` of Kubernetes 1.32):
Deployment, ReplicaSet, StatefulSet, DaemonSet. The template and selector checks they share
are in ``podtemplate.py``; ``rules.py`` maps kinds to these functions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from controlplane.apiserver.meta.names import Errors, GoValue
from controlplane.apiserver.validation.podtemplate import nonneg, selector_and_template, spec_of
from controlplane.apiserver.validation import storage

Obj = dict[str, Any]

PERCENT = re.compile(r"[0-9]+%")
PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' "
               "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def intstr_repr(v: Any) -> str:
    """How kube-apiserver prints an ``intstr.IntOrString`` in ``Invalid value: …`` (``%#v`` of
    the struct: it has no value-receiver ``String()``)."""
    if isinstance(v, str):
        return f'intstr.IntOrString{{Type:1, IntVal:0, StrVal:{json.dumps(v)}}}'
    n = v if isinstance(v, int) and not isinstance(v, bool) else 0
    return f'intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:""}}'


# a non-nil pointer inside a struct prints as its address under ``%#v``; kube-apiserver shows
# wherever the value happened to live, this shows one fixed address of the same form
GO_ADDRESS = "0xc000000000"


def go_pointer(type_name: str, v: Any) -> str:
    """``%#v`` of a pointer field: ``(*T)(nil)`` or ``(*T)(0xc…)``."""
    return f"(*{type_name})(nil)" if v is None else f"(*{type_name})({GO_ADDRESS})"


def go_strategy(kind: str, rolling_type: str, strategy: Obj) -> GoValue:
    """``%#v`` of the internal ``apps.<kind>`` update strategy (``Type`` and the
    ``RollingUpdate`` pointer), the value kube-apiserver prints for an unknown type."""
    return GoValue(f"apps.{kind}{{Type:{json.dumps(strategy.get('type') or '', ensure_ascii=False)}, "
                   f"RollingUpdate:{go_pointer('apps.' + rolling_type, strategy.get('rollingUpdate'))}}}")


def intstr_value(v: Any) -> int:
    """``getIntOrPercentValue``: the number of an int or a valid percent, else 0."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, str) and PERCENT.fullmatch(v):
        return int(v[:-1])
    return 0


def positive_int_or_percent(errs: Errors, path: str, v: Any) -> None:
    """``ValidatePositiveIntOrPercent``."""
    if v is None:
        return
    if isinstance(v, str):
        if not PERCENT.fullmatch(v):
            errs.add("FieldValueInvalid", path, f"Invalid value: {intstr_repr(v)}: {PERCENT_MSG}")
    elif isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            errs.invalid(path, v, "must be greater than or equal to 0")
    else:
        errs.add("FieldValueInvalid", path,
                 f"Invalid value: {intstr_repr(v)}: must be an integer or percentage (e.g '5%')")


def not_more_than_100_percent(errs: Errors, path: str, v: Any) -> None:
    """``IsNotMoreThan100Percent``."""
    if isinstance(v, str) and PERCENT.fullmatch(v) and int(v[:-1]) > 100:
        errs.add("FieldValueInvalid", path, f"Invalid value: {intstr_repr(v)}: must not be greater than 100%")


def deployment_strategy(errs: Errors, spec: Obj) -> None:
    """``ValidateDeploymentStrategy`` / ``ValidateRollingUpdateDeployment`` and the
    progress deadline (``ValidateDeploymentSpec``)."""
    strategy = spec.get("strategy") if isinstance(spec.get("strategy"), dict) else {}
    ru = strategy.get("rollingUpdate")
    if strategy.get("type") not in (None, "Recreate", "RollingUpdate"):
        # (the default case: the whole strategy is the value, at ``spec.strategy``)
        errs.not_supported("spec.strategy", go_strategy("DeploymentStrategy", "RollingUpdateDeployment", strategy),
                           ("Recreate", "RollingUpdate"))
    elif strategy.get("type") == "Recreate" and ru is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif strategy.get("type", "RollingUpdate") == "RollingUpdate" and isinstance(ru, dict):
        path = "spec.strategy.rollingUpdate"
        positive_int_or_percent(errs, f"{path}.maxUnavailable", ru.get("maxUnavailable"))
        positive_int_or_percent(errs, f"{path}.maxSurge", ru.get("maxSurge"))
        if intstr_value(ru.get("maxUnavailable")) == 0 and intstr_value(ru.get("maxSurge")) == 0:
            errs.add("FieldValueInvalid", f"{path}.maxUnavailable",
                     f"Invalid value: {intstr_repr(ru.get('maxUnavailable'))}: may not be 0 when `maxSurge` is 0")
        not_more_than_100_percent(errs, f"{path}.maxUnavailable", ru.get("maxUnavailable"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int) and not isinstance(pds, bool):
        nonneg(errs, spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds")
        mrs = spec.get("minReadySeconds")
        if pds <= (mrs if isinstance(mrs, int) else 0):
            errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def daemonset_strategy(errs: Errors, spec: Obj) -> None:
    """``ValidateDaemonSetUpdateStrategy`` / ``ValidateRollingUpdateDaemonSet``: exactly one of
    ``maxSurge`` / ``maxUnavailable`` non-zero."""
    strategy = spec.get("updateStrategy") if isinstance(spec.get("updateStrategy"), dict) else {}
    if strategy.get("type") not in (None, "OnDelete", "RollingUpdate"):
        errs.not_supported("spec.updateStrategy",
                           go_strategy("DaemonSetUpdateStrategy", "RollingUpdateDaemonSet", strategy),
                           ("RollingUpdate", "OnDelete"))
        return
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return
    ru = strategy.get("rollingUpdate")
    if not isinstance(ru, dict):
        return
    path = "spec.updateStrategy.rollingUpdate"
    positive_int_or_percent(errs, f"{path}.maxUnavailable", ru.get("maxUnavailable"))
    positive_int_or_percent(errs, f"{path}.maxSurge", ru.get("maxSurge"))
    not_more_than_100_percent(errs, f"{path}.maxUnavailable", ru.get("maxUnavailable"))
    not_more_than_100_percent(errs, f"{path}.maxSurge", ru.get("maxSurge"))
    unavailable, surge = intstr_value(ru.get("maxUnavailable")) != 0, intstr_value(ru.get("maxSurge")) != 0
    if unavailable and surge:
        errs.add("FieldValueInvalid", f"{path}.maxSurge",
                 f"Invalid value: {intstr_repr(ru.get('maxSurge'))}: may not be set when maxUnavailable is non-zero")
    elif not unavailable and not surge:
        errs.required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0")


def statefulset_strategy(errs: Errors, spec: Obj) -> None:
    """``ValidateStatefulSetSpec``'s update strategy and claim retention policy checks."""
    strategy = spec.get("updateStrategy") if isinstance(spec.get("updateStrategy"), dict) else {}
    st, ru = strategy.get("type"), strategy.get("rollingUpdate")
    if st == "OnDelete" and ru is not None:
        # the internal struct: ``Partition`` an int32 (0 when not given), ``MaxUnavailable`` a pointer
        ru = ru if isinstance(ru, dict) else {}
        partition = ru.get("partition") if isinstance(ru.get("partition"), int) else 0
        value = GoValue(f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, "
                        f"MaxUnavailable:{go_pointer('intstr.IntOrString', ru.get('maxUnavailable'))}}}")
        errs.invalid("spec.updateStrategy.rollingUpdate", value, "only allowed for updateStrategy 'RollingUpdate'")
    elif st == "RollingUpdate" and isinstance(ru, dict):
        nonneg(errs, ru, "partition", "spec.updateStrategy.rollingUpdate.partition")
    elif st not in (None, "OnDelete", "RollingUpdate"):
        errs.invalid("spec.updateStrategy",
                     go_strategy("StatefulSetUpdateStrategy", "RollingUpdateStatefulSetStrategy", strategy),
                     "must be 'RollingUpdate' or 'OnDelete'")
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(policy, dict):
        for k in ("whenDeleted", "whenScaled"):
            v = policy.get(k)
            if v is not None and v not in ("Retain", "Delete"):
                errs.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{k}", v, ("Delete", "Retain"))


def deployment(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    nonneg(errs, spec, "replicas", "spec.replicas")
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    selector_and_template(spec_of(obj), errs, ("Always",), "deployment", update, spec_of(old))
    deployment_strategy(errs, spec)


def replicaset(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    nonneg(errs, spec_of(obj), "replicas", "spec.replicas")
    selector_and_template(spec_of(obj), errs, ("Always",), "replicaset", update, spec_of(old))


def statefulset(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    nonneg(errs, spec, "replicas", "spec.replicas")
    pmp = spec.get("podManagementPolicy")
    if pmp is not None and pmp not in ("OrderedReady", "Parallel"):
        errs.not_supported("spec.podManagementPolicy", pmp, ("OrderedReady", "Parallel"))
    templates = spec.get("volumeClaimTemplates") if isinstance(spec.get("volumeClaimTemplates"), list) else []
    checked = spec
    if templates:
        # the pods mount their claims under the templates' names
        names = [((t.get("metadata") or {}).get("name") or "") for t in templates if isinstance(t, dict)]
        tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        tspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
        vols = [v for v in tspec.get("volumes") or [] if not (isinstance(v, dict) and v.get("name") in names)]
        vols += [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n]
        checked = {**spec, "template": {**tmpl, "spec": {**tspec, "volumes": vols}}}
        for i, t in enumerate(templates):
            tpath = f"spec.volumeClaimTemplates[{i}]"
            if not isinstance(t, dict) or not (t.get("metadata") or {}).get("name"):
                errs.required(f"{tpath}.metadata.name", "name or generateName is required")
                continue
            storage.claim_spec(errs, f"{tpath}.spec", t.get("spec") if isinstance(t.get("spec"), dict) else {})
    selector_and_template(checked, errs, ("Always",), "statefulset", update, spec_of(old))
    statefulset_strategy(errs, spec)
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
    spec = spec_of(obj)
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    selector_and_template(spec, errs, ("Always",), "daemonset", update, spec_of(old))
    daemonset_strategy(errs, spec)


def controller_revision(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """``ValidateControllerRevision`` / ``...Update``: a non-negative ``revision``, ``data``
    present and immutable."""
    rev = obj.get("revision")
    if not isinstance(rev, int) or isinstance(rev, bool):
        errs.required("revision", "")
    elif rev < 0:
        errs.invalid("revision", rev, "must be greater than or equal to 0")
    if obj.get("data") is None:
        errs.required("data", "data is mandatory")
    if update and old and obj.get("data") != old.get("data"):
        errs.add("FieldValueInvalid", "data", "Invalid value: \"object\": field is immutable")
