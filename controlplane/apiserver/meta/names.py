"""Kubernetes' field-error collector and name syntax checks (apimachinery's
``util/validation`` and ``util/validation/field``), with Kubernetes' exact messages.

Used by ``validation/`` (metadata and kind rules), ``crd/`` (CRD and custom resource schemas)
and the strategies' name checks.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from controlplane.machinery.selectors import validate_label_value

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
             "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


class GoValue(str):
    """A value already written as kube-apiserver prints it in ``Invalid value: …`` (Go's
    ``%#v`` of an internal struct such as ``apps.DeploymentStrategy{Type:"X", ...}``), passed
    through ``render`` as it is."""


def render(value: Any) -> str:
    """Go's ``%#v``-ish rendering used in ``Invalid value: …``."""
    if isinstance(value, GoValue):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True)


class Errors:
    """Accumulates ``StatusCause``s."""

    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []

    def add(self, reason: str, path: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": path})

    def required(self, path: str, detail: str = "") -> None:
        self.add("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        raw = value if isinstance(value, str) and value.startswith("map[") else render(value)
        self.add("FieldValueInvalid", path, f"Invalid value: {raw}: {detail}")

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        vals = ", ".join(json.dumps(s) for s in supported)
        self.add("FieldValueNotSupported", path, f"Unsupported value: {render(value)}: supported values: {vals}")

    def duplicate(self, path: str, value: Any) -> None:
        self.add("FieldValueDuplicate", path, f"Duplicate value: {render(value)}")

    def forbidden(self, path: str, detail: str) -> None:
        self.add("FieldValueForbidden", path, f"Forbidden: {detail}")

    def not_found(self, path: str, value: Any) -> None:
        self.add("FieldValueNotFound", path, f"Not found: {render(value)}")


def dns1123_label_error(value: str) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _LABEL_RE.match(value) else LABEL_MSG


def dns1123_subdomain_error(value: str) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 253:
        return "must be no more than 253 characters"
    return None if _SUBDOMAIN_RE.match(value) else SUBDOMAIN_MSG


def qualified_name_error(value: str) -> str | None:
    """``[prefix/]name``: prefix a DNS subdomain, name <= 63 chars of ``[-A-Za-z0-9_.]``."""
    if not isinstance(value, str):
        return "must be a string"
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        msg = dns1123_subdomain_error(prefix)
        if msg:
            return "prefix part " + msg
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QNAME_RE.match(name):
        return QNAME_MSG
    return None


def validate_labels(labels: Any, path: str, errs: Errors) -> None:
    if not isinstance(labels, dict):
        return
    for k, v in labels.items():
        msg = qualified_name_error(k)
        if msg:
            errs.invalid(path, k, msg)
        try:
            validate_label_value(v or "")
        except ValueError:
            errs.invalid(f"{path}", v, "a valid label must be an empty string or consist of alphanumeric "
                         "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                         "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                         "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")

