"""Server-side apply and managedFields bookkeeping (Kubernetes' fieldmanager + SMD's Updater).

API:

- ``server_side_apply(live, applied, *, manager, force, gvk, is_custom, now, subresource="",
  schema=None) -> dict``: merge the applied configuration into ``live`` (``None``: create) by
  list type (``map`` by list-map keys, ``set``, ``atomic``; built-ins fall back to patch merge
  keys), remove fields this manager applied before but no longer applies and nobody else owns,
  and record the manager's field set (operation ``Apply``). Changing a field another manager
  owns raises 409 ``Conflict`` with ``FieldManagerConflict`` causes unless ``force``, which takes
  ownership. The first apply on an object without managedFields first records its fields under
  ``before-first-apply``; ``kubectl`` may take over fields it last applied client-side
  (``last-applied-configuration``), and keeps that annotation in step.
- ``update_managed_fields(old, new, *, manager, operation, gvk, now, subresource="",
  schema=None) -> dict``: for create/update/patch: the manager takes the fields the write added
  or changed (operation ``Update``), other managers lose them and lose removed fields.
  ``managedFields: []`` (or ``[{}]``) in ``new`` resets the history first; absent -> live's.

``schema``: a CRD version's openAPIV3Schema for custom resources (lists atomic without it).
Both return new objects and never mutate their inputs. Hot paths (byte-identical to the
path-set definitions in ``managed_fields.py``): a create with no prior entries encodes its
one entry straight from the object (``fields_tree.fields_v1``); an update compares old and new
in one joint walk (``fields_diff.changes``); entries a write does not touch are written back
from their canonical FieldsV1 tree without decoding. Neighbours: ``managed_fields.py`` (paths,
FieldsV1), ``fields_tree.py``, ``fields_diff.py``, ``schema.py``; callers:
``strategy/generic.py`` (managedFields of every write) and ``endpoints/write.py`` (apply).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch import fields_diff, fields_tree
from controlplane.apiserver.patch import managed_fields as mf
from controlplane.apiserver.patch.schema import Node, builtin_node, crd_node
from controlplane.apiserver.patch.ssa_merge import merge_applied, prune

Path = mf.Path
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
MAX_UPDATE_MANAGERS = 10
_OBJECT_META = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
# stripMetaManager: never part of any field set.
STRIPPED: set[Path] = {("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", "f:" + k) for k in ("name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                                       "generation", "managedFields", "resourceVersion", "deletionTimestamp",
                                       "deletionGracePeriodSeconds")}


class Owner:
    """One managedFields entry. Its field set is held either as a set of paths or, as decoded
    from a canonical entry, as the FieldsV1 tree itself: an entry a write does not touch is
    written back without decoding and re-encoding it."""

    __slots__ = ("manager", "operation", "api_version", "subresource", "time", "_fields", "_tree", "_own")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str, time: str | None,
                 fields: set[Path]) -> None:
        self.manager, self.operation, self.api_version = manager, operation, api_version
        self.subresource, self.time = subresource, time
        self._fields: set[Path] | None = fields
        self._tree: dict[str, Any] | None = None
        self._own = False  # whether _tree is this owner's copy (else the input's: read only)

    @classmethod
    def from_entry(cls, manager: str, operation: str, api_version: str, subresource: str, time: str | None,
                   fields_v1: Any) -> "Owner":
        if not fields_tree.is_canonical(fields_v1):
            return cls(manager, operation, api_version, subresource, time, mf.decode_fields(fields_v1))
        o = cls(manager, operation, api_version, subresource, time, set())
        o._fields, o._tree = None, fields_v1
        return o

    @property
    def fields(self) -> set[Path]:
        if self._fields is None:
            self._fields = mf.decode_fields(self._tree)
            self._tree = None
        return self._fields

    @fields.setter
    def fields(self, value: set[Path]) -> None:
        self._fields, self._tree = value, None

    def drop(self, paths: set[Path]) -> None:
        """Lose ``paths`` (fields another write took over or removed)."""
        if self._tree is None:
            self._fields -= paths  # type: ignore[operator]
            return
        hit = [p for p in paths if fields_tree.has_member(self._tree, p)]
        if hit:
            if not self._own:
                self._tree, self._own = fields_tree.copy_tree(self._tree), True
            fields_tree.remove_members(self._tree, hit)

    def empty(self) -> bool:
        return not (self._tree if self._tree is not None else self._fields)

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # Appliers are one identity whatever the version they applied (BuildManagerIdentifier).
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version, self.subresource)

    def describe(self) -> str:
        s = json.dumps(self.manager)
        if self.subresource:
            s += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s

    def entry(self) -> dict[str, Any]:
        e: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            e["time"] = self.time
        e["fieldsType"] = "FieldsV1"
        if self._tree is not None:
            e["fieldsV1"] = self._tree if self._own else fields_tree.copy_tree(self._tree)
        else:
            e["fieldsV1"] = mf.encode_fields(self.fields)
        if self.subresource:
            e["subresource"] = self.subresource
        return e


Owners = dict[tuple[str, str, str, str], Owner]


def _api_version(gvk: tuple[str, str, str]) -> str:
    return f"{gvk[0]}/{gvk[1]}" if gvk[0] else gvk[1]


_CR_NODES: dict[int, tuple[Any, Node | None]] = {}


def root_node(gvk: tuple[str, str, str], is_custom: bool, schema: dict[str, Any] | None) -> Node | None:
    """The schema root for an object: built-in definitions, or the CRD schema with ObjectMeta
    (cached per schema object, so its lazily built children are reused)."""
    if not is_custom:
        return builtin_node(tuple(gvk))  # type: ignore[arg-type]
    hit = _CR_NODES.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_CR_NODES) > 256:
        _CR_NODES.clear()
    node = _cr_root(schema)
    _CR_NODES[id(schema)] = (schema, node)
    return node


def _cr_root(schema: dict[str, Any] | None) -> Node | None:
    raw = dict(schema) if isinstance(schema, dict) else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    raw["properties"] = {**(raw.get("properties") or {}), "metadata": _OBJECT_META,
                         "apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    return crd_node(raw)


def decode_owners(entries: Any) -> Owners:
    owners: Owners = {}
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or not e.get("manager") and not e.get("fieldsV1"):
            continue
        o = Owner.from_entry(str(e.get("manager") or ""), str(e.get("operation") or "Update"),
                             str(e.get("apiVersion") or ""), str(e.get("subresource") or ""), e.get("time"),
                             e.get("fieldsV1"))
        if o.ident in owners:
            owners[o.ident].fields |= o.fields
        else:
            owners[o.ident] = o
    return owners


def encode_owners(owners: Owners) -> list[dict[str, Any]]:
    live = [o for o in owners.values() if not o.empty()]
    live.sort(key=lambda o: (o.operation, o.time or "", o.manager, o.api_version, o.subresource))
    return [o.entry() for o in live]


def _cap_updaters(owners: Owners, now: str) -> None:
    """capManagersManager: more than 10 Update entries -> the oldest merge into ancient-changes."""
    updaters = sorted((o for o in owners.values() if o.operation == "Update" and o.manager != "ancient-changes"),
                      key=lambda o: o.time or "")
    while len(updaters) > MAX_UPDATE_MANAGERS:
        oldest = updaters.pop(0)
        del owners[oldest.ident]
        anc = Owner("ancient-changes", "Update", oldest.api_version, "", oldest.time, set())
        owners.setdefault(anc.ident, anc).fields |= oldest.fields


def _reset_prefixes(obj_keys: set[str], node: Node | None, subresource: str, has_status: bool) -> set[Path]:
    """Fields a write through this endpoint may not own (status via the main resource, the
    rest via /status)."""
    if subresource == "status":
        return {("f:" + k,) for k in obj_keys | {"spec"} if k not in ("status", "metadata", "apiVersion", "kind")}
    if subresource == "" and has_status:
        return {("f:status",)}
    return set()


def _has_status(node: Node | None, obj: dict[str, Any] | None) -> bool:
    if node is not None and "status" in (node.raw.get("properties") or {}):
        return True
    return bool(obj and "status" in obj)


def _strip_managed(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def _set_managed(obj: dict[str, Any], owners: Owners) -> dict[str, Any]:
    meta = obj.setdefault("metadata", {})
    entries = encode_owners(owners)
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
    return obj


def _changes(old: dict[str, Any], new: dict[str, Any], node: Node | None, ignore: set[Path]) -> mf.Comparison:
    if all(len(q) == 1 and q[0][:2] == "f:" for q in ignore):
        # reset top-level fields are not walked at all, which leaves the stripped ones to drop
        c = fields_diff.changes(old, new, node, granular_maps=True, skip=frozenset(q[0][2:] for q in ignore))
        return mf.Comparison({p for p in c.added if p not in STRIPPED}, {p for p in c.modified if p not in STRIPPED},
                             {p for p in c.removed if p not in STRIPPED})
    c = fields_diff.changes(old, new, node, granular_maps=True)
    return mf.Comparison(mf.without(c.added, STRIPPED, ignore), mf.without(c.modified, STRIPPED, ignore),
                         mf.without(c.removed, STRIPPED, ignore))


def _record_update(owners: Owners, old: dict[str, Any], new: dict[str, Any], node: Node | None, *, manager: str,
                   operation: str, api_version: str, subresource: str, now: str, ignore: set[Path]) -> None:
    c = _changes(old, new, node, ignore)
    changed = c.changed
    dropped = changed | c.removed
    if dropped:
        for o in owners.values():
            o.drop(dropped)
    if changed:
        me = Owner(manager, operation, api_version, subresource, now, set())
        owners.setdefault(me.ident, me).fields |= changed
        owners[me.ident].time = now
    for ident in [i for i, o in owners.items() if o.empty()]:
        del owners[ident]


def _record_create(new: dict[str, Any], node: Node | None, *, manager: str, operation: str, api_version: str,
                   subresource: str, now: str, ignore: set[Path]) -> dict[str, Any]:
    """``_record_update`` from nothing with no prior owners: the manager owns every member
    (less the stripped and reset ones), encoded straight from the object."""
    tree = fields_tree.fields_v1(new, node, granular_maps=True, exact=STRIPPED, prefixes=ignore)
    meta = new.setdefault("metadata", {})
    if not tree:
        meta.pop("managedFields", None)
        return new
    e: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version}
    if now:
        e["time"] = now
    e["fieldsType"] = "FieldsV1"
    e["fieldsV1"] = tree
    if subresource:
        e["subresource"] = subresource
    meta["managedFields"] = [e]
    return new


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, operation: str,
                          gvk: tuple[str, str, str], now: str, subresource: str = "",
                          schema: dict[str, Any] | None = None, is_custom: bool | None = None,
                          status_subresource: bool | None = None) -> dict[str, Any]:
    """Record a create/update/patch by ``manager`` in ``new``'s managedFields (returns a copy).
    ``status_subresource``: whether status is written only through /status (default: built-ins
    whose schema has a status; custom resources: no unless told)."""
    custom = is_custom if is_custom is not None else builtin_node(tuple(gvk)) is None  # type: ignore[arg-type]
    node = root_node(gvk, custom, schema)
    sent = (new.get("metadata") or {}).get("managedFields", None)
    if subresource or old is None and sent is None:
        owners = decode_owners((old or {}).get("metadata", {}).get("managedFields"))
    elif isinstance(sent, list) and (sent == [] or sent == [{}]):
        owners = {}
    else:
        owners = decode_owners(sent)
        if not owners:
            owners = decode_owners((old or {}).get("metadata", {}).get("managedFields"))
    old_c, new_c = _strip_managed(old), _strip_managed(new)  # shallow: only metadata is replaced
    has_status = status_subresource if status_subresource is not None else (not custom and _has_status(node, None))
    ignore = _reset_prefixes(set(new_c), node, subresource, has_status)
    if not old_c and not owners:
        return _record_create(new_c, node, manager=manager, operation=operation or "Update",
                              api_version=_api_version(gvk), subresource=subresource, now=now, ignore=ignore)
    _record_update(owners, old_c, new_c, node, manager=manager, operation=operation or "Update",
                   api_version=_api_version(gvk), subresource=subresource, now=now, ignore=ignore)
    _cap_updaters(owners, now)
    return _set_managed(new_c, owners)


def _conflict_error(conflicts: list[tuple[Owner, Path]]) -> errors.ApiError:
    causes = [{"reason": "FieldManagerConflict",
               "message": f"conflict with {o.describe()}", "field": mf.path_string(p)} for o, p in conflicts]
    if len(conflicts) == 1:
        o, p = conflicts[0]
        msg = f"Apply failed with 1 conflict: conflict with {o.describe()}: {mf.path_string(p)}"
    else:
        by: dict[str, list[str]] = {}
        for o, p in conflicts:
            by.setdefault(o.describe(), []).append(mf.path_string(p))
        parts = []
        for who in sorted(by):
            parts.append(f"conflicts with {who}:")
            parts.extend(f"- {p}" for p in sorted(by[who]))
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(parts)
    return errors.ApiError(409, "Conflict", msg, causes=causes)


def _allowed_from_last_applied(live: dict[str, Any], node: Node | None) -> set[Path]:
    """Fields kubectl applied client-side whose live values still equal what it applied."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return set()
    try:
        last = json.loads(raw)
    except ValueError:
        return set()
    if not isinstance(last, dict):
        return set()
    lm, cur = mf.members(last, node), mf.members(live, node)
    return {p for p, (leaf, v) in lm.items() if p in cur and (not leaf or mf._same(v, cur[p][1]))}


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool,
                      gvk: tuple[str, str, str], is_custom: bool, now: str, subresource: str = "",
                      schema: dict[str, Any] | None = None, status_subresource: bool | None = None) -> dict[str, Any]:
    """Apply ``applied`` as ``manager`` onto ``live`` (None: create); returns the new object.
    ``status_subresource`` as for ``update_managed_fields``."""
    if not isinstance(applied, dict):
        raise errors.bad_request("the apply configuration must be an object")
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    node = root_node(gvk, is_custom, schema)
    api_version = _api_version(gvk)
    live_c = _strip_managed(copy.deepcopy(live)) if live is not None else {}
    owners = decode_owners((live or {}).get("metadata", {}).get("managedFields"))
    has_status = status_subresource if status_subresource is not None else (not is_custom and _has_status(node, None))
    ignore = _reset_prefixes(set(applied) | set(live_c), node, subresource, has_status)
    if live is not None and not owners:
        _record_update(owners, {}, live_c, node, manager=BEFORE_FIRST_APPLY, operation="Update",
                       api_version=api_version, subresource="", now=now, ignore=ignore)
    config = {k: copy.deepcopy(v) for k, v in applied.items() if ("f:" + k,) not in ignore}
    try:
        return _apply(live_c, config, owners, node, manager=manager, force=force, api_version=api_version,
                      subresource=subresource, now=now, ignore=ignore, created=live is None)
    except errors.ApiError as e:
        conflicts = getattr(e, "ssa_conflicts", None)
        if manager != "kubectl" or not conflicts or live is None:
            raise
        allowed = _allowed_from_last_applied(live_c, node)
        if any(p not in allowed for _, p in conflicts):
            raise _conflict_error([(o, p) for o, p in conflicts if p not in allowed]) from None
        return _apply(live_c, config, owners, node, manager=manager, force=True, api_version=api_version,
                      subresource=subresource, now=now, ignore=ignore, created=False)


