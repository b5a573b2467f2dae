"""What the validation of every pod-template-owning kind shares (Deployment, ReplicaSet,
StatefulSet, DaemonSet, Job, ReplicationController, CronJob's job template): the selector must
match the template's labels, the template's pod spec (``pods.py``) with the kind's allowed
restart policies, non-negative counts, immutable fields. Callers: ``apps.py``, ``batch.py``,
``core.py``. Also core/v1 PodTemplate itself (``pod_template``: Kubernetes'
``ValidatePodTemplate``/``ValidatePodTemplateUpdate``), which ``rules.py`` maps directly.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors, qualified_name_error, validate_labels
from controlplane.apiserver.validation import pods
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


def selector_and_template(spec: Obj, errs: Errors, restart: tuple[str, ...], kind: str, update: bool,
                          old_spec: Obj, *, path: str = "spec", require_selector: bool = True) -> None:
    """A workload spec's ``selector`` (a LabelSelector) and ``template`` at ``path``."""
    sel = spec.get("selector")
    if require_selector and not sel:
        errs.required(f"{path}.selector", "")
    elif isinstance(sel, dict):
        if require_selector and not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.invalid(f"{path}.selector", sel, f"empty selector is invalid for {kind}")
        validate_labels(sel.get("matchLabels"), f"{path}.selector.matchLabels", errs)
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.required(f"{path}.template", "")
        return
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    validate_labels(labels, f"{path}.template.metadata.labels", errs)
    if isinstance(sel, dict) and (sel.get("matchLabels") or sel.get("matchExpressions")):
        try:
            matches = LabelSelector.from_dict(sel).matches(labels)
        except ValueError as exc:
            errs.invalid(f"{path}.selector", sel, str(exc))
            matches = True
        if not matches:
            errs.invalid(f"{path}.template.metadata.labels", go_map(labels),
                         "`selector` does not match template `labels`")
    pod_template_spec(tmpl, errs, restart, f"{path}.template")
    if update and sel is not None:
        immutable(errs, f"{path}.selector", sel, old_spec.get("selector"))


def pod_template_spec(tmpl: Obj, errs: Errors, restart: tuple[str, ...], path: str) -> None:
    """The pod spec of a template at ``path`` and its allowed restart policies."""
    tspec = tmpl.get("spec")
    if not isinstance(tspec, dict):
        errs.required(f"{path}.spec.containers", "")
        return
    pods.validate_pod_spec(tspec, f"{path}.spec", errs)
    if tspec.get("ephemeralContainers"):
        errs.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template")
    rp = tspec.get("restartPolicy")
    if rp is not None and rp not in restart:
        errs.not_supported(f"{path}.spec.restartPolicy", rp, restart)


def go_map(labels: Obj) -> str:
    """A labels map as Go's ``%#v`` prints it (how Kubernetes quotes template labels)."""
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


POD_RESTART_POLICIES = ("Always", "OnFailure", "Never")


def pod_template(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    """core/v1 PodTemplate (``ValidatePodTemplate``; ``ValidatePodTemplateUpdate`` checks the
    same, only the metadata's immutable fields differ): ``template`` as
    ``ValidatePodTemplateSpec`` validates it, at ``template.labels``/``template.annotations``
    (the embedded ObjectMeta's fields, as Kubernetes' field paths name them) and
    ``template.spec`` with every restart policy a pod may have."""
    tmpl = obj.get("template")
    if not isinstance(tmpl, dict):
        errs.required("template.spec.containers", "")
        return
    tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
    validate_labels(tmeta.get("labels"), "template.labels", errs)
    annotations = tmeta.get("annotations")
    if isinstance(annotations, dict):
        for k in annotations:
            msg = qualified_name_error(str(k).lower())
            if msg:
                errs.invalid("template.annotations", k, msg)
    pod_template_spec(tmpl, errs, POD_RESTART_POLICIES, "template")
