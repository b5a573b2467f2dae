"""The informer's cache bookkeeping without a server: upserts, deletes and a relist's diff
replayed to handlers, with every index kept in step; plus controller-manager flag parsing."""

from __future__ import annotations

import pytest

from controlplane.client import resources as R
from controlplane.client.informer import Informer, object_key, split_key
from controlplane.cmd.controller_manager import ALL_CONTROLLERS, parse_controllers


def pod(name: str, rv: str, ns: str = "a", node: str | None = None, owner: str | None = None, labels=None) -> dict:
    md = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "resourceVersion": rv, "labels": labels or {}}
    if owner:
        md["ownerReferences"] = [{"uid": owner, "kind": "ReplicaSet", "name": "rs", "apiVersion": "apps/v1"}]
    return {"metadata": md, "spec": {"nodeName": node} if node else {}}


def make() -> tuple[Informer, list[tuple[str, str]]]:
    inf = Informer(None, R.PODS)  # type: ignore[arg-type]  # no I/O in these tests
    seen: list[tuple[str, str]] = []
    inf.add_handler(lambda t, o, old: seen.append((t, o["metadata"]["name"])))
    return inf, seen


def test_keys():
    assert object_key(pod("p", "1")) == "a/p"
    assert object_key({"metadata": {"name": "n1"}}) == "n1"
    assert split_key("a/p") == ("a", "p") and split_key("n1") == (None, "n1")


def test_upsert_remove_and_indexes():
    inf, seen = make()
    inf._upsert(pod("p1", "1", node="n1", owner="rs1", labels={"app": "x"}))
    inf._upsert(pod("p2", "2", ns="b", node="n1"))
    assert {o["metadata"]["name"] for o in inf.by_node("n1")} == {"p1", "p2"}
    assert [o["metadata"]["name"] for o in inf.by_owner("rs1")] == ["p1"]
    assert [o["metadata"]["name"] for o in inf.list("b")] == ["p2"]
    assert inf.by_uid("uid-a-p1")["metadata"]["name"] == "p1"
    inf._upsert(pod("p1", "3", node="n2"))  # moved node, lost owner
    assert inf.by_owner("rs1") == [] and [o["metadata"]["name"] for o in inf.by_node("n2")] == ["p1"]
    assert len(inf.by_node("n1")) == 1
    inf._remove(pod("p2", "4", ns="b"))
    assert inf.list("b") == [] and inf.by_node("n1") == []
    assert seen == [("ADDED", "p1"), ("ADDED", "p2"), ("MODIFIED", "p1"), ("DELETED", "p2")]


def test_relist_replays_only_the_difference():
    inf, seen = make()
    for p in (pod("keep", "1"), pod("change", "1"), pod("gone", "1")):
        inf._upsert(p)
    seen.clear()
    inf._replace([pod("keep", "1"), pod("change", "7"), pod("new", "8")])
    assert sorted(seen) == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "change")]
    assert sorted(inf.keys()) == ["a/change", "a/keep", "a/new"]
    assert len(inf.by_index("namespace", "a")) == 3


def test_custom_index_and_late_handler():
    inf, _ = make()
    inf._upsert(pod("p1", "1", labels={"tier": "web"}))
    inf.add_index("tier", lambda o: [o["metadata"]["labels"].get("tier", "")])
    assert [o["metadata"]["name"] for o in inf.by_index("tier", "web")] == ["p1"]
    with pytest.raises(ValueError):
        inf.add_index("tier", lambda o: [])
    late: list[str] = []
    inf.add_handler(lambda t, o, old: late.append(t))
    assert late == ["ADDED"], "a handler added late gets the cached objects"


@pytest.mark.parametrize("spec,expected", [
    (None, ALL_CONTROLLERS),
    ("*", ALL_CONTROLLERS),
    ("deployment,replicaset", ["deployment", "replicaset"]),
    ("*,-job,-namespace", [c for c in ALL_CONTROLLERS if c not in ("job", "namespace")]),
], ids=["default", "star", "list", "star-minus"])
def test_parse_controllers(spec, expected):
    assert parse_controllers(spec) == expected


def test_parse_controllers_rejects_unknown():
    with pytest.raises(SystemExit):
        parse_controllers("deployment,nope")
