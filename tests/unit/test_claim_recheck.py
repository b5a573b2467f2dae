"""``controllerutil.claim`` as the ReplicaSet, Deployment, StatefulSet and DaemonSet
controllers use it: an orphan is adopted only after a live GET of the owner showed it with the
same uid and not being deleted (Kubernetes' ``RecheckDeletionTimestamp``), the GET is made once
per claim and only when there is something to adopt, and releases need no GET."""

from __future__ import annotations

import asyncio
import copy

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu

SELECTOR = {"matchLabels": {"app": "web"}}


def rs(uid="rs-uid", deleting=False):
    md = {"name": "rs", "namespace": "ns", "uid": uid}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": md, "spec": {"selector": SELECTOR}}


def pod(name, labels=None, owner=None):
    md = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "5",
          "labels": labels if labels is not None else {"app": "web"}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                  "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md}


class FakeClient:
    """Answers the owner's GET with ``live`` (None: 404) and records every call."""

    def __init__(self, live):
        self.live = live
        self.calls = []

    async def get(self, res, name, namespace=None):
        self.calls.append(("get", res.plural, name))
        if self.live is None:
            raise ApiStatusError(404, "NotFound", f'{res.plural} "{name}" not found')
        return copy.deepcopy(self.live)

    async def patch(self, res, name, body, namespace=None, *, patch_type="merge"):
        self.calls.append(("patch", res.plural, name))
        return {"metadata": {**body["metadata"], "name": name, "namespace": namespace}}


def claim(client, owner, pods):
    return asyncio.run(cu.claim(client, R.PODS, owner, pods, cu.selector_matcher(SELECTOR), R.REPLICASETS))


@pytest.mark.parametrize("live,adopted,error", [
    (rs(), True, None),                                   # the owner as cached: adopt
    (rs(uid="other"), False, "is gone: got uid other"),    # deleted and re-created meanwhile
    (rs(deleting=True), False, "has just been deleted"),   # being deleted meanwhile
    (None, False, "not found"),                            # deleted meanwhile
], ids=["same", "recreated", "deleting", "gone"])
def test_adoption_waits_for_the_owner_recheck(live, adopted, error):
    client = FakeClient(live)
    pods = [pod("orphan-a"), pod("orphan-b"), pod("mine", owner="rs-uid")]
    if error:
        with pytest.raises(ApiStatusError, match=error):
            claim(client, rs(), pods)
    else:
        got = claim(client, rs(), pods)
        assert sorted(p["metadata"]["name"] for p in got) == ["mine", "orphan-a", "orphan-b"]
    assert client.calls[0] == ("get", "replicasets", "rs"), "one GET of the owner, before the first adoption"
    assert sum(1 for c in client.calls if c[0] == "get") == 1
    assert [c[2] for c in client.calls if c[0] == "patch"] == (["orphan-a", "orphan-b"] if adopted else [])


def test_nothing_to_adopt_needs_no_get():
    client = FakeClient(None)  # a GET would fail: none is made
    got = claim(client, rs(), [pod("mine", owner="rs-uid"), pod("relabelled", labels={"app": "db"}, owner="rs-uid"),
                               pod("other", labels={"app": "db"})])
    assert [p["metadata"]["name"] for p in got] == ["mine"]
    assert client.calls == [("patch", "pods", "relabelled")], "the release needs no GET"


def test_owner_being_deleted_neither_adopts_nor_releases():
    client = FakeClient(rs(deleting=True))
    got = claim(client, rs(deleting=True), [pod("orphan"), pod("relabelled", labels={"app": "db"}, owner="rs-uid")])
    assert got == [] and client.calls == []
