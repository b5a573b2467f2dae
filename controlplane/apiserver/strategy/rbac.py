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


class _RbacStrategy(Strategy):
    """Roles and bindings alike: RBAC validation, then the escalation check against the writer."""

    name_rule = "segment"  # RBAC names are path segments (system:..., colons allowed)
    default_kind = ""

    def causes(self, kind: str, obj: Obj, old: Obj | None) -> list[tuple[str, str]]:
        raise NotImplementedError

    def write_denied(self, ctx, kind: str, obj: Obj) -> str | None:  # noqa: ANN001 - request context
        raise NotImplementedError

    def validate(self, info: ResourceInfo, obj: Obj, *, strict: bool, old: Obj | None) -> list[str]:
        warnings = super().validate(info, obj, strict=strict, old=old)
        causes = self.causes(info.kind, obj, old)
        if causes:
            raise _invalid(info, obj, causes)
        return warnings

    def _check(self, obj: Obj) -> None:
        ctx = current()
        if ctx is None:
            return
        kind = obj.get("kind") or self.default_kind
        msg = self.write_denied(ctx, kind, obj)
        if msg:
            raise _forbidden(msg, kind, obj)

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> None:
        self._check(obj)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> None:
        self._check(new)


class RoleStrategy(_RbacStrategy):
    default_kind = "Role"

    def causes(self, kind: str, obj: Obj, old: Obj | None) -> list[tuple[str, str]]:
        return rbac_validation.validate_role(kind, obj)

    def write_denied(self, ctx, kind: str, obj: Obj) -> str | None:  # noqa: ANN001
        return ctx.authorizer.check_role_write(ctx.user, kind, obj)


class BindingStrategy(_RbacStrategy):
    default_kind = "RoleBinding"

    def causes(self, kind: str, obj: Obj, old: Obj | None) -> list[tuple[str, str]]:
        return rbac_validation.validate_binding(kind, obj, old)

    def write_denied(self, ctx, kind: str, obj: Obj) -> str | None:  # noqa: ANN001
        return ctx.authorizer.check_binding_write(ctx.user, kind, obj)

