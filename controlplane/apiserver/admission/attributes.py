"""What an admission plugin is told about a request (apiserver's ``admission.Attributes``): the
operation (CREATE, UPDATE, DELETE, CONNECT), the resource and subresource, namespace and name,
the new and the old object, who is asking, whether it is a dry run, the options object; and
what a plugin may send back besides a refusal: warnings (the ``Warning`` header, through
``strategy.base.warn``) and audit annotations (the request's audit event).

``forbidden(a, message)`` is ``admission.NewForbidden``: ``pods "x" is forbidden: <message>``
with Kubernetes' Status details. ``AdmissionHost`` is what the chain needs of the apiserver
(``server.app.ApiServer`` provides it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.apiserver.discovery.registry import Registry, ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current
from controlplane.apiserver.persistence.caches import WatchCaches
from controlplane.apiserver.persistence.store import ObjectStore
from controlplane.apiserver.strategy.base import warn
from controlplane.machinery.userinfo import APISERVER, MASTERS, UserInfo

Obj = dict[str, Any]

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"
# the apiserver's own writes (start-up: system namespaces, bootstrap policy) run as this user
LOOPBACK_USER = UserInfo.make(APISERVER, [MASTERS])


class AdmissionHost(Protocol):
    """The apiserver state the chain reads (``server.app.ApiServer``)."""

    registry: Registry
    store: ObjectStore
    caches: WatchCaches


@dataclass(slots=True)
class Attributes:
    operation: str
    info: ResourceInfo
    subresource: str
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None
    dry_run: bool
    user: UserInfo
    options: Obj | None = None  # Create/Update/Delete/ConnectOptions (webhooks see it)

    @property
    def group(self) -> str:
        return self.info.group

    @property
    def resource(self) -> str:
        return self.info.plural

    def object_name(self) -> str:
        """The name, or the object's (a generated name is known once the strategy ran)."""
        if self.name:
            return self.name
        return str(((self.obj or self.old or {}).get("metadata") or {}).get("name") or "")

    def warn(self, *messages: str) -> None:
        warn(list(messages))

    def annotate(self, key: str, value: str) -> None:
        """An audit annotation on the request's audit event (kept first-write-wins, as Kubernetes)."""
        ctx = current()
        audit = ctx.audit if ctx is not None else None
        if audit is not None:
            audit.annotations.setdefault(key, value)

    def audit_level_at_least(self, level: str) -> bool:
        ctx = current()
        audit = ctx.audit if ctx is not None else None
        return audit is not None and audit.decision.at_least(level)


def make_attributes(operation: str, info: ResourceInfo, namespace: str | None, name: str | None, obj: Obj | None,
                    old: Obj | None, *, subresource: str = "", dry_run: bool = False,
                    options: Obj | None = None) -> Attributes:
    ctx = current()
    user = ctx.user if ctx is not None else LOOPBACK_USER
    return Attributes(operation, info, subresource, namespace or "", name or "", obj, old, dry_run, user, options)


def forbidden(a: Attributes, message: str) -> errors.ApiError:
    name = a.object_name()
    gr = a.info.group_resource
    text = f'{gr} "{name}" is forbidden: {message}' if name else f"{gr} is forbidden: {message}"
    return errors.ApiError(403, "Forbidden", text, details={"name": name, "group": a.info.group, "kind": a.info.plural})
