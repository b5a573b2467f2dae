"""Request bodies -> objects: JSON, YAML (alias expansion bounded) and Kubernetes protobuf, with
Kubernetes' 400/413/415 answers. Pure (bytes and a media type in); ``endpoints/common.py`` hands it the request's
body and Content-Type. Neighbours: ``protobuf.py`` (the protobuf decoder)."""

from __future__ import annotations

from typing import Any

import yaml

from controlplane.apiserver.encoding import protobuf
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import loads
from controlplane.machinery import yamlbounded

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit on request bodies
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def check_size(body: bytes) -> bytes:
    """``body``, or 413 when it is over the 3 MiB limit."""
    if len(body) > MAX_BODY:
        raise errors.too_large(f"Request entity too large: limit is {MAX_BODY}")
    return body


def decode(body: bytes, media_type: str) -> dict[str, Any]:
    """The object in ``body`` (400 when malformed or not an object, 415 for unknown types)."""
    check_size(body)
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    if media_type == PROTOBUF:
        try:
            obj = protobuf.decode(body)
        except errors.ApiError:
            raise
        except Exception as e:  # noqa: BLE001 - any decoding failure is the client's
            raise errors.bad_request(f"unable to decode protobuf body: {e}") from None
    elif media_type in YAML_TYPES:
        obj = parse_yaml(body)
    elif media_type in (JSON, "*/*", "") or media_type.endswith("+json"):
        obj = parse_json(body)
    else:
        raise errors.unsupported_media_type(media_type)
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be an object")
    return obj


def parse_json(body: bytes) -> Any:
    try:
        return loads(body)
    except (ValueError, TypeError) as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from None


def parse_yaml(body: bytes) -> Any:
    """YAML with alias expansion bounded as go-yaml bounds it (a "billion laughs" document is
    400 in well under a millisecond: ``machinery.yamlbounded``)."""
    try:
        return yamlbounded.load(body)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
