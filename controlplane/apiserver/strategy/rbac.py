"""RBAC resources (``pkg/registry/rbac``): Roles, ClusterRoles, RoleBindings and
ClusterRoleBindings. Validation (``validation/rbac.py``), and on every create and update the
escalation check (a role may only grant what its writer holds, unless they may ``escalate``)
and the bind check (a binding only to a role its writer may ``bind`` or fully holds), through
the request's authorizer (``meta.request``). Writes without a request context (the apiserver's
own bootstrap policy) are not checked, as kube-apiserver's own are not.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current
from controlplane.apiserver.strategy.base import Strategy, StrategyContext
from controlplane.apiserver.validation import rbac as rbac_validation

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


def _forbidden(message: str, kind: str, obj: Obj) -> errors.ApiError:
    plural = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
              "ClusterRoleBinding": "clusterrolebindings"}[kind]
    return errors.ApiError(403, "Forbidden", message,
                           details={"name": (obj.get("metadata") or {}).get("name", ""), "group": GROUP, "kind": plural})


def _invalid(info: ResourceInfo, obj: Obj, causes: list[tuple[str, str]]) -> errors.ApiError:
    return errors.invalid(info.kind, (obj.get("metadata") or {}).get("name", ""),
                          [{"reason": "FieldValueInvalid", "field": f, "message": m} for f, m in causes], GROUP)


class RoleStrategy(Strategy):
    name_rule = "segment"  # RBAC names are path segments (system:..., colons allowed)

    def validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> list[str]:
        warnings = super().validate(info, obj, strict=strict, old=old)
        causes = rbac_validation.validate_role(info.kind, obj)
        if causes:
            raise _invalid(info, obj, causes)
        return warnings

    def _check(self, kind: str, obj: Obj) -> None:
        ctx = current()
        if ctx is None:
            return
        msg = ctx.authorizer.check_role_write(ctx.user, kind, obj)
        if msg:
            raise _forbidden(msg, kind, obj)

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> None:
        self._check(obj.get("kind") or "Role", obj)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> None:
        self._check(new.get("kind") or "Role", new)


class BindingStrategy(Strategy):
    name_rule = "segment"

    def validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> list[str]:
        warnings = super().validate(info, obj, strict=strict, old=old)
        causes = rbac_validation.validate_binding(info.kind, obj, old)
        if causes:
            raise _invalid(info, obj, causes)
        return warnings

    def _check(self, kind: str, obj: Obj) -> None:
        ctx = current()
        if ctx is None:
            return
        msg = ctx.authorizer.check_binding_write(ctx.user, kind, obj)
        if msg:
            raise _forbidden(msg, kind, obj)

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> None:
        self._check(obj.get("kind") or "RoleBinding", obj)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> None:
        self._check(new.get("kind") or "RoleBinding", new)
