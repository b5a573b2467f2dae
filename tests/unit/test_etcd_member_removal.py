"""The etcd member controller's pure rules (``cmd/etcdmembers.py``): which member of a deleted or
annotated server Node may be removed, given the member list, learners, started and reachable
members and the member the deciding server runs; and the metadata a server keeps on its Node."""

from __future__ import annotations

import pytest

from controlplane.cmd import etcdmembers as em
from controlplane.storage.etcd_admin import Member


def member(i: int, name: str | None = None, *, learner: bool = False, started: bool = True) -> Member:
    name = (name if name is not None else f"s{i}") if started else ""
    return Member(i, name, [f"https://127.0.0.1:{2380 + i}"], [f"https://127.0.0.1:{2379 + i}"] if started else [],
                  learner)


def node(member_name: str | None = "s3", *, deleting: bool = False, remove: str | None = None,
         removed: str | None = None, etcd: bool = True, finalizer: bool = True, address: str | None = None) -> dict:
    ann: dict[str, str] = {}
    if member_name is not None:
        ann[em.NODE_NAME_ANNOTATION] = member_name
    if address is not None:
        ann[em.NODE_ADDRESS_ANNOTATION] = address
    if remove is not None:
        ann[em.REMOVE_ANNOTATION] = remove
    if removed is not None:
        ann[em.REMOVED_ANNOTATION] = removed
    md: dict = {"name": "n", "labels": {em.ETCD_ROLE_LABEL: "true"} if etcd else {}, "annotations": ann,
                "finalizers": [em.FINALIZER] if finalizer else []}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T20:00:00Z"
    return {"apiVersion": "v1", "kind": "Node", "metadata": md}


THREE = [member(1), member(2), member(3)]
ALL = {1, 2, 3}

CASES = [
    # (id, node, members, self id, reachable, action, member id removed/concerned, reason contains)
    ("not-an-etcd-node", node(deleting=True, etcd=False), THREE, 1, ALL, em.NOTHING, None, ""),
    ("nothing-asked", node(), THREE, 1, ALL, em.NOTHING, None, ""),
    ("remove-false", node(remove="false"), THREE, 1, ALL, em.NOTHING, None, ""),
    ("deleting-without-our-finalizer", node(deleting=True, finalizer=False), THREE, 1, ALL, em.NOTHING, None, ""),
    ("deleted-dead-member-of-three", node(deleting=True), THREE, 1, {1, 2}, em.REMOVE, 3, "2 of 2"),
    ("annotated-TRUE-parsebool", node(remove="TRUE"), THREE, 1, ALL, em.REMOVE, 3, ""),
    ("annotated-1-parsebool", node(remove="1"), THREE, 1, ALL, em.REMOVE, 3, ""),
    ("annotated-already-removed", node(remove="true", removed="s3"), THREE[:2], 1, {1, 2}, em.NOTHING, None, ""),
    ("deleting-already-removed", node(deleting=True, removed="s3"), THREE[:2], 1, {1, 2}, em.FINISH, None,
     "already removed"),
    ("member-gone-finish-delete", node(deleting=True), THREE[:2], 1, {1, 2}, em.FINISH, None, "not in the member list"),
    ("member-gone-finish-annotated", node(remove="true"), THREE[:2], 1, {1, 2}, em.FINISH, None, "not in the member"),
    ("never-self", node("s1", deleting=True), THREE, 1, ALL, em.WAIT, 1, "this server runs"),
    ("never-the-last-annotated", node("s1", remove="true"), [member(1)], 1, {1}, em.WAIT, 1, "last member"),
    ("last-member-node-deleted-keeps-member", node("s1", deleting=True), [member(1)], 1, {1}, em.FINISH, 1,
     "last member: kept"),
    ("quorum-lost-another-down", node(deleting=True), THREE, 1, {1}, em.WAIT, 3, "1 of 2"),
    ("two-members-other-alive", node("s2", deleting=True), THREE[:2], 1, {1}, em.REMOVE, 2, "1 of 1"),
    ("five-one-other-down", node("s5", deleting=True), [member(i) for i in range(1, 6)], 1, {1, 2, 3},
     em.REMOVE, 5, "3 of 4"),
    ("five-two-others-down", node("s5", deleting=True), [member(i) for i in range(1, 6)], 1, {1, 2},
     em.WAIT, 5, "quorum needs 3"),
    ("unstarted-member-counts-as-down", node(deleting=True), [member(1), member(2, started=False), member(3)], 1,
     {1, 3}, em.WAIT, 3, "1 of 2"),
    ("learner-always-removable", node(deleting=True), [member(1), member(3, learner=True)], 1, {1}, em.REMOVE, 3,
     "learner"),
    ("learner-does-not-count-for-quorum", node(deleting=True),
     [member(1), member(2, learner=True), member(3)], 1, {1, 2, 3}, em.REMOVE, 3, "1 of 1"),
    ("only-a-learner-would-be-left", node("s1", deleting=True), [member(1), member(2, learner=True)], 2, {1, 2},
     em.WAIT, 1, "0 of 0"),
    ("no-member-name-deleting", node(None, deleting=True), THREE, 1, ALL, em.FINISH, None, "no etcd member"),
    ("no-member-name-annotated", node(None, remove="true"), THREE, 1, ALL, em.WAIT, None, "annotation"),
    ("address-must-match", node(deleting=True, address="10.0.0.3"), THREE, 1, ALL, em.FINISH, None,
     "not in the member list"),
    ("address-matches", node(deleting=True, address="127.0.0.1"), THREE, 1, ALL, em.REMOVE, 3, ""),
]


