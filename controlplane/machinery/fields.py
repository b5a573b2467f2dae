"""The field-selectable fields of each resource, as Kubernetes supports them (pure).

``fields_for(resource, obj)`` gives the string values a ``fieldSelector`` is matched against
(``metadata.name`` / ``metadata.namespace`` for every resource, plus per-resource fields such as
pods' ``spec.nodeName`` or events' ``involvedObject.name``). The watch cache computes them once
per object version; the apiserver rejects selectors on fields that are not supported (400).
Neighbours: ``selectors.py`` (``FieldSelector.matches(fields)``), the apiserver's watch cache.

API:
    fields_for(resource: str, obj: Mapping) -> dict[str, str]
    supported_fields(resource: str) -> frozenset[str]
    unsupported(resource, fields) -> str | None    # kube-apiserver's 400 message for the first unsupported
    stored_resource(resource) -> str               # the resource a view's objects are stored as
    convert_label(resource, field) -> str          # a view's field label as the stored resource's
    custom_fields(paths, obj) -> dict[str, str]   # a custom resource's selectableFields
    resource_key(group, plural) -> str             # ``resource`` below: "pods", "jobs.batch", ...
    (``resource`` is the plural for the core group, ``plural.group`` otherwise.)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

Obj = Mapping[str, Any]


def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _str(v: Any) -> str:
    return v if type(v) is str else _s(v)


def _pod(obj: Obj) -> dict[str, str]:
    # hot path (every pod version the watch cache sees): no helper call per plain string field
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    pod_ip = status.get("podIP") or ""
    if not pod_ip and status.get("podIPs"):
        pod_ip = (status["podIPs"][0] or {}).get("ip", "")
    return {
        "spec.nodeName": _str(spec.get("nodeName") or ""),
        "spec.restartPolicy": _str(spec.get("restartPolicy") or ""),
        "spec.schedulerName": _str(spec.get("schedulerName") or ""),
        "spec.serviceAccountName": _str(spec.get("serviceAccountName") or ""),
        "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
        "status.phase": _str(status.get("phase") or ""),
        "status.podIP": _str(pod_ip),
        "status.nominatedNodeName": _str(status.get("nominatedNodeName") or ""),
    }


def _event(obj: Obj) -> dict[str, str]:
    inv = obj.get("involvedObject") or {}
    source = _get(obj, "source", "component") or ""
    return {
        "involvedObject.kind": _s(inv.get("kind")),
        "involvedObject.namespace": _s(inv.get("namespace")),
        "involvedObject.name": _s(inv.get("name")),
        "involvedObject.uid": _s(inv.get("uid")),
        "involvedObject.apiVersion": _s(inv.get("apiVersion")),
        "involvedObject.resourceVersion": _s(inv.get("resourceVersion")),
        "involvedObject.fieldPath": _s(inv.get("fieldPath")),
        "reason": _s(obj.get("reason")),
        "reportingComponent": _s(obj.get("reportingComponent")),
        "source": _s(source),
        "type": _s(obj.get("type")),
    }


def _int_str(v: Any) -> str:
    return str(int(v or 0))


def _unset(*names: str) -> Callable[[Obj], dict[str, str]]:
    # a field label the group's conversion accepts but its registry does not set (Go: a
    # StatefulSet's or CronJob's "status.successful"): it reads as "" on every object
    return lambda _obj: {n: "" for n in names}


# key (``resource_key``) -> (the fields beyond metadata.name/namespace, their values of an object)
_PER_RESOURCE: dict[str, tuple[tuple[str, ...], Callable[[Obj], dict[str, str]]]] = {
    "pods": (
        ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
         "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
        _pod,
    ),
    "events": (
        ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
         "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
         "reason", "reportingComponent", "source", "type"),
        _event,
    ),
    "secrets": (("type",), lambda o: {"type": _s(o.get("type"))}),
    "services": (("spec.clusterIP", "spec.type"),
                 lambda o: {"spec.clusterIP": _s(_get(o, "spec", "clusterIP")), "spec.type": _s(_get(o, "spec", "type"))}),
    "nodes": (("spec.unschedulable",),
              lambda o: {"spec.unschedulable": _s(bool(_get(o, "spec", "unschedulable")))}),
    "namespaces": (("status.phase",), lambda o: {"status.phase": _s(_get(o, "status", "phase"))}),
    "replicasets.apps": (("status.replicas",),
                         lambda o: {"status.replicas": _int_str(_get(o, "status", "replicas"))}),
    "replicationcontrollers": (("status.replicas",),
                               lambda o: {"status.replicas": _int_str(_get(o, "status", "replicas"))}),
    "statefulsets.apps": (("status.successful",), _unset("status.successful")),
    "jobs.batch": (("status.successful",),
                   lambda o: {"status.successful": _int_str(_get(o, "status", "succeeded"))}),
    "certificatesigningrequests.certificates.k8s.io": (
        ("spec.signerName",), lambda o: {"spec.signerName": _s(_get(o, "spec", "signerName"))}),
}

_COMMON = ("metadata.name", "metadata.namespace")

# A view of another resource's objects (events.k8s.io/v1 Events are core/v1 Events): its own field
# labels, each converted to the stored resource's (``pkg/apis/events/v1``'s
# AddFieldLabelConversionsForEvent); objects are matched by the stored resource's fields.
_CONVERTED: dict[str, tuple[str, dict[str, str]]] = {
    "events.events.k8s.io": ("events", {
        **{f"regarding.{f}": f"involvedObject.{f}"
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": "reason", "reportingController": "reportingComponent", "type": "type",
    }),
}

# How kube-apiserver words a field label the kind does not support (the kind's registered
# field-label conversion; kinds without one get runtime.DefaultMetaV1FieldSelectorConversion's).
_PLAIN = "field label not supported: {field}"
_MESSAGES: dict[str, str] = {
    **{k: _PLAIN for k in ("pods", "events", "events.events.k8s.io", "secrets", "services", "nodes", "namespaces",
                           "replicationcontrollers", "certificatesigningrequests.certificates.k8s.io")},
    # core kinds that select by ObjectMeta only but register their own conversion
    **{k: 'field label "{field}" not supported for "%s"' % kind for k, kind in (
        ("endpoints", "Endpoints"), ("resourcequotas", "ResourceQuota"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"), ("serviceaccounts", "ServiceAccount"),
        ("configmaps", "ConfigMap"))},
    "statefulsets.apps": "field label not supported for appsv1.StatefulSet: {field}",
    "jobs.batch": 'field label "{field}" not supported for batchv1.Job',
}
_DEFAULT_MESSAGE = '"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def resource_key(group: str, plural: str) -> str:
    """The key of a built-in resource's field labels: its plural for the core group,
    ``plural.group`` otherwise (``jobs.batch``, ``events.events.k8s.io``)."""
    return f"{plural}.{group}" if group else plural


def supported_fields(resource: str) -> frozenset[str]:
    if resource in _CONVERTED:
        return frozenset(_COMMON + tuple(_CONVERTED[resource][1]))
    extra = _PER_RESOURCE.get(resource)
    return frozenset(_COMMON + (extra[0] if extra else ()))


def stored_resource(resource: str) -> str:
    """The resource whose objects ``resource`` serves (itself unless it is another's view)."""
    conv = _CONVERTED.get(resource)
    return conv[0] if conv else resource


def convert_label(resource: str, field: str) -> str:
    """A supported field label of ``resource`` as the stored resource's label (the same for a
    resource that is not a view): ``regarding.name`` of events.k8s.io is ``involvedObject.name``."""
    conv = _CONVERTED.get(resource)
    return conv[1].get(field, field) if conv else field


def unsupported(resource: str, fields: Iterable[str]) -> str | None:
    """The 400 message for the first of ``fields`` (a selector's, in its order) that
    ``resource`` cannot be selected by, as kube-apiserver words it; None when all are supported."""
    allowed = supported_fields(resource)
    for f in fields:
        if f not in allowed:
            return _MESSAGES.get(resource, _DEFAULT_MESSAGE).format(field=f)
    return None


def fields_for(resource: str, obj: Obj) -> dict[str, str]:
    """Every field-selectable field of ``obj`` (a ``resource`` object) as strings."""
    md = obj.get("metadata") or {}
    out = {"metadata.name": _str(md.get("name") or ""), "metadata.namespace": _str(md.get("namespace") or "")}
    extra = _PER_RESOURCE.get(resource)
    if extra:
        out.update(extra[1](obj))
    return out


def custom_fields(paths: tuple[str, ...] | list[str], obj: Obj) -> dict[str, str]:
    """A custom resource's field-selectable fields: ``metadata.name``/``metadata.namespace`` and
    its CRD's ``selectableFields`` (``paths`` such as ``spec.color``, no leading dot), as
    apiextensions-apiserver formats them: strings as they are, booleans ``true``/``false``,
    integers in decimal; a missing (or null) field is ``""``."""
    md = obj.get("metadata") or {}
    out = {"metadata.name": _str(md.get("name") or ""), "metadata.namespace": _str(md.get("namespace") or "")}
    for p in paths:
        out[p] = _s(_get(obj, *p.split(".")))
    return out
