"""The strategy of a resource: what is particular about its writes (kube-apiserver's
``RESTCreateStrategy``/``RESTUpdateStrategy``/``RESTDeleteStrategy``, one per resource in
``pkg/registry/<group>/<resource>/strategy.go``).

``Strategy`` holds the defaults every resource starts from; each resource (or family) overrides
what differs in its own module of this package: defaulting (``set_defaults``), status reset and
initial state on create (``prepare_for_create``), generation tracking, name syntax, deletion
rules (grace period, termination, undeletable objects) and the hooks around the storage write
(``before_create`` and friends: a Service's clusterIP, a CRD's establishment). The registry
entry of each resource carries its strategy (``ResourceInfo.strategy``); the generic write
rules in ``generic.py`` and ``deletion.py`` call it, and so do the endpoints. Validation runs
through ``validation.objects.validate`` (built-ins) or the CRD schema (``customresource.py``).

The hooks get a ``StrategyContext``: the per-server state they may use (the Service IP
allocator, the CRD controller), which ``server.app.ApiServer`` provides.
"""

from __future__ import annotations

import contextvars
from typing import Any, Awaitable, Callable, Literal, Protocol

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import json_copy
from controlplane.apiserver.strategy.serviceips import ServiceIPAllocator
from controlplane.apiserver.validation import objects as validation
from controlplane.machinery.scale import set_based_selector_text

Obj = dict[str, Any]
NameRule = Literal["label", "subdomain", "segment"]
# kube-apiserver's FinishFunc: called once with whether the write was stored (commit) or not
# (revert), e.g. a Service's allocations taken before validation refused the update
Finish = Callable[[bool], Awaitable[None]]

# Warnings for the current request (unknown fields under fieldValidation=Warn), sent by the
# server's dispatch as ``Warning: 299 - "..."`` headers.
WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("warnings", default=None)


# ``fieldValidation=Ignore``: unknown fields are dropped without a warning (kube-apiserver's
# field validation directive; ``Warn``, the default, warns, ``Strict`` refuses). Set per
# request by the server's dispatch, with ``WARNINGS``.
FIELD_WARNINGS: contextvars.ContextVar[bool] = contextvars.ContextVar("field_warnings", default=True)
# ``fieldValidation=Strict``, for the strategies that find unknown fields themselves (a version
# converted before the generic decoding sees it, such as events.k8s.io/v1)
FIELD_STRICT: contextvars.ContextVar[bool] = contextvars.ContextVar("field_strict", default=False)


def warn(messages: list[str] | None) -> None:
    box = WARNINGS.get()
    if box is not None and messages:
        box.extend(m for m in messages if m not in box)


def warn_fields(messages: list[str] | None) -> None:
    """Warnings about the body's fields (unknown fields), unless ``fieldValidation=Ignore``."""
    if FIELD_WARNINGS.get():
        warn(messages)


class CrdLifecycle(Protocol):
    """What happens around CRD writes in this server (``server.crds.CrdController``)."""

    async def sync(self, crd: Obj) -> None:
        """After a CRD create/update: serve it, then write its status or clean it up."""

    async def forget(self, crd: Obj) -> None:
        """After a CRD left storage: stop serving its resources."""


class StrategyContext(Protocol):
    """The per-server state the strategies' hooks use (``server.app.ApiServer`` provides it)."""

    service_ips: ServiceIPAllocator
    crds: CrdLifecycle


