"""Persistent volumes' pure logic, table-driven: matching a claim to a volume (class, access
modes, capacity, selector, volumeMode, node affinity, smallest fit, pre-bound volumes), the
phase a volume should be in, node affinity, local-path naming, the validation messages, the
kubectl rows, the default StorageClass, the StatefulSet's claims and the VolumeBinding
plugin's cheap path."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from controlplane.agent.localstorage import volume_of
from controlplane.apiserver.admission.storage import default_storage_class
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.printing.storage import access_modes, pv_row, pvc_row, storageclass_row
from controlplane.apiserver.validation import storage
from controlplane.controllers.pvcprotection import pods_using
from controlplane.controllers.pvprotection import volume_in_use
from controlplane.controllers.statefulset import claim_name, new_claim, retention
from controlplane.machinery import volumes as V

UID = "0f0e0d0c-0b0a-0908-0706-050403020100"


def pv(name: str, size: str = "1Gi", *, cls: str = "manual", modes=("ReadWriteOnce",), labels=None, ref=None,
       phase="Available", mode=None, node: str | None = None) -> dict:
    spec: dict = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                  "hostPath": {"path": f"/srv/{name}"}}
    if ref is not None:
        spec["claimRef"] = ref
    if mode:
        spec["volumeMode"] = mode
    if node:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


def pvc(name: str = "c", size: str = "1Gi", *, cls: str = "manual", modes=("ReadWriteOnce",), selector=None,
        mode=None, uid: str = UID, ns: str = "ns") -> dict:
    spec: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "storageClassName": cls}
    if selector is not None:
        spec["selector"] = selector
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name, "namespace": ns, "uid": uid}, "spec": spec}


def node(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}


@pytest.mark.parametrize("claim,volumes,want", [
    (pvc(size="1Gi"), [pv("big", "5Gi"), pv("small", "2Gi"), pv("tiny", "500Mi")], "small"),
    (pvc(size="2Gi"), [pv("a", "2Gi"), pv("b", "2Gi")], "a"),
    (pvc(cls="fast"), [pv("slow"), pv("fast", cls="fast")], "fast"),
    (pvc(cls=""), [pv("classed"), pv("plain", cls="")], "plain"),
    (pvc(modes=("ReadWriteMany",)), [pv("rwo"), pv("rwx", modes=("ReadWriteOnce", "ReadWriteMany"))], "rwx"),
    (pvc(selector={"matchLabels": {"tier": "db"}}), [pv("x"), pv("y", labels={"tier": "db"})], "y"),
    (pvc(mode="Block"), [pv("fs"), pv("blk", mode="Block")], "blk"),
    (pvc(), [pv("taken", ref={"name": "other", "namespace": "ns", "uid": "u"})], None),
    (pvc(), [pv("released", phase="Released")], None),
    (pvc(), [pv("big", "5Gi"), pv("mine", "9Gi", ref={"name": "c", "namespace": "ns"}, phase="Available")], "mine"),
    (pvc(size="10Gi"), [pv("small", "1Gi")], None),
], ids=["smallest-fit", "tie-by-name", "class", "no-class", "access-modes", "selector", "volume-mode",
        "taken", "released", "pre-bound-wins", "too-small"])
def test_find_matching_volume(claim, volumes, want):
    got = V.find_matching_volume(claim, volumes)
    assert (got["metadata"]["name"] if got else None) == want


def test_matching_honours_node_affinity():
    vols = [pv("on-a", node="a"), pv("on-b", "2Gi", node="b")]
    assert V.find_matching_volume(pvc(), vols, node("b"))["metadata"]["name"] == "on-b"
    assert V.find_matching_volume(pvc(), vols, node("c")) is None
    assert V.find_matching_volume(pvc(), vols)["metadata"]["name"] == "on-a"


@pytest.mark.parametrize("volume,claim,want", [
    (pv("v"), None, "Available"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Bound"), None, "Released"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Bound"), pvc(uid="other"), "Released"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Released"), None, "Released"),
    (pv("v", ref={"name": "c", "namespace": "ns"}, phase="Available"), None, "Available"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Available"),
     {**pvc(), "spec": {**pvc()["spec"], "volumeName": "v"}}, "Bound"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Available"), pvc(), "Available"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Bound"), pvc(), "Bound"),
    (pv("v", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Bound"),
     {**pvc(), "spec": {**pvc()["spec"], "volumeName": "other"}}, "Available"),
], ids=["no-claimref", "claim-gone", "claim-replaced", "stays-released", "prebound-waits", "bound", "binding",
        "binding-half-done", "claim-elsewhere"])
def test_volume_phase(volume, claim, want):
    assert V.volume_phase(volume, claim) == want


@pytest.mark.parametrize("exprs,labels,want", [
    ([{"key": "zone", "operator": "In", "values": ["a"]}], {"zone": "a"}, True),
    ([{"key": "zone", "operator": "NotIn", "values": ["a"]}], {"zone": "a"}, False),
    ([{"key": "ssd", "operator": "Exists"}], {}, False),
    ([{"key": "ssd", "operator": "DoesNotExist"}], {}, True),
    ([{"key": "gen", "operator": "Gt", "values": ["3"]}], {"gen": "4"}, True),
], ids=["in", "notin", "exists", "doesnotexist", "gt"])
def test_node_affinity(exprs, labels, want):
    vol = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}
    assert V.node_affinity_admits(vol, {"metadata": {"name": "n", "labels": labels}}) is want


def test_local_path_naming_and_volume():
    claim = pvc("data-db-0", "64Mi", cls="local-path")
    assert V.local_path_dir_name(claim) == f"pvc-{UID}_ns_data-db-0"
    sc = {"metadata": {"name": "local-path"}, "provisioner": V.LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete"}
    vol = V.local_path_volume(claim, sc, "node-a", "/var/lib/agent/storage/")
    assert vol["metadata"]["name"] == f"pvc-{UID}"
    assert vol["spec"]["hostPath"] == {"path": f"/var/lib/agent/storage/pvc-{UID}_ns_data-db-0",
                                       "type": "DirectoryOrCreate"}
    assert vol["spec"]["claimRef"]["uid"] == UID and vol["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert V.node_affinity_admits(vol, node("node-a")) and not V.node_affinity_admits(vol, node("node-b"))
    assert V.mismatch(claim, vol, node("node-a")) is None
    assert volume_of(V.local_path_dir_name(claim)) == f"pvc-{UID}"
    assert volume_of("lost+found") is None and volume_of("pvc-123_ns_x") is None


def _causes(fn, obj, old=None) -> list[str]:
    e = Errors()
    fn(obj, e, old is not None, old or {})
    return [f"{c['field']}: {c['message']}" for c in e.causes]


@pytest.mark.parametrize("spec,want", [
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}, "spec: Required value: must specify a volume type"),
    ({"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}}, "spec.accessModes: Required value"),
    ({"capacity": {"storage": "0"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}},
     'spec.capacity[storage]: Invalid value: "0": must be greater than zero'),
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["Sometimes"], "hostPath": {"path": "/x"}},
     'spec.accessModes: Unsupported value: "Sometimes": supported values: "ReadOnlyMany", "ReadWriteMany", '
     '"ReadWriteOnce", "ReadWriteOncePod"'),
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/mnt"}},
     "spec.nodeAffinity: Required value: Local volume requires node affinity"),
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"},
      "local": {"path": "/y"}}, "spec.local: Forbidden: may not specify more than 1 volume type"),
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "nfs": {"server": "s", "path": "/"}},
     'spec.nfs: Unsupported value: "nfs": supported values: "hostPath", "local"'),
    ({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"},
      "persistentVolumeReclaimPolicy": "Shred"},
     'spec.persistentVolumeReclaimPolicy: Unsupported value: "Shred": supported values: "Delete", "Recycle", "Retain"'),
], ids=["no-source", "no-modes", "zero", "bad-mode", "local-no-affinity", "two-sources", "unsupported-source",
        "reclaim"])
def test_pv_validation(spec, want):
    assert want in _causes(storage.persistent_volume, {"spec": spec})


@pytest.mark.parametrize("old_phase,change,want", [
    ("Pending", {"accessModes": ["ReadWriteMany"]}, "spec: Forbidden: spec is immutable after creation"),
    ("Bound", {"resources": {"requests": {"storage": "2Gi"}}}, None),
    ("Bound", {"resources": {"requests": {"storage": "500Mi"}}},
     "spec.resources.requests.storage: Forbidden: field can not be less than previous value"),
    ("Pending", {"resources": {"requests": {"storage": "2Gi"}}}, "spec: Forbidden: spec is immutable after creation"),
    ("Pending", {"volumeName": "v"}, None),
], ids=["modes", "bound-grow", "bound-shrink", "pending-grow", "volume-name-once"])
def test_pvc_update_validation(old_phase, change, want):
    old = {**pvc(), "status": {"phase": old_phase}}
    new = {**old, "spec": {**old["spec"], **change}}
    causes = _causes(storage.persistent_volume_claim, new, old)
    if want is None:
        assert causes == []
    else:
        assert any(c.startswith(want) for c in causes), causes


@pytest.mark.parametrize("obj,old,want", [
    ({"volumeBindingMode": "Immediate"}, None, "provisioner: Required value"),
    ({"provisioner": "a/b", "volumeBindingMode": "Later"}, None,
     'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"'),
    ({"provisioner": "a/b", "volumeBindingMode": "Immediate", "parameters": {"x": "2"}},
     {"provisioner": "a/b", "volumeBindingMode": "Immediate", "parameters": {"x": "1"}},
     "parameters: Forbidden: updates to parameters are forbidden."),
    ({"provisioner": "a/c", "volumeBindingMode": "Immediate"}, {"provisioner": "a/b", "volumeBindingMode": "Immediate"},
     "provisioner: Forbidden: updates to provisioner are forbidden."),
], ids=["no-provisioner", "binding-mode", "parameters", "provisioner-immutable"])
def test_storage_class_validation(obj, old, want):
    assert want in _causes(storage.storage_class, obj, old)


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_rows():
    assert access_modes(["ReadWriteOncePod", "ReadOnlyMany", "ReadWriteOnce"]) == "RWO,ROX,RWOP"
    bound = pv("v", "2Gi", ref={"name": "c", "namespace": "ns", "uid": UID}, phase="Bound")
    bound["spec"]["persistentVolumeReclaimPolicy"] = "Retain"
    assert pv_row(bound, NOW)[:8] == ["v", "2Gi", "RWO", "Retain", "Bound", "ns/c", "manual", "<unset>"]
    claim = {**pvc(), "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}}
    claim["spec"]["volumeName"] = "v"
    assert pvc_row(claim, NOW)[:7] == ["c", "Bound", "v", "2Gi", "RWO", "manual", "<unset>"]
    pending = {**pvc(), "status": {"phase": "Pending"}}
    assert pvc_row(pending, NOW)[:5] == ["c", "Pending", "", "", ""]
    gone = {**pending, "metadata": {**pending["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert pvc_row(gone, NOW)[1] == "Terminating"
    sc = {"metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}
    assert storageclass_row(sc, NOW)[:5] == ["local-path (default)", "rancher.io/local-path", "Delete",
                                             "WaitForFirstConsumer", "false"]


def test_default_storage_class_picks_the_newest_marked():
    def sc(name, ts, default):
        ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": ts, "annotations": ann}}
    assert default_storage_class([sc("a", "2026-01-01T00:00:00Z", True), sc("b", "2026-01-02T00:00:00Z", True),
                                  sc("c", "2026-01-03T00:00:00Z", False)]) == "b"
    assert default_storage_class([sc("c", "2026-01-03T00:00:00Z", False)]) is None


def test_protection_rules():
    pod = {"metadata": {"name": "p"}, "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]},
           "status": {"phase": "Running"}}
    done = {**pod, "status": {"phase": "Succeeded"}}
    assert pods_using("c", [pod, done]) == [pod] and pods_using("x", [pod]) == []
    assert volume_in_use({"status": {"phase": "Bound"}}) and not volume_in_use({"status": {"phase": "Released"}})


def test_statefulset_claims():
    ss = {"apiVersion": "apps/v1", "metadata": {"name": "db", "namespace": "ns", "uid": "u1"},
          "spec": {"selector": {"matchLabels": {"app": "db"}}}}
    t = {"metadata": {"name": "data", "labels": {"tier": "x"}}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    assert claim_name(t, ss, 3) == "data-db-3"
    c = new_claim(t, ss, 0)
    assert c["metadata"]["labels"] == {"tier": "x", "app": "db"} and "ownerReferences" not in c["metadata"]
    assert retention(ss) == ("Retain", "Retain")
    ss["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert new_claim(t, ss, 0)["metadata"]["ownerReferences"][0]["uid"] == "u1"


def test_volume_binding_skips_pods_without_claims():
    from schedulers.plugins.volume_binding import VolumeBinding

    class P:
        obj = {"spec": {"volumes": [{"name": "x", "emptyDir": {}}]}}
    st = VolumeBinding().pre_filter({}, P(), None)
    assert st is not None and st.is_skip


class _Cache:
    """Stands in for an informer: get / get_by / list / has_synced."""

    def __init__(self, objs: list[dict]) -> None:
        self.objs = {((o["metadata"].get("namespace") or ""), o["metadata"]["name"]): o for o in objs}

    def get(self, key: str):
        ns, _, name = key.rpartition("/")
        return self.objs.get((ns, name))

    def get_by(self, ns, name):
        return self.objs.get((ns or "", name))

    def list(self):
        return list(self.objs.values())

    def has_synced(self) -> bool:
        return True


def _plugin(claims, volumes, classes):
    from schedulers.plugins.volume_binding import VolumeBinding
    p = VolumeBinding()
    p.claims, p.volumes, p.classes = _Cache(claims), _Cache(volumes), _Cache(classes)
    return p


class _Pod:
    namespace = "ns"

    def __init__(self, *claims: str) -> None:
        self.obj = {"spec": {"volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}


class _Snap:
    def __init__(self, *names: str, storage: tuple[str, ...] = ()) -> None:
        def obj(n: str) -> dict:
            o = node(n)
            if n in storage:
                o["metadata"]["annotations"] = {"storage.controlplane.io/local-path-dir": f"/srv/{n}/storage"}
            return o
        self.nodes = [type("N", (), {"obj": obj(n), "name": n, "labels": node(n)["metadata"]["labels"]})()
                      for n in names]


WFFC = {"metadata": {"name": "lp"}, "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}
NOPROV = {"metadata": {"name": "static"}, "provisioner": "kubernetes.io/no-provisioner",
          "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "now"}, "provisioner": "x.io/y", "volumeBindingMode": "Immediate"}


@pytest.mark.parametrize("claims,volumes,pod_claims,want", [
    ([], [], ("c",), 'persistentvolumeclaim "c" not found'),
    ([pvc(cls="now")], [], ("c",), "pod has unbound immediate PersistentVolumeClaims"),
    ([{**pvc(), "metadata": {**pvc()["metadata"], "deletionTimestamp": "t"}}], [], ("c",),
     'persistentvolumeclaim "c" is being deleted'),
    ([pvc(cls="lp")], [], ("c",), None),
], ids=["missing", "unbound-immediate", "deleting", "wffc-ok"])
def test_volume_binding_pre_filter(claims, volumes, pod_claims, want):
    from schedulers.framework.interface import CycleState
    st = _plugin(claims, volumes, [WFFC, NOPROV, IMMEDIATE]).pre_filter(CycleState(), _Pod(*pod_claims), _Snap("a"))
    if want is None:
        assert st is None
    else:
        assert st.is_rejection and st.reasons == [want]


def test_volume_binding_filter():
    import numpy as np
    from schedulers.framework.interface import CycleState
    bound = {**pvc("b"), "spec": {**pvc("b")["spec"], "volumeName": "on-a"}}
    static = pvc("s", cls="static")
    p = _plugin([bound, static, pvc("w", cls="lp")],
                [pv("on-a", node="a"), pv("st-b", cls="static", node="b")], [WFFC, NOPROV])
    snap = _Snap("a", "b", storage=("a",))
    cases = [(("b",), [True, False], "node(s) had volume node affinity conflict"),
             (("s",), [False, True], "node(s) didn't find available persistent volumes to bind"),
             (("w",), [True, False], "node(s) didn't find available persistent volumes to bind")]
    for claims, ok, reason in cases:
        cs = CycleState()
        assert p.pre_filter(cs, _Pod(*claims), snap) is None
        res = p.filter(cs, _Pod(*claims), snap, np.arange(2))
        assert list(res.ok) == ok, claims
        if reason:
            assert reason in (res.reasons or {})


# -- admission plugins ------------------------------------------------------------------------

class _Lookups:
    def __init__(self, classes: list[dict]) -> None:
        self.classes = {c["metadata"]["name"]: c for c in classes}

    def list_all(self, plural: str) -> list[dict]:
        return list(self.classes.values())

    def get(self, plural: str, ns, name: str):
        return self.classes.get(name)


def _attrs(op: str, plural: str, obj: dict, old: dict | None = None):
    from controlplane.apiserver.admission.attributes import Attributes
    from controlplane.apiserver.strategy.builtins import builtin_registry
    from controlplane.machinery.userinfo import UserInfo
    info = next(i for i in builtin_registry().all() if i.plural == plural and i.group == "")
    return Attributes(op, info, "", "ns", "c", obj, old, False, UserInfo.make("u"))


async def test_default_storage_class_and_protection_admission():
    from controlplane.apiserver.admission.storage import DefaultStorageClass, StorageObjectInUseProtection
    default = {"metadata": {"name": "lp", "creationTimestamp": "2026-01-01T00:00:00Z",
                            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}
    plugin = DefaultStorageClass(_Lookups([default]))  # type: ignore[arg-type]
    cases = [({"spec": {}}, "lp"), ({"spec": {"storageClassName": ""}}, ""),
             ({"spec": {"storageClassName": "x"}}, "x"),
             ({"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "b"}}, "spec": {}}, None)]
    for obj, want in cases:
        a = _attrs("CREATE", "persistentvolumeclaims", obj)
        await plugin.admit(a)
        assert a.obj["spec"].get("storageClassName") == want, obj
    for plural, fin in (("persistentvolumeclaims", "kubernetes.io/pvc-protection"),
                        ("persistentvolumes", "kubernetes.io/pv-protection")):
        a = _attrs("CREATE", plural, {"metadata": {"finalizers": ["keep"]}})
        await StorageObjectInUseProtection().admit(a)
        assert a.obj["metadata"]["finalizers"] == ["keep", fin]


@pytest.mark.parametrize("expandable,phase,new,refused", [
    (False, "Bound", "2Gi", True), (True, "Bound", "2Gi", False), (False, "Pending", "2Gi", False),
    (False, "Bound", "1Gi", False),
], ids=["not-expandable", "expandable", "unbound", "unchanged"])
async def test_pvc_resize_admission(expandable, phase, new, refused):
    from controlplane.apiserver.admission.storage import PersistentVolumeClaimResize
    from controlplane.apiserver.meta.errors import ApiError
    sc = {"metadata": {"name": "manual"}, "allowVolumeExpansion": expandable}
    old = {**pvc(), "status": {"phase": phase}}
    obj = {**old, "spec": {**old["spec"], "resources": {"requests": {"storage": new}}}}
    plugin = PersistentVolumeClaimResize(_Lookups([sc]))  # type: ignore[arg-type]
    if refused:
        with pytest.raises(ApiError) as e:
            await plugin.validate(_attrs("UPDATE", "persistentvolumeclaims", obj, old))
        assert e.value.code == 403 and "must support resize" in e.value.message
    else:
        await plugin.validate(_attrs("UPDATE", "persistentvolumeclaims", obj, old))


# -- the node agent's side ----------------------------------------------------------------------

class _Client:
    def __init__(self, objs: dict[tuple[str, str], dict]) -> None:
        self.objs = objs

    async def get(self, res, name, ns=None):
        from controlplane.client.rest import ApiStatusError
        try:
            return self.objs[(res.plural, name)]
        except KeyError:
            raise ApiStatusError(404, "NotFound", f'{res.plural} "{name}" not found') from None


async def test_agent_resolves_claims(tmp_path):
    from controlplane.agent.podconfig import ConfigError, PodConfig
    target = tmp_path / "storage" / "pvc-x_ns_c"
    bound = {**pvc(), "spec": {**pvc()["spec"], "volumeName": "v"}, "status": {"phase": "Bound"}}
    vol = {"metadata": {"name": "v"}, "spec": {"hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}}
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}}]}}
    pc = PodConfig(_Client({("persistentvolumeclaims", "c"): bound, ("persistentvolumes", "v"): vol}), pod, "n1",
                   None, None)  # type: ignore[arg-type]
    vols = await pc.prepare_volumes(tmp_path / "vols", None)
    assert vols == {"d": target} and target.is_dir()
    [m] = pc.mounts({"volumeMounts": [{"name": "d", "mountPath": "/data"}]}, vols)
    assert m.readonly  # the claim's readOnly wins over the mount's default
    pending = {**pvc(), "status": {"phase": "Pending"}}
    with pytest.raises(ConfigError) as e:
        await PodConfig(_Client({("persistentvolumeclaims", "c"): pending}), pod, "n1", None, None) \
            .prepare_volumes(tmp_path / "v2", None)  # type: ignore[arg-type]
    assert e.value.message == 'PVC ns/c has non-bound phase ("Pending") or empty pvc.Spec.VolumeName ("")'
    assert e.value.reason == "ContainerCreating"
    with pytest.raises(ConfigError) as e:
        await PodConfig(_Client({}), pod, "n1", None, None).prepare_volumes(tmp_path / "v3", None)  # type: ignore[arg-type]
    assert e.value.message == 'persistentvolumeclaim "c" not found'


async def test_agent_sweeps_directories_of_deleted_volumes(tmp_path):
    from controlplane.agent.localstorage import LocalStorage
    keep, gone = f"pvc-{UID}_ns_a", "pvc-11111111-2222-3333-4444-555555555555_ns_b"
    ls = LocalStorage(tmp_path, _Client({("persistentvolumes", f"pvc-{UID}"): {}}))  # type: ignore[arg-type]
    ls.prepare()
    for d in (keep, gone, "not-ours"):
        (ls.dir / d).mkdir()
    assert await ls.sweep() == [gone]
    assert sorted(p.name for p in ls.dir.iterdir()) == ["not-ours", keep]


# -- the Node authorizer's pod -> claim -> volume edge --------------------------------------------

class _Entry:
    def __init__(self, obj: dict, node: str = "") -> None:
        import json
        self.raw = json.dumps(obj)
        self.key = obj["metadata"]["name"]
        self.rv = 1
        self.fields = {"spec.nodeName": node}


class _WatchCache:
    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries

    def entries_in(self, ns: str):
        return self.entries

    def get(self, key: str):
        return next((e for e in self.entries if e.key == key), None)


@pytest.mark.parametrize("volume,want", [
    (pv("v", ref={"name": "c", "namespace": "ns"}), True),
    (pv("v", ref={"name": "other", "namespace": "ns"}), False),
    (pv("v"), False),
    (pv("v", node="n1"), True),
    (pv("v", node="n2"), False),
    (None, True),
], ids=["claim-of-its-pod", "other-claim", "unbound", "pinned-here", "pinned-elsewhere", "gone-404"])
def test_node_may_read_volumes_of_its_pods(volume, want):
    from controlplane.apiserver.authorization.feed import CachedPodGraph
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"nodeName": "n1", "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}}
    g = CachedPodGraph(_WatchCache([_Entry(pod, "n1")]))  # type: ignore[arg-type]
    g.volumes = _WatchCache([_Entry(volume)] if volume else [])  # type: ignore[assignment]
    g.volume_key = lambda name: name
    assert g.has("n1", "PersistentVolume", "", "v") is want


def test_quota_counts_claims_and_storage():
    from fractions import Fraction
    from controlplane.machinery import quota as q
    claim = pvc("c", "2Gi", cls="gold")
    cost = q.usage("", "persistentvolumeclaims", claim)
    assert cost["requests.storage"] == 2 * 1024 ** 3 and cost["persistentvolumeclaims"] == 1
    assert cost["gold.storageclass.storage.k8s.io/requests.storage"] == 2 * 1024 ** 3
    assert cost["gold.storageclass.storage.k8s.io/persistentvolumeclaims"] == Fraction(1)
    names = ["requests.storage", "requests.cpu", "persistentvolumeclaims", "gold.storageclass.storage.k8s.io/requests.storage"]
    assert q.matching_resources("", "persistentvolumeclaims", names) == [
        "gold.storageclass.storage.k8s.io/requests.storage", "persistentvolumeclaims", "requests.storage"]
    assert q.matching_resources("", "pods", names) == ["requests.cpu"]
    assert q.evaluator_for("requests.storage") == ("", "persistentvolumeclaims")
    assert q.evaluator_for("gold.storageclass.storage.k8s.io/persistentvolumeclaims") == ("", "persistentvolumeclaims")
    assert q.evaluator_for("requests.memory") == ("", "pods")


@pytest.mark.parametrize("size,want", [
    ("500Mi", "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"),
    ("20Gi", "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"),
    ("5Gi", None),
], ids=["below-min", "above-max", "fits"])
def test_limit_range_on_claims(size, want):
    from controlplane.apiserver.admission.limitranger import claim_violations
    lr = {"spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}},
                              {"type": "Container", "max": {"cpu": "1"}}]}}
    assert claim_violations(pvc(size=size), [lr]) == ([want] if want else [])
