"""Events (``pkg/registry/core/event``): one resource served as core/v1 and as
events.k8s.io/v1, stored once, as core/v1 (``/registry/core/events/NS/NAME``), and converted
both ways as Kubernetes converts them (``pkg/apis/events/v1/conversion.go``): ``regarding`` is
``involvedObject``, ``note`` is ``message``, ``reportingController`` is ``reportingComponent``,
the ``deprecated*`` fields are core's ``source``, ``firstTimestamp``, ``lastTimestamp`` and
``count``; ``eventTime``, ``series``, ``related``, ``action``, ``reason``, ``type`` and
``reportingInstance`` are the same in both. So an Event written through either group is read,
listed, watched (same resourceVersion) and expires through both.

Names are any path segment (``<object>.<hex>``); whatever the recorder sent is stored as sent;
Events expire ``ttl_seconds`` after their last write (kube-apiserver's ``--event-ttl``, default
1 h; the apiserver's flag of the same name sets it). Validation depends on the group the
request addressed (``validation/event.py``). Neighbours: ``builtins.py`` (the two registry
entries), ``machinery/fields.py`` (each group's field labels, converted to core's).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.errors import bad_request
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.strategy.base import FIELD_STRICT, Strategy, warn_fields
from controlplane.apiserver.validation import objects as validation

Obj = dict[str, Any]

DEFAULT_TTL_S = 3600

# events.k8s.io/v1 field -> core/v1 field (the fields not listed have the same name in both)
V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
CORE_TO_V1 = {c: v for v, c in V1_TO_CORE.items()}
# fields events.k8s.io/v1 always prints (Go: not omitempty), null when unset
_V1_ALWAYS = ("eventTime", "deprecatedFirstTimestamp", "deprecatedLastTimestamp")


def core_to_v1(obj: Obj) -> Obj:
    """A stored core/v1 Event as events.k8s.io/v1 (``Convert_core_Event_To_v1_Event``)."""
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for k, v in obj.items():
        if k not in ("apiVersion", "kind"):
            out[CORE_TO_V1.get(k, k)] = v
    for k in _V1_ALWAYS:
        out.setdefault(k, None)
    return out


def v1_to_core(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event as core/v1 (``Convert_v1_Event_To_core_Event``). A core-only
    field name sent to events.k8s.io/v1 is an unknown field there (it would otherwise be taken
    for the core field of that name): a 400 under ``fieldValidation=Strict``, else dropped with
    a warning."""
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    unknown = []
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if k in CORE_TO_V1:
            unknown.append(f'unknown field "{k}"')
            continue
        if v is None and k in V1_TO_CORE or v is None and k in _V1_ALWAYS:
            continue  # (a null timestamp is an unset one)
        out[V1_TO_CORE.get(k, k)] = v
    if unknown and FIELD_STRICT.get():
        raise bad_request('Event in version "v1" cannot be handled as a Event: strict decoding error: '
                          + ", ".join(unknown))
    warn_fields(unknown)
    return out


class EventStrategy(Strategy):
    keep_status_on_create = True
    name_rule = "segment"

    def __init__(self, ttl_seconds: int | None = DEFAULT_TTL_S) -> None:
        self.ttl_seconds = ttl_seconds

    def to_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        return core_to_v1(obj) if info.group == "events.k8s.io" else obj

    def from_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        if info.group != "events.k8s.io":
            return obj
        validation.check_decodable(obj, info.gvk)  # a wrong JSON type is reported by its v1 name (400)
        return v1_to_core(obj)
