"""CustomResourceDefinitions (apiextensions-apiserver's ``customresourcedefinition`` strategy):
defaults (``conversion.strategy: None``, singular and listKind names), generation tracking,
the checks the server relies on to serve a CRD (names, group, scope, exactly one storage
version, a schema per version; on top of ``crd/validation.py``), the
``customresourcecleanup.apiextensions.k8s.io`` finalizer on create, and the hooks into this
server's CRD controller (``StrategyContext.crds``): after each write it serves the CRD and
sets its ``Established`` status (or cleans up a deleted CRD's objects); once the CRD left
storage its resources are no longer served.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.apiserver.strategy.base import Strategy, StrategyContext
from controlplane.apiserver.strategy.podtemplate import sub

Obj = dict[str, Any]
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_servable(crd: Obj) -> None:
    """The parts of CRD validation the server relies on to serve the resource (422)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = crd["metadata"].get("name", "")
    causes: list[dict[str, str]] = []

    def bad(field: str, msg: str) -> None:
        causes.append({"reason": "FieldValueInvalid", "field": field, "message": msg})

    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    if not group or "." not in group:
        bad("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot')
    if not plural or not _DNS_LABEL.match(plural):
        bad("spec.names.plural", f'Invalid value: "{plural}": a lowercase RFC 1123 label is required')
    if not kind:
        causes.append({"reason": "FieldValueRequired", "field": "spec.names.kind", "message": "Required value"})
    if name != f"{plural}.{group}":
        bad("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        bad("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"')
    versions = spec.get("versions") or []
    if not versions:
        causes.append({"reason": "FieldValueRequired", "field": "spec.versions", "message": "Required value: must have exactly one version marked as storage version"})
    elif sum(1 for v in versions if v.get("storage")) != 1:
        bad("spec.versions", "Invalid value: must have exactly one version marked as storage version")
    for i, v in enumerate(versions):
        if not (v.get("schema") or {}).get("openAPIV3Schema"):
            causes.append({"reason": "FieldValueRequired", "field": f"spec.versions[{i}].schema.openAPIV3Schema",
                           "message": "Required value: schemas are required"})
    if causes:
        raise errors.invalid("CustomResourceDefinition", name, causes, "apiextensions.k8s.io")


class CustomResourceDefinitionStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        sub(spec, "conversion").setdefault("strategy", "None")
        names = spec.get("names")
        if isinstance(names, dict):
            names.setdefault("singular", str(names.get("kind", "")).lower())
            names.setdefault("listKind", f"{names.get('kind', '')}List")

    async def before_create(self, ctx: StrategyContext, obj: Obj, *, dry: bool) -> None:
        check_servable(obj)
        fins = obj["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in fins:
            fins.append(CLEANUP_FINALIZER)

    async def before_update(self, ctx: StrategyContext, old: Obj, new: Obj, *, dry: bool) -> None:
        check_servable(new)

    async def after_write(self, ctx: StrategyContext, obj: Obj) -> None:
        await ctx.crds.sync(obj)

    async def after_delete(self, ctx: StrategyContext, obj: Obj) -> None:
        await ctx.crds.forget(obj)
