"""Event validation (``pkg/apis/core/validation/events.go``): one rule for both views of the
one Event resource, chosen by the group/version the request addressed, as kube-apiserver
validates its internal Event with ``requestGroupVersion(ctx)``.

- every write: ``legacyValidateEvent`` -- the namespace agrees with the involved object's, and
  an Event with ``eventTime`` (a "new" Event) names its reporting controller and instance, an
  action and a reason within the length limits (the field is called ``reportingComponent`` in
  core/v1 messages and ``reportingController`` otherwise, as Kubernetes names it);
- creates and updates through events.k8s.io/v1 (``ValidateEventCreate``/``ValidateEventUpdate``):
  a DNS-subdomain name, ``eventTime`` required, type ``Normal``/``Warning``, the deprecated
  core-only fields unset, a well-formed ``series``, and on update most fields immutable.
Core/v1 is lenient beyond the legacy rules: it is the old clients' API.

The object validated is the stored (core/v1) form: field paths are core's (``message``,
``involvedObject``), as in Kubernetes' messages. Outside a request (no group/version) the core
rules apply. Caller: ``rules.py`` (the ``("", "Event")`` rule); the request's group/version comes
from ``meta.request.group_version()``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors, dns1123_subdomain_error, qualified_name_error
from controlplane.apiserver.meta.request import group_version

Obj = dict[str, Any]

EVENTS_V1 = ("events.k8s.io", "v1")
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024
# fields compared on an events.k8s.io/v1 update (ValidateEventUpdate), in Kubernetes' order
IMMUTABLE = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
             "type", "eventTime", "action", "related", "reportingComponent", "reportingInstance")
# the path Kubernetes reports for each (the internal names; reportingComponent is ReportingController)
_PATHS = {"reportingComponent": "reportingController"}


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def validate_event(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    gv = group_version()
    legacy(obj, errs, core_v1=gv in (None, ("", "v1")))
    if gv != EVENTS_V1:
        return
    if update:
        v1_update(obj, old, errs)
    else:
        v1_create(obj, errs)


def legacy(obj: Obj, errs: Errors, *, core_v1: bool) -> None:
    """``legacyValidateEvent``."""
    ns = _str((obj.get("metadata") or {}).get("namespace"))
    inv = obj.get("involvedObject") if isinstance(obj.get("involvedObject"), dict) else {}
    io_ns = _str(inv.get("namespace"))
    if not obj.get("eventTime"):
        if io_ns and ns != io_ns or not io_ns and ns not in ("", "default"):
            errs.invalid("involvedObject.namespace", io_ns, "does not match event.namespace")
    else:
        controller_path = "reportingComponent" if core_v1 else "reportingController"
        if not io_ns and ns not in ("default", "kube-system"):
            errs.invalid("involvedObject.namespace", io_ns, "does not match event.namespace")
        controller = _str(obj.get("reportingComponent"))
        if not controller:
            errs.required(controller_path)
        msg = qualified_name_error(controller)
        if msg:
            errs.invalid(controller_path, controller, msg)
        instance = _str(obj.get("reportingInstance"))
        if not instance:
            errs.required("reportingInstance")
        if len(instance) > REPORTING_INSTANCE_LIMIT:
            errs.invalid("reportingInstance", "", f"can have at most {REPORTING_INSTANCE_LIMIT} characters")
        for path, limit in (("action", ACTION_LIMIT), ("reason", REASON_LIMIT)):
            value = _str(obj.get(path))
            if not value:
                errs.required(path)
            if len(value) > limit:
                errs.invalid(path, "", f"can have at most {limit} characters")
        if len(_str(obj.get("message"))) > NOTE_LIMIT:
            errs.invalid("message", "", f"can have at most {NOTE_LIMIT} characters")


def v1_create(obj: Obj, errs: Errors) -> None:
    """The strict part of ``ValidateEventCreate`` (events.k8s.io/v1 and newer)."""
    name = _str((obj.get("metadata") or {}).get("name"))
    msg = dns1123_subdomain_error(name) if name else None
    if msg:
        errs.invalid("metadata.name", name, msg)
    series(obj, errs)
    if not obj.get("eventTime"):
        errs.required("eventTime")
    etype = obj.get("type")
    if etype not in ("Normal", "Warning"):
        errs.invalid("type", "", f"has invalid value: {_str(etype)}")
    for path in ("firstTimestamp", "lastTimestamp", "count"):
        if obj.get(path):
            errs.invalid(path, "", "needs to be unset")
    source = obj.get("source") if isinstance(obj.get("source"), dict) else {}
    if source.get("component") or source.get("host"):
        errs.invalid("source", "", "needs to be unset")


def v1_update(obj: Obj, old: Obj, errs: Errors) -> None:
    """The strict part of ``ValidateEventUpdate``: a changed series is checked again, and
    what the Event is about and who reported it cannot change."""
    if obj.get("series") != old.get("series"):
        series(obj, errs)
    for path in IMMUTABLE:
        if obj.get(path) != old.get(path):
            errs.invalid(_PATHS.get(path, path), obj.get(path), "field is immutable")


def series(obj: Obj, errs: Errors) -> None:
    """``validateV1EventSeries``."""
    s = obj.get("series")
    if not isinstance(s, dict):
        return
    count = s.get("count")
    if not isinstance(count, int) or count < 2:
        errs.invalid("series.count", "", "should be at least 2")
    if not s.get("lastObservedTime"):
        errs.required("series.lastObservedTime")