@pytest.mark.parametrize("n,members,self_id,reachable,action,mid,reason", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_decide(n, members, self_id, reachable, action, mid, reason):
    d = em.decide(n, members, self_id, reachable)
    assert d.action == action, d
    assert (d.member.id if d.member else None) == mid, d
    assert reason in d.reason, d


def _own(labels=None, ann=None, fins=None, deleting=False) -> dict:
    md = {"name": "ha-s2", "resourceVersion": "7", "labels": labels or {}, "annotations": ann or {},
          "finalizers": fins or []}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T20:00:00Z"
    return {"apiVersion": "v1", "kind": "Node", "metadata": md}


DONE = dict(labels={em.ETCD_ROLE_LABEL: "true", em.CONTROL_PLANE_LABEL: "true"},
            ann={em.NODE_NAME_ANNOTATION: "m", em.NODE_ADDRESS_ANNOTATION: "127.0.0.1"}, fins=[em.FINALIZER])


@pytest.mark.parametrize("before,changed,keeps_remove", [
    (_own(), True, False),
    (_own(**DONE), False, False),
    (_own(deleting=True), False, False),  # no finalizer may be added now
    (_own(labels={"kubernetes.io/hostname": "ha-s2"}, fins=["other"]), True, False),
    # a rejoined server (a new member name) clears the removal done to its old member
    (_own(ann={em.NODE_NAME_ANNOTATION: "old", em.REMOVE_ANNOTATION: "true", em.REMOVED_ANNOTATION: "old"}),
     True, False),
    # the same member asked to be removed: the request stays
    (_own(labels=DONE["labels"], fins=DONE["fins"],
          ann={**DONE["ann"], em.REMOVE_ANNOTATION: "true"}), False, True),
], ids=["fresh", "already", "deleting", "keeps-others", "rejoined-clears-removal", "same-member-keeps-request"])
def test_node_metadata_patch(before, changed, keeps_remove):
    out = em.node_metadata_patch(before, "m", "127.0.0.1")
    assert (out is not None) == changed
    if out is None:
        return
    md = out["metadata"]
    assert md["labels"][em.ETCD_ROLE_LABEL] == "true" and md["labels"][em.CONTROL_PLANE_LABEL] == "true"
    assert md["annotations"][em.NODE_NAME_ANNOTATION] == "m"
    assert md["finalizers"].count(em.FINALIZER) == 1
    assert set(before["metadata"]["finalizers"]) <= set(md["finalizers"])
    assert set(before["metadata"]["labels"].items()) <= set(md["labels"].items())
    assert (em.REMOVE_ANNOTATION in md["annotations"]) == keeps_remove
