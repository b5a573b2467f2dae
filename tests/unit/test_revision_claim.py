"""ControllerRevision adoption and release (``controllerutil.claim_plan`` /
``claim_revisions``, as Kubernetes' ``ControllerRevisionControllerRefManager``): which
revisions an owner keeps, adopts and releases, the patches it sends, and which owners a
revision event concerns."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu

SELECTOR = {"matchLabels": {"app": "web"}}


def owner(uid="ss-1", deleting=False, kind="StatefulSet", name="web", ns="ns", selector=SELECTOR):
    md = {"name": name, "namespace": ns, "uid": uid}
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": md, "spec": {"selector": selector}}


def rev(name, labels=None, controller=None, ns="ns", deleting=False, other_refs=()):
    refs = [dict(r) for r in other_refs]
    if controller is not None:
        refs.append({"apiVersion": "apps/v1", "kind": controller[0], "name": controller[1], "uid": controller[2],
                     "controller": True})
    md = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels if labels is not None else {"app": "web"}}
    if refs:
        md["ownerReferences"] = refs
    if deleting:
        md["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": md, "revision": 1}


OURS = ("StatefulSet", "web", "ss-1")
THEIRS = ("StatefulSet", "other", "ss-2")
NON_CONTROLLER = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-1"}]


@pytest.mark.parametrize("o,r,expected", [
    (owner(), rev("a", controller=OURS), "keep"),
    (owner(), rev("a"), "adopt"),                                              # matching orphan
    (owner(), rev("a", other_refs=NON_CONTROLLER), "adopt"),                   # a non-controller ref is no owner
    (owner(), rev("a", labels={"app": "db"}), "ignore"),                       # orphan not matching
    (owner(), rev("a", controller=THEIRS), "ignore"),                          # someone else's
    (owner(), rev("a", labels={"app": "db"}, controller=THEIRS), "ignore"),
    (owner(), rev("a", labels={"app": "db"}, controller=OURS), "release"),     # ours, no longer matching
    (owner(), rev("a", deleting=True), "ignore"),                              # an orphan being deleted
    (owner(), rev("a", ns="elsewhere"), "ignore"),                             # another namespace
    (owner(deleting=True), rev("a"), "ignore"),                                # a deleted owner adopts nothing
    (owner(deleting=True), rev("a", labels={"app": "db"}, controller=OURS), "ignore"),  # nor releases
    (owner(deleting=True), rev("a", controller=OURS), "keep"),
    (owner(selector={}), rev("a"), "ignore"),                                  # an empty selector matches nothing
    (owner(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
     rev("a"), "adopt"),
], ids=["owned", "orphan", "orphan-other-ref", "orphan-mismatch", "theirs", "theirs-mismatch", "release",
        "orphan-deleting", "other-namespace", "owner-deleting", "owner-deleting-no-release",
        "owner-deleting-keeps", "empty-selector", "expressions"])
def test_claim_plan(o, r, expected):
    keep, adopt, release = cu.claim_plan(o, [r], cu.selector_matcher(o["spec"]["selector"]))
    got = "keep" if keep else "adopt" if adopt else "release" if release else "ignore"
    assert got == expected


def test_patches_carry_the_uid_precondition():
    o, r = owner(), rev("a")
    assert cu.adopt_patch(o, r) == {"metadata": {"uid": "uid-a", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "ss-1", "controller": True,
         "blockOwnerDeletion": True}]}}
    assert cu.release_patch("ss-1", r) == {"metadata": {"uid": "uid-a", "ownerReferences": [
        {"$patch": "delete", "uid": "ss-1"}]}}


class FakeClient:
    """Records patches; ``fail`` maps a revision name to the ApiStatusError its patch raises."""

    def __init__(self, fail=None):
        self.patches = []
        self.fail = fail or {}

    async def patch(self, res, name, body, namespace=None, *, patch_type="merge"):
        self.patches.append((name, patch_type, body))
        if name in self.fail:
            raise self.fail[name]
        return {"metadata": {"name": name, "namespace": namespace, "patched": True}}


def claim(client, o, revs, can_adopt=None):
    checks = []

    async def ok():
        checks.append(1)
    return asyncio.run(cu.claim_revisions(client, o, revs, cu.selector_matcher(o["spec"]["selector"]),
                                          can_adopt or ok)), checks


def test_claim_revisions_adopts_and_releases():
    client = FakeClient()
    revs = [rev("kept", controller=OURS), rev("orphan1"), rev("orphan2"), rev("stale", {"app": "db"}, OURS),
            rev("theirs", controller=THEIRS)]
    got, checks = claim(client, owner(), revs)
    assert [r["metadata"]["name"] for r in got] == ["kept", "orphan1", "orphan2"]
    assert [(n, t) for n, t, _ in client.patches] == [("stale", "strategic"), ("orphan1", "strategic"),
                                                      ("orphan2", "strategic")]
    assert checks == [1], "the owner is re-checked once, before the first adoption"


@pytest.mark.parametrize("code,raised", [(404, False), (422, True), (500, True)])
def test_claim_revisions_adoption_errors(code, raised):
    client = FakeClient({"orphan1": ApiStatusError(code, "X", "m")})
    if raised:
        with pytest.raises(ApiStatusError):
            claim(client, owner(), [rev("orphan1"), rev("orphan2")])
    else:
        got, _ = claim(client, owner(), [rev("orphan1"), rev("orphan2")])
        assert [r["metadata"]["name"] for r in got] == ["orphan2"]
    assert [n for n, _, _ in client.patches] == ["orphan1", "orphan2"], "the others are still tried"


@pytest.mark.parametrize("code,raised", [(404, False), (422, False), (500, True)])
def test_claim_revisions_release_errors(code, raised):
    client = FakeClient({"stale": ApiStatusError(code, "X", "m")})
    revs = [rev("stale", {"app": "db"}, OURS)]
    if raised:
        with pytest.raises(ApiStatusError):
            claim(client, owner(), revs)
    else:
        assert claim(client, owner(), revs)[0] == []


def test_claim_revisions_owner_gone_adopts_nothing():
    async def gone():
        raise ApiStatusError(409, "Conflict", "original StatefulSet ns/web is gone")
    client = FakeClient()
    with pytest.raises(ApiStatusError, match="is gone"):
        claim(client, owner(), [rev("orphan1")], can_adopt=gone)
    assert client.patches == []


@pytest.mark.parametrize("r,expected", [
    (rev("a", controller=OURS), ["ns/web"]),
    (rev("a", controller=("DaemonSet", "web", "ds-1")), []),
    (rev("a"), ["ns/web"]),                        # an orphan: the owners that may adopt it
    (rev("a", labels={"app": "db"}), ["ns/db"]),
    (rev("a", labels={}), []),
], ids=["controller", "other-kind", "orphan", "orphan-other-selector", "orphan-no-labels"])
def test_revision_owner_keys(r, expected):
    owners = [owner(), owner(uid="ss-3", name="db", selector={"matchLabels": {"app": "db"}})]
    assert cu.revision_owner_keys(r, "StatefulSet", owners) == expected
