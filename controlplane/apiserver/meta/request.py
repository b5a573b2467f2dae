"""The request's security context, for every layer below the server's filters: who is asking
(``user``; ``authenticated_as`` is the real user when it impersonates another), what they asked
(the authorization ``attrs``) and an ``authorizer`` to ask further questions -- what the
admission chain and the RBAC strategies (escalation and ``bind`` checks) need.

The server's filters set it for the duration of a request (``CURRENT``); code below reads it
with ``current()`` (None outside a request: start-up writes, the bootstrap policy). The
authorizer is a ``Protocol`` here so that nothing below the server imports the authorization
package (``server.security.Security`` implements it).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.machinery.userinfo import UserInfo


class Authorizer(Protocol):
    def allowed(self, user: UserInfo, verb: str, *, group: str = "", resource: str = "", subresource: str = "",
                namespace: str = "", name: str = "", path: str = "") -> bool:
        """Whether ``user`` may ``verb`` the resource (or non-resource ``path``)."""
        ...

    def check_role_write(self, user: UserInfo, kind: str, obj: dict[str, Any]) -> str | None:
        """RBAC escalation check of a Role/ClusterRole write: None, or the Forbidden message."""
        ...

    def check_binding_write(self, user: UserInfo, kind: str, obj: dict[str, Any]) -> str | None:
        """RBAC ``bind`` check of a RoleBinding/ClusterRoleBinding write."""
        ...


@dataclass
class RequestContext:
    user: UserInfo
    attrs: Any  # authorization.attributes.Attributes of the request
    authorizer: Authorizer
    authenticated_as: UserInfo | None = None
    audit: Any = None  # audit.event.AuditContext when the request is audited

    def allowed(self, verb: str, **kw: str) -> bool:
        return self.authorizer.allowed(self.user, verb, **kw)


CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("request_context", default=None)


def current() -> RequestContext | None:
    return CURRENT.get()


# The group and version the request addressed (kube-apiserver's RequestInfo APIGroup/APIVersion,
# read from the request context): one resource served by several groups validates by it
# (an Event created through events.k8s.io/v1 is checked more strictly than one created through
# core/v1). Set by the server's dispatch around every resource request; None outside one.
GROUP_VERSION: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("group_version", default=None)


def group_version() -> tuple[str, str] | None:
    return GROUP_VERSION.get()