class Strategy:
    """Defaults for every resource; subclasses override what their resource does differently."""

    # metadata.generation is set on create and bumped when the spec changes
    tracks_generation: bool = False
    # a create keeps the status the client sent (else it starts empty)
    keep_status_on_create: bool = False
    # syntax of metadata.name: DNS-1123 label, DNS-1123 subdomain, or any path segment
    name_rule: NameRule = "subdomain"
    # time to live of stored objects in seconds (an etcd lease on every write; None: forever)
    ttl_seconds: int | None = None

    # -- defaulting and validation -------------------------------------------------------------
    def set_defaults(self, obj: Obj) -> None:
        """Kubernetes' ``SetDefaults_<Kind>``, in place (nothing by default)."""

    def default(self, obj: Obj) -> Obj:
        """A defaulted copy of ``obj`` (``obj`` itself is left alone)."""
        out = json_copy(obj)
        self.set_defaults(out)
        return out

    def validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> list[str]:
        """Raise ApiError (400/422) when ``obj`` may not be stored; return warnings."""
        return validation.validate(obj, info.gvk, strict=strict, is_update=old is not None, old=old)

    def default_and_validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> Obj:
        """What every create and update goes through after the generic rules: defaults, then
        validation (its warnings go to the request's ``Warning`` headers)."""
        obj = self.default(obj)
        warn_fields(self.validate(info, obj, strict=strict, old=old))
        return obj

    def prepare_ephemeral_containers(self, info: ResourceInfo, old: Obj, new: Obj) -> Obj:
        """An update through ``<plural>/ephemeralcontainers`` (pods only, ``pod.py``)."""
        raise errors.method_not_allowed(f"{info.plural}/ephemeralcontainers is not supported")

    def default_and_validate_ephemeral_containers(self, info: ResourceInfo, obj: Obj, *, strict: bool,
                                                  old: Obj) -> Obj:
        raise errors.method_not_allowed(f"{info.plural}/ephemeralcontainers is not supported")

    # -- versions (a built-in served at a version other than its storage version) ----------------
    def to_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        """``obj`` as stored (``info.storage_version``) converted to ``info.version`` (the
        identity unless the resource is served at several versions)."""
        return obj

    def from_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        """``obj`` as sent at ``info.version`` converted to the storage version."""
        return obj

    # -- create and update -----------------------------------------------------------------------
    def prepare_for_create(self, info: ResourceInfo, obj: Obj) -> None:
        """The state a new object starts in, in place: an empty status unless the resource
        keeps the client's."""
        if info.has("status") and not self.keep_status_on_create:
            obj.pop("status", None)

    def prepare_for_update(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        """An update of the main resource, in place, before its defaults and validation
        (kube-apiserver's PrepareForUpdate): e.g. a Service drops what only its old type used."""

    # -- the /scale subresource (resources that serve it) ----------------------------------------
    def scale_paths(self, info: ResourceInfo) -> tuple[str, str]:
        """Where the desired and the observed replica counts live."""
        return ".spec.replicas", ".status.replicas"

    def scale_selector(self, info: ResourceInfo, obj: Obj) -> str:
        """``status.selector`` of the Scale: the pods the replicas are counted over."""
        return set_based_selector_text((obj.get("spec") or {}).get("selector"))

    def prepare_approval(self, old: Obj, new: Obj) -> Obj:
        """What an update through ``/approval`` stores (CertificateSigningRequests only)."""
        raise errors.method_not_allowed("approval is not supported on this resource")

    def prepare_finalize(self, info: ResourceInfo, old: Obj, new: Obj) -> Obj:
        """What an update through ``/finalize`` stores (namespaces only serve it)."""
        raise errors.method_not_allowed(f"PUT on {info.plural}/finalize is not supported")

    # -- deletion ----------------------------------------------------------------------------------
    def check_delete(self, info: ResourceInfo, name: str) -> None:
        """Raise ApiError when the object may never be deleted."""

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds the object stays terminating before it leaves storage (0: at once, once
        no finalizer is left)."""
        return 0

    def begin_termination(self, obj: Obj, current: Obj, finalizers: list[str]) -> Obj | None:
        """For a resource that manages its own termination (a namespace emptied by its
        controller): the object to store on delete. None: the generic graceful rules apply."""
        return None

    def deletion_blocked(self, obj: Obj) -> bool:
        """True while something other than ``metadata.finalizers`` holds a deleted object."""
        return False

    # -- around the storage write -----------------------------------------------------------------
    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> Finish | None:
        """Last step before a create is written (allocations; ``dry``: allocate nothing). May
        return a ``Finish``, called with whether the create was stored."""
        return None

    async def create_failed(self, ctx: StrategyContext, obj: Obj) -> None:
        """The create was not written: undo ``before_create``."""

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> Finish | None:
        """Runs before an update is validated and written (kube-apiserver's BeginUpdate). May
        return a ``Finish``, called once with whether this try was stored: the update path
        calls it with False when validation, admission or the write refuses it, or when a
        conflict makes it try again (``endpoints.write.write_update``)."""
        return None

    async def after_write(self, ctx: StrategyContext, obj: Obj) -> None:
        """After every successful create/update (not on dry runs)."""

    async def after_delete(self, ctx: StrategyContext, obj: Obj) -> None:
        """After the object left storage."""
