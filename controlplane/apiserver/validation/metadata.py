"""Object metadata validation (``ValidateObjectMeta`` of Kubernetes 1.32): name and
generateName syntax per kind (DNS label, DNS subdomain or path segment), namespace on
cluster-scoped kinds, labels, annotations (syntax and total size) and finalizers.
Caller: ``objects.validate``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import (
    Errors,
    dns1123_label_error,
    dns1123_subdomain_error,
    qualified_name_error,
    validate_labels,
)

Obj = dict[str, Any]
GVK = tuple[str, str, str]

# kinds whose names must be DNS-1123 labels (everything else: subdomain)
_LABEL_NAMED = {("", "Namespace"), ("", "Service")}
_CLUSTER_SCOPED = {("", "Namespace"), ("", "Node"), ("apiextensions.k8s.io", "CustomResourceDefinition"),
                   ("scheduling.k8s.io", "PriorityClass"), ("rbac.authorization.k8s.io", "ClusterRole"),
                   ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
                   ("certificates.k8s.io", "CertificateSigningRequest")}
# RBAC names are path segments (``system:kube-scheduler``), as Kubernetes' ValidateRBACName
_PATH_SEGMENT_ONLY = {("", "Event"), ("events.k8s.io", "Event"), ("rbac.authorization.k8s.io", "Role"),
                      ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "RoleBinding"),
                      ("rbac.authorization.k8s.io", "ClusterRoleBinding")}
_TOTAL_ANNOTATION_SIZE = 256 * 1024


def validate_metadata(obj: Obj, gvk: GVK, errs: Errors, *, is_update: bool) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        errs.required("metadata.name", "name or generateName is required")
        return
    name, gen = meta.get("name"), meta.get("generateName")
    key = (gvk[0], gvk[2])
    check = dns1123_label_error if key in _LABEL_NAMED else dns1123_subdomain_error
    if not name and not gen:
        errs.required("metadata.name", "name or generateName is required")
    if name:
        if key in _PATH_SEGMENT_ONLY:
            msg = _path_segment_error(name)
        else:
            msg = check(name)
        if msg:
            errs.invalid("metadata.name", name, msg)
    if gen and not name:
        prefix = gen[:-1] if gen.endswith("-") else gen
        msg = _path_segment_error(gen) if key in _PATH_SEGMENT_ONLY else (check(prefix) if prefix else None)
        if msg:
            errs.invalid("metadata.generateName", gen, msg)
    ns = meta.get("namespace")
    if ns and key in _CLUSTER_SCOPED:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    elif ns:
        msg = dns1123_label_error(ns)
        if msg:
            errs.invalid("metadata.namespace", ns, msg)
    validate_labels(meta.get("labels"), "metadata.labels", errs)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        total = 0
        for k, v in annotations.items():
            msg = qualified_name_error(str(k).lower())
            if msg:
                errs.invalid("metadata.annotations", k, msg)
            total += len(k) + len(v or "")
        if total > _TOTAL_ANNOTATION_SIZE:
            errs.add("FieldValueTooLong", "metadata.annotations",
                     f"Too long: must have at most {_TOTAL_ANNOTATION_SIZE} bytes")
    for i, f in enumerate(meta.get("finalizers") or []):
        msg = qualified_name_error(f) if isinstance(f, str) else "must be a string"
        if msg:
            errs.invalid(f"metadata.finalizers[{i}]", f, msg)




def _path_segment_error(name: str) -> str | None:
    if name in (".", ".."):
        return f"may not be '{name}'"
    for bad in ("/", "%"):
        if bad in name:
            return f"may not contain '{bad}'"
    return None
