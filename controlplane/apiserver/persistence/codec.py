"""How API objects become stored values and back, and where they live.

Values are compact JSON with ``apiVersion``, ``kind`` and ``metadata`` first and *without*
``metadata.resourceVersion`` (that is the key's ``mod_revision``). Because ``metadata`` is always
the third top-level key, ``with_rv`` can splice the resourceVersion into stored bytes without a
decode/encode round trip: lists and watch events are assembled from stored bytes directly.
Keys follow ``storage.interface``'s layout (``object_key``/``prefix`` by ``ResourceInfo``).
Neighbours: ``store.py`` (writes), ``watchcache_events.py`` (the same splice for cached
entries), the list handler (pages read straight from storage).
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta.jsonutil import dumps, loads
from controlplane.storage import interface as storage
from controlplane.storage.interface import KeyValue

_META = b'"metadata":{'


def encode(obj: dict[str, Any]) -> bytes:
    """Stored form: apiVersion, kind, metadata (without resourceVersion) first."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if "name" not in meta:
        meta["name"] = ""
    ordered: dict[str, Any] = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""),
                               "metadata": meta}
    for k, v in obj.items():
        if k not in ordered:
            ordered[k] = v
    return dumps(ordered)


def with_rv(value: bytes, rv: int) -> bytes:
    """Stored bytes with ``metadata.resourceVersion`` spliced in (see module docstring)."""
    i = value.find(_META)
    if i < 0:  # not written by encode(): fall back to a round trip
        obj = loads(value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        return dumps(obj)
    j = i + len(_META)
    return b"%s\"resourceVersion\":\"%d\",%s" % (value[:j], rv, value[j:])


def decode(kv: KeyValue) -> dict[str, Any]:
    obj = loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def object_key(info: ResourceInfo, namespace: str | None, name: str) -> str:
    return storage.object_key(info.key_group, info.plural, namespace if info.namespaced else None, name)


def prefix(info: ResourceInfo, namespace: str | None = None) -> str:
    return storage.resource_prefix(info.key_group, info.plural, namespace if info.namespaced else None)

