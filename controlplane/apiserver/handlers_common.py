"""What every API handler shares: resolving a URL to a resource, decoding request bodies,
reading query options and rendering responses.

URL shapes (as the real apiserver): ``/api/v1/...`` and ``/apis/<group>/<version>/...`` then
``[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]``. Neighbours: ``app.py`` routes here,
``handlers_read``/``handlers_write``/``handlers_delete``/``handlers_sub`` act on the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from sanic import Request
from sanic.response import HTTPResponse, raw

from controlplane.apiserver import errors
from controlplane.apiserver.registry import Registry, ResourceInfo
from controlplane.apiserver.store import dumps, loads

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = {
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml",
    "application/apply-patch+json",
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Resources whose names must be DNS-1123 labels (the rest: subdomains, events: path segments).
LABEL_NAMED = {("", "namespaces"), ("", "services")}
SEGMENT_NAMED = {("", "events"), ("events.k8s.io", "events")}


@dataclass
class Target:
    """What a request addresses."""

    info: ResourceInfo
    namespace: str | None  # None: all namespaces (lists/watches) or a cluster-scoped resource
    name: str | None
    subresource: str = ""


def resolve(registry: Registry, prefix: str, path: str) -> Target:
    """Map ``/api``/``/apis`` path segments after the group/version to a Target (404 if none)."""
    parts = [p for p in path.split("/") if p]
    if prefix == "api":
        if not parts:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = "", parts[0], parts[1:]
    else:
        if len(parts) < 2:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, rest = parts[0], parts[1], parts[2:]
    if not rest:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns_info = registry.get(group, version, rest[2])
        # /api/v1/namespaces/<ns>/<plural>... (but /api/v1/namespaces/<ns>/status|finalize
        # addresses the namespace itself)
        if not (group == "" and rest[2] in ("status", "finalize") and len(rest) == 3):
            if ns_info is None:
                raise _unknown(group, version, rest[2])
            namespace, rest = rest[1], rest[2:]
    info = registry.get(group, version, rest[0])
    if info is None:
        raise _unknown(group, version, rest[0])
    if namespace is not None and not info.namespaced:
        raise _unknown(group, version, rest[0])
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3 or (sub and not info.has(sub)):
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
    return Target(info, namespace, name, sub)


def _unknown(group: str, version: str, plural: str) -> errors.ApiError:
    gv = f"{group}/{version}" if group else version
    return errors.ApiError(404, "NotFound", f"the server could not find the requested resource ({plural} in {gv})",
                           details={"group": group, "kind": plural})


# --- bodies ---------------------------------------------------------------------------------

def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()


def raw_body(request: Request) -> bytes:
    body = request.body or b""
    if len(body) > MAX_BODY:
        raise errors.too_large(f"Request entity too large: limit is {MAX_BODY}")
    return body


def decode_body(request: Request) -> dict[str, Any]:
    """The request's object from JSON, YAML or Kubernetes protobuf (400 when malformed)."""
    body = raw_body(request)
    ctype = media_type(request)
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    if ctype == PROTOBUF:
        from controlplane.apiserver import protobuf  # H2c's decoder

        try:
            obj = protobuf.decode(body)
        except errors.ApiError:
            raise
        except Exception as e:  # noqa: BLE001 - any decoding failure is the client's
            raise errors.bad_request(f"unable to decode protobuf body: {e}") from None
    elif ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        obj = parse_yaml(body)
    elif ctype in (JSON, "*/*", "") or ctype.endswith("+json"):
        obj = parse_json(body)
    else:
        raise errors.unsupported_media_type(ctype)
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be an object")
    return obj


def parse_json(body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, TypeError) as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from None


def parse_yaml(body: bytes) -> Any:
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None


# --- query options --------------------------------------------------------------------------

def dry_run(request: Request) -> bool:
    values = request.args.getlist("dryRun") or []
    for v in values:
        if v != "All":
            raise errors.bad_request(f"dryRun: Unsupported value: {v!r}: supported values: \"All\"")
    return bool(values)


def field_validation(request: Request) -> str:
    v = request.args.get("fieldValidation") or "Warn"  # the server default since 1.27
    if v not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f"fieldValidation: Unsupported value: {v!r}")
    return v


def field_manager(request: Request, *, apply: bool = False) -> str:
    fm = request.args.get("fieldManager")
    if fm:
        if len(fm) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
        return fm
    if apply:
        raise errors.bad_request("PATCH, application/apply-patch+yaml, requires fieldManager to be set")
    ua = request.headers.get("user-agent") or "unknown"
    return ua.split("/")[0][:128]


def bool_arg(request: Request, name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("true", "1")


# --- names ----------------------------------------------------------------------------------

def name_causes(info: ResourceInfo, name: str, field: str = "metadata.name") -> list[dict[str, str]]:
    if not name:
        return [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                 "field": field}]
    gr = (info.group, info.plural)
    if gr in SEGMENT_NAMED:
        bad = name in (".", "..") or "/" in name or "%" in name
        return [{"reason": "FieldValueInvalid", "field": field,
                 "message": f'Invalid value: "{name}": may not contain \'/\' or \'%\''}] if bad else []
    if gr in LABEL_NAMED:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            return [{"reason": "FieldValueInvalid", "field": field, "message":
                     f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                     "alphanumeric characters or '-', and must start and end with an alphanumeric "
                     "character (e.g. 'my-name',  or '123-abc')"}]
        return []
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [{"reason": "FieldValueInvalid", "field": field, "message":
                 f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                 "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'example.com')"}]
    return []


# --- responses ------------------------------------------------------------------------------

def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    return raw(obj if isinstance(obj, bytes) else dumps(obj), status=status,
               content_type=JSON, headers=headers)


def status_response(err: errors.ApiError) -> HTTPResponse:
    return json_response(err.status(), status=err.code)


def success_status(info: ResourceInfo, name: str, uid: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": info.group, "kind": info.plural}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept") or ""
    return "as=Table" in accept and "g=meta.k8s.io" in accept
