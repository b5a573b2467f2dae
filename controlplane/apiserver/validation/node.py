"""Validation of ``node.k8s.io/v1`` RuntimeClass (Kubernetes 1.32 ``node/validation.
ValidateRuntimeClass`` / ``ValidateRuntimeClassUpdate``): the handler is a DNS-1123 label and
never changes, ``overhead.podFixed`` is checked as container limits are (so its errors read
``overhead.limits[cpu]``, as kube-apiserver words them), ``scheduling.nodeSelector`` as labels
and ``scheduling.tolerations`` as a pod's, without duplicates. ``rules.py`` maps the kind here;
the RuntimeClass admission plugin (``admission/runtimeclass.py``) applies a class to pods.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_label_error, validate_labels
from controlplane.apiserver.validation.pods import resources, tolerations

Obj = dict[str, Any]


def runtime_class(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    handler = obj.get("handler")
    if not isinstance(handler, str) or not handler:
        errs.required("handler", "")
    else:
        msg = dns1123_label_error(handler)
        if msg:
            errs.invalid("handler", handler, msg)
    if update and handler != old.get("handler"):
        errs.invalid("handler", handler, "field is immutable")
    overhead = obj.get("overhead")
    if isinstance(overhead, dict) and isinstance(overhead.get("podFixed"), dict):
        resources(errs, "overhead", {"limits": overhead["podFixed"]})
    scheduling = obj.get("scheduling")
    if isinstance(scheduling, dict):
        validate_labels(scheduling.get("nodeSelector"), "scheduling.nodeSelector", errs)
        tols = scheduling.get("tolerations")
        if isinstance(tols, list):
            # upstream validates under tolerations.tolerations (fldPath.Child twice): kept as it words it
            tolerations(errs, "scheduling.tolerations.tolerations", tols)
            seen: set[tuple[Any, ...]] = set()
            for i, t in enumerate(tols):
                if not isinstance(t, dict):
                    continue
                key = (t.get("key", ""), t.get("operator", ""), t.get("value", ""), t.get("effect", ""))
                if key in seen:
                    errs.duplicate(f"scheduling.tolerations[{i}]", t)
                seen.add(key)
