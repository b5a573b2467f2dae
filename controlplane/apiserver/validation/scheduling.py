"""Validation of ``scheduling.controlplane.io/v1`` SchedulingDecision records (the scheduler's
decision log in the API): the fields a reader relies on are present and of the right kind.
Caller: ``rules.py``."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.meta.names import Errors

Obj = dict[str, Any]
RESULTS = ("Scheduled", "Unschedulable")


def scheduling_decision(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    pod = obj.get("pod")
    if not isinstance(pod, dict) or not pod.get("name"):
        errs.required("pod.name", "")
    elif (obj.get("metadata") or {}).get("namespace") not in (None, pod.get("namespace")):
        errs.invalid("pod.namespace", pod.get("namespace"), "does not match the record's namespace")
    if not obj.get("profile"):
        errs.required("profile", "")
    if obj.get("result") not in RESULTS:
        errs.not_supported("result", obj.get("result"), RESULTS)
    if obj.get("result") == "Scheduled" and not obj.get("node"):
        errs.required("node", "a Scheduled decision names its node")
    for field, kind in (("filters", list), ("candidates", list), ("nodes", dict)):
        if field in obj and not isinstance(obj[field], kind):
            errs.invalid(field, obj[field], f"must be a{'n object' if kind is dict else ' list'}")
