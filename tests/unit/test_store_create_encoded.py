"""``ObjectStore.create(encoded=...)``: the bytes handed back for the answer decode to exactly
the object ``create`` returns (resourceVersion included), for objects whose strings hold
JSON-looking text too."""

import asyncio
import json

import pytest

from controlplane.apiserver.persistence.store import ObjectStore
from controlplane.storage.interface import KeyExistsError, KeyValue


class _OneKeyBackend:
    """Just enough of a Backend for single creates (group commit off)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.rev = 41

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        if key in self.data:
            raise KeyExistsError(key)
        self.rev += 1
        self.data[key] = value
        return KeyValue(key, value, self.rev, self.rev)


class _Info:
    plural, group, kind = "events", "", "Event"
    namespaced = True
    strategy = object()


CASES = [
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a", "namespace": "ns", "uid": "u"},
     "message": 'tricky "metadata":{"x":1} text', "count": 1},
    {"kind": "Event", "apiVersion": "v1", "reason": "R",
     "metadata": {"namespace": "ns", "name": "b", "labels": {"k": "ü/ø"}}},
]


@pytest.mark.parametrize("obj", CASES)
def test_encoded_equals_returned_object(obj: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from controlplane.apiserver.persistence import store as store_mod
    monkeypatch.setattr(store_mod, "object_key", lambda info, ns, name: f"/registry/events/{ns}/{name}")
    store = ObjectStore(_OneKeyBackend(), group_commit=False)  # type: ignore[arg-type]
    encoded: list[bytes] = []
    out = asyncio.run(store.create(_Info(), json.loads(json.dumps(obj)), encoded=encoded))  # type: ignore[arg-type]
    assert out["metadata"]["resourceVersion"] == "42"
    assert len(encoded) == 1
    assert json.loads(encoded[0]) == out
