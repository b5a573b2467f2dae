"""Kubernetes ``Status`` errors. Every failure the API reports is an ``ApiError`` carrying the
HTTP code, Kubernetes reason and details (field causes) so the HTTP layer renders one shape.
Raised by every layer; rendered by ``endpoints.common.status_response``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        if causes:
            self.details["causes"] = causes

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:  # StatusReasonUnknown is "" and omitted, as metav1.Status marshals it
            del st["reason"]
        if self.details or self.reason == "NotFound":
            # a NotFound always carries details (NewNotFound), ``{}`` when it names nothing:
            # clients read them unchecked (kubectl debug dereferences details.name)
            st["details"] = self.details
        return st


def bad_request(message: str, **kw: Any) -> ApiError:
    return ApiError(400, "BadRequest", message, **kw)


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    gr = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{gr} "{name}" not found',
                    details={"name": name, "group": group, "kind": resource})


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    gr = f"{resource}.{group}" if group else resource
    return ApiError(409, "AlreadyExists", f'{gr} "{name}" already exists',
                    details={"name": name, "group": group, "kind": resource})


def conflict(resource: str, name: str, message: str, group: str = "") -> ApiError:
    gr = f"{resource}.{group}" if group else resource
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {gr} "{name}": {message}',
                    details={"name": name, "group": group, "kind": resource})


def invalid(kind: str, name: str, causes: list[dict[str, str]], group: str = "") -> ApiError:
    """422 Invalid. ``causes`` items: {"reason": "FieldValueInvalid", "message": ..., "field": "spec.x"}."""
    gk = f"{kind}.{group}" if group else kind
    msgs = "; ".join(f"{c.get('field', '')}: {c.get('message', '')}".lstrip(": ") for c in causes)
    return ApiError(422, "Invalid", f'{gk} "{name}" is invalid: {msgs}',
                    details={"name": name, "group": group, "kind": kind}, causes=causes)


def internal(message: str) -> ApiError:
    """500 InternalError as ``apierrors.NewInternalError(err)``: the error's text as the one cause."""
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", causes=[{"message": message}])


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(message: str = "the request is too large") -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")')


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)