def _apply(live: dict[str, Any], config: dict[str, Any], owners: Owners, node: Node | None, *, manager: str,
           force: bool, api_version: str, subresource: str, now: str, ignore: set[Path],
           created: bool) -> dict[str, Any]:
    owners = {i: Owner(o.manager, o.operation, o.api_version, o.subresource, o.time, set(o.fields))
              for i, o in owners.items()}
    merged = merge_applied(live, config, node)
    me = Owner(manager, "Apply", api_version, subresource, now, set())
    last = owners.get(me.ident)
    applied_set = mf.without(mf.members(config, node), STRIPPED, ignore)
    me.fields = applied_set
    if last is not None:
        me.time = last.time
    owners[me.ident] = me
    if last is not None and last.fields:
        # identity fields and reset fields are never owned and never pruned
        owned: set[Path] = set().union(*(o.fields for o in owners.values())) | STRIPPED | ignore
        merged = prune(merged, node, last.fields, owned)
    c = _changes(live, merged, node, ignore)
    conflicts = [(o, p) for i, o in owners.items() if i != me.ident for p in sorted(o.fields & c.changed)]
    if conflicts and not force:
        err = _conflict_error(conflicts)
        err.ssa_conflicts = conflicts  # type: ignore[attr-defined]
        raise err
    for i, o in owners.items():
        if i != me.ident:
            o.fields -= c.changed | c.removed
    if created or merged != live or last is None:
        me.time = now
    for ident in [i for i, o in owners.items() if not o.fields]:
        del owners[ident]
    _cap_updaters(owners, now)
    if manager == "kubectl":
        _sync_last_applied(merged, config)
    return _set_managed(merged, owners)


def _sync_last_applied(obj: dict[str, Any], config: dict[str, Any]) -> None:
    """lastAppliedUpdater: kubectl's server-side apply keeps an existing client-side
    ``last-applied-configuration`` annotation equal to what it applied."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(LAST_APPLIED):
        return
    last = copy.deepcopy(config)
    ann = (last.get("metadata") or {}).get("annotations")
    if isinstance(ann, dict):
        ann.pop(LAST_APPLIED, None)
        if not ann:
            last["metadata"].pop("annotations")
    annotations[LAST_APPLIED] = json.dumps(last, separators=(",", ":"), sort_keys=True) + "\n"
