"""Validation rules of the apps/v1 workloads (``pkg/apis/apps/validation`` of Kubernetes 1.32):
Deployment, ReplicaSet, StatefulSet, DaemonSet. The template and selector checks they share
are in ``podtemplate.py``; ``rules.py`` maps kinds to these functions.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation.podtemplate import nonneg, selector_and_template, spec_of
from controlplane.apiserver.validation import storage

Obj = dict[str, Any]


def deployment(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = spec_of(obj)
    nonneg(errs, spec, "replicas", "spec.replicas")
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit")
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds")
    st = (spec.get("strategy") or {}).get("type")
    if st is not None and st not in ("Recreate", "RollingUpdate"):
        errs.not_supported("spec.strategy.type", st, ("Recreate", "RollingUpdate"))
    selector_and_template(spec_of(obj), errs, ("Always",), "deployment", update, spec_of(old))


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
    selector_and_template(spec_of(obj), errs, ("Always",), "daemonset", update, spec_of(old))


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
