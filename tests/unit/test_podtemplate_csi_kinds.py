"""core/v1 PodTemplate and the storage.k8s.io/v1 CSI kinds (CSIDriver, CSINode,
VolumeAttachment, CSIStorageCapacity): their defaults, Kubernetes' validation messages on
create and update, kubectl's table columns, and the agent's CSINode (as the kubelet makes it)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from controlplane.agent.csinode import MIGRATED_PLUGINS_ANNOTATION, adopt, csinode_for, set_migration_annotation
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.printing.tables import to_table
from controlplane.apiserver.strategy.builtins import builtin_registry

REG = builtin_registry()
NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
CREATED = (NOW - timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
Obj = dict[str, Any]


def write(plural: str, obj: Obj, old: Obj | None = None, group: str = "") -> Obj:
    """Defaults and validation as a create (``old`` None) or an update goes through them."""
    info = REG.get(group, "v1", plural)
    assert info is not None
    return info.strategy.default_and_validate(info, copy.deepcopy(obj), strict=False, old=old)


def causes(plural: str, obj: Obj, old: Obj | None = None, group: str = "") -> list[tuple[str, str]]:
    """(field, message) of the 422's causes; [] when the object is accepted."""
    try:
        write(plural, obj, old, group)
    except ApiError as e:
        assert e.code == 422, e
        return [(c["field"], c["message"]) for c in e.details["causes"]]
    return []


def podtemplate(**template: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t", "namespace": "ns"},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}, **template}}


def driver(**spec: Any) -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "csi.example.com"},
            "spec": spec}


def csinode(*drivers: Obj) -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": "n1"},
            "spec": {"drivers": list(drivers)}}


def attachment(source: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": "va"},
            "spec": {"attacher": "csi.example.com", "nodeName": "n1",
                     "source": {"persistentVolumeName": "pv1"} if source is None else source, **spec}}


def capacity(**fields: Any) -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity",
            "metadata": {"name": "cap", "namespace": "ns"}, "storageClassName": "fast", **fields}


def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def mutate(obj: Obj) -> None:
        *parents, last = path.split(".")
        cur = obj
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return mutate


# ---- PodTemplate ------------------------------------------------------------------------------

def test_podtemplate_defaults_its_pod_spec_and_tracks_generation():
    out = write("podtemplates", podtemplate())
    spec = out["template"]["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert REG.get("", "v1", "podtemplates").strategy.tracks_generation


@pytest.mark.parametrize("mutate,expected", [
    (_set("template.metadata.labels", {"bad key!": "x"}), ("template.labels", 'Invalid value: "bad key!"')),
    (_set("template.metadata.annotations", {"-nope": "x"}), ("template.annotations", 'Invalid value: "-nope"')),
    (_set("template.spec.containers", []), ("template.spec.containers", "Required value")),
    (_set("template.spec.restartPolicy", "Sometimes"),
     ("template.spec.restartPolicy",
      'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')),
    (_set("template.spec.ephemeralContainers", [{"name": "e", "image": "busybox"}]),
     ("template.spec.ephemeralContainers", "Forbidden: ephemeral containers not allowed in pod template")),
    (lambda o: o.pop("template"), ("template.spec.containers", "Required value")),
], ids=["label-key", "annotation-key", "no-containers", "restart-policy", "ephemeral", "no-template"])
def test_podtemplate_validation(mutate, expected):
    obj = podtemplate()
    mutate(obj)
    got = causes("podtemplates", obj)
    assert any(f == expected[0] and m.startswith(expected[1]) for f, m in got), got


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_podtemplate_accepts_every_pod_restart_policy_also_on_update(policy):
    old = write("podtemplates", podtemplate())
    new = podtemplate()
    new["template"]["spec"]["restartPolicy"] = policy
    assert causes("podtemplates", new) == [] and causes("podtemplates", new, old) == []


# ---- CSIDriver --------------------------------------------------------------------------------

def test_csidriver_defaults():
    assert write("csidrivers", driver(), group="storage.k8s.io")["spec"] == {
        "attachRequired": True, "podInfoOnMount": False, "storageCapacity": False,
        "fsGroupPolicy": "ReadWriteOnceWithFSType", "requiresRepublish": False, "seLinuxMount": False,
        "volumeLifecycleModes": ["Persistent"]}


@pytest.mark.parametrize("obj,expected", [
    (driver(), None),
    ({**driver(), "metadata": {"name": "a" * 64}}, ("name", "Too long: may not be more than 63 bytes")),
    (driver(fsGroupPolicy="Sometimes"),
     ("spec.fsGroupPolicy", 'Unsupported value: "Sometimes": supported values: "File", "None", '
                            '"ReadWriteOnceWithFSType"')),
    (driver(volumeLifecycleModes=["Persistent", "Forever"]),
     ("spec.volumeLifecycleModes", 'Unsupported value: "Forever": supported values: "Persistent", "Ephemeral"')),
    (driver(tokenRequests=[{"audience": "a"}, {"audience": "a"}]),
     ("spec.tokenRequests[1].audience", 'Duplicate value: "a"')),
    (driver(tokenRequests=[{"audience": "a", "expirationSeconds": 60}]),
     ("spec.tokenRequests[0].expirationSeconds", "Invalid value: 60: may not specify a duration less than 10 minutes")),
    (driver(tokenRequests=[{"audience": "a", "expirationSeconds": (1 << 32) + 1}]),
     ("spec.tokenRequests[0].expirationSeconds",
      f"Invalid value: {(1 << 32) + 1}: may not specify a duration larger than 2^32 seconds")),
], ids=["valid", "long-name", "fsgroup", "modes", "dup-audience", "short-token", "long-token"])
def test_csidriver_create(obj, expected):
    got = causes("csidrivers", obj, group="storage.k8s.io")
    assert got == [] if expected is None else expected in got, got


@pytest.mark.parametrize("change,expected", [
    ({"attachRequired": False}, ("spec.attachedRequired", "Invalid value: false: field is immutable")),
    ({"volumeLifecycleModes": ["Ephemeral"]},
     ("spec.volumeLifecycleModes",
      'Invalid value: []storage.VolumeLifecycleMode{"Ephemeral"}: field is immutable')),
    ({"podInfoOnMount": True}, None),        # mutable since 1.29
    ({"fsGroupPolicy": "File"}, None),       # mutable since 1.29
    ({"storageCapacity": True}, None),       # mutable since 1.23
    ({"requiresRepublish": True, "tokenRequests": [{"audience": "x"}]}, None),
], ids=["attachRequired", "modes", "podInfoOnMount", "fsGroupPolicy", "storageCapacity", "republish"])
def test_csidriver_update(change, expected):
    old = write("csidrivers", driver(), group="storage.k8s.io")
    got = causes("csidrivers", driver(**change), old, group="storage.k8s.io")
    assert got == [] if expected is None else got == [expected], got


def test_csidriver_generation_follows_what_reaches_the_driver():
    info = REG.get("storage.k8s.io", "v1", "csidrivers")
    old = write("csidrivers", driver(), group="storage.k8s.io")
    old["metadata"]["generation"] = 1
    same, republish = driver(), driver(requiresRepublish=True)
    for new in (same, republish):
        new["metadata"]["generation"] = 1
        info.strategy.prepare_for_update(info, old, new)
    assert same["metadata"]["generation"] == 1 and republish["metadata"]["generation"] == 2


# ---- CSINode ----------------------------------------------------------------------------------

DRV = {"name": "csi.example.com", "nodeID": "node-1", "topologyKeys": ["topology.example.com/zone"]}


@pytest.mark.parametrize("obj,expected", [
    (csinode(), None),
    (csinode(DRV), None),
    (csinode(DRV, {**DRV, "nodeID": "other"}), ("spec.drivers[1].name", 'Duplicate value: "csi.example.com"')),
    (csinode({**DRV, "nodeID": ""}), ("spec.drivers[0].nodeID", "Required value")),
    (csinode({**DRV, "nodeID": "x" * 257}), ("spec.drivers[0].nodeID", f'Invalid value: "{"x" * 257}": must be 256 '
                                                                       "characters or less")),
    (csinode({**DRV, "name": "Not_A_Name"}), ("spec.drivers[0].name", 'Invalid value: "Not_A_Name": a lowercase '
                                                                      "RFC 1123 subdomain must consist of")),
    (csinode({**DRV, "topologyKeys": ["zone", "zone"]}), ("spec.drivers[0]", 'Duplicate value: "zone"')),
    (csinode({**DRV, "topologyKeys": ["a/b/c"]}), ("spec.drivers[0]", 'Invalid value: "a/b/c"')),
    (csinode({**DRV, "allocatable": {"count": -1}}),
     ("spec.drivers[0].allocatable.count", "Invalid value: -1: must be greater than or equal to 0")),
], ids=["empty", "valid", "dup-name", "no-node-id", "long-node-id", "bad-name", "dup-topology", "bad-topology",
        "negative-count"])
def test_csinode_create(obj, expected):
    got = causes("csinodes", obj, group="storage.k8s.io")
    assert got == [] if expected is None else any(f == expected[0] and m.startswith(expected[1]) for f, m in got), got


def test_csinode_update_adds_drivers_but_never_changes_one():
    old = write("csinodes", csinode(DRV), group="storage.k8s.io")
    other = {"name": "other.example.com", "nodeID": "n"}
    assert causes("csinodes", csinode(DRV, other), old, group="storage.k8s.io") == []
    got = causes("csinodes", csinode({**DRV, "nodeID": "changed"}), old, group="storage.k8s.io")
    assert [f for f, _ in got] == ["CSINodeDriver"] and got[0][1].endswith("field is immutable")


# ---- VolumeAttachment -------------------------------------------------------------------------

INLINE = {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
          "hostPath": {"path": "/data"}}


@pytest.mark.parametrize("obj,expected", [
    (attachment(), None),
    (attachment({"inlineVolumeSpec": INLINE}), None),
    (attachment({}), ("spec.source", "Required value: must specify exactly one of inlineVolumeSpec and "
                                     "persistentVolumeName")),
    (attachment({"persistentVolumeName": "pv1", "inlineVolumeSpec": INLINE}),
     ("spec.source", "Forbidden: must specify exactly one of inlineVolumeSpec and persistentVolumeName")),
    (attachment({"persistentVolumeName": ""}),
     ("spec.source.persistentVolumeName", "Required value: must specify non empty persistentVolumeName")),
    (attachment({"inlineVolumeSpec": {**INLINE, "accessModes": []}}),
     ("spec.source.inlineVolumeSpec.accessModes", "Required value")),
    (attachment(attacher=""), ("spec.attacher", "Required value")),
    (attachment(nodeName="Bad_Node"), ("spec.nodeName", 'Invalid value: "Bad_Node": a lowercase RFC 1123 '
                                                        "subdomain must consist of")),
], ids=["pv", "inline", "no-source", "both-sources", "empty-pv", "bad-inline", "no-attacher", "bad-node"])
def test_volumeattachment_create(obj, expected):
    got = causes("volumeattachments", obj, group="storage.k8s.io")
    assert got == [] if expected is None else any(f == expected[0] and m.startswith(expected[1]) for f, m in got), got


def test_volumeattachment_spec_is_immutable_and_status_starts_detached():
    info = REG.get("storage.k8s.io", "v1", "volumeattachments")
    assert info.has("status")
    obj = attachment()
    obj["status"] = {"attached": True}
    info.strategy.prepare_for_create(info, obj)
    assert obj["status"] == {"attached": False}
    old = write("volumeattachments", obj, group="storage.k8s.io")
    assert causes("volumeattachments", {**old, "status": {"attached": True}}, old, group="storage.k8s.io") == []
    got = causes("volumeattachments", attachment(nodeName="n2"), old, group="storage.k8s.io")
    assert [f for f, _ in got] == ["spec"] and got[0][1].endswith("field is immutable")
    long_error = {**old, "status": {"attached": False, "attachError": {"message": "x" * 1025}}}
    assert causes("volumeattachments", long_error, old, group="storage.k8s.io") == [
        ("status.attachError.message", "Too long: may not be more than 262144 bytes")]


# ---- CSIStorageCapacity -----------------------------------------------------------------------

@pytest.mark.parametrize("obj,expected", [
    (capacity(capacity="10Gi", nodeTopology={"matchLabels": {"zone": "a"}}), None),
    (capacity(storageClassName=""), ("storageClassName", 'Invalid value: "": a lowercase RFC 1123 subdomain')),
    (capacity(capacity="-1Gi"), ("capacity", 'Invalid value: "-1Gi": must be greater than or equal to 0')),
    (capacity(nodeTopology={"matchExpressions": [{"key": "zone", "operator": "Near"}]}), ("nodeTopology", "")),
], ids=["valid", "no-class", "negative", "bad-selector"])
def test_csistoragecapacity_create(obj, expected):
    got = causes("csistoragecapacities", obj, group="storage.k8s.io")
    assert got == [] if expected is None else any(f == expected[0] and m.startswith(
        "Invalid value") and expected[1] in m for f, m in got), got


def test_csistoragecapacity_update():
    old = write("csistoragecapacities", capacity(capacity="1Gi"), group="storage.k8s.io")
    assert causes("csistoragecapacities", capacity(capacity="2Gi"), old, group="storage.k8s.io") == []
    got = causes("csistoragecapacities", capacity(storageClassName="slow"), old, group="storage.k8s.io")
    assert got == [("storageClassName", 'Invalid value: "slow": field is immutable')]
    got = causes("csistoragecapacities", capacity(nodeTopology={}), old, group="storage.k8s.io")
    assert [f for f, _ in got] == ["nodeTopology"]


# ---- kubectl's columns ------------------------------------------------------------------------

def _meta(o: Obj) -> Obj:
    o = copy.deepcopy(o)
    o["metadata"]["creationTimestamp"] = CREATED
    return o


@pytest.mark.parametrize("group,plural,obj,columns,cells", [
    ("", "podtemplates",
     _meta({**podtemplate(), "template": {"metadata": {"labels": {"tier": "web", "app": "x"}}, "spec": {
         "containers": [{"name": "a", "image": "busybox:1.36"}, {"name": "b", "image": "nginx"}]}}}),
     ["Name", "Containers", "Images", "Pod Labels"], ["t", "a,b", "busybox:1.36,nginx", "app=x,tier=web"]),
    ("", "podtemplates", _meta({**podtemplate(), "template": {"spec": {"containers": []}}}),
     ["Name", "Containers", "Images", "Pod Labels"], ["t", "", "", "<none>"]),
    ("storage.k8s.io", "csidrivers", _meta(driver()),
     ["Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests", "RequiresRepublish", "Modes",
      "Age"], ["csi.example.com", True, False, False, "<unset>", False, "<none>", "3m20s"]),
    ("storage.k8s.io", "csidrivers",
     _meta(driver(attachRequired=False, podInfoOnMount=True, storageCapacity=True, requiresRepublish=True,
                  tokenRequests=[{"audience": "a"}, {"audience": "b"}],
                  volumeLifecycleModes=["Persistent", "Ephemeral"])),
     None, ["csi.example.com", False, True, True, "a,b", True, "Persistent,Ephemeral", "3m20s"]),
    ("storage.k8s.io", "csinodes", _meta(csinode(DRV)), ["Name", "Drivers", "Age"], ["n1", 1, "3m20s"]),
    ("storage.k8s.io", "volumeattachments", _meta({**attachment(), "status": {"attached": True}}),
     ["Name", "Attacher", "PV", "Node", "Attached", "Age"], ["va", "csi.example.com", "pv1", "n1", True, "3m20s"]),
    ("storage.k8s.io", "volumeattachments", _meta(attachment({"inlineVolumeSpec": INLINE})),
     None, ["va", "csi.example.com", "", "n1", False, "3m20s"]),
    ("storage.k8s.io", "csistoragecapacities", _meta(capacity(capacity="10Gi")),
     ["Name", "StorageClassName", "Capacity"], ["cap", "fast", "10Gi"]),
    ("storage.k8s.io", "csistoragecapacities", _meta(capacity()), None, ["cap", "fast", "<unset>"]),
], ids=["podtemplate", "podtemplate-empty", "csidriver-unset", "csidriver-set", "csinode", "va-pv", "va-inline",
        "capacity", "capacity-unset"])
def test_tables(group, plural, obj, columns, cells):
    table = to_table(REG.get(group, "v1", plural), [obj], now=NOW)
    if columns is not None:
        assert [c["name"] for c in table["columnDefinitions"]] == columns
    assert table["rows"][0]["cells"] == cells


# ---- the agent's CSINode ----------------------------------------------------------------------

NODE = {"metadata": {"name": "n1", "uid": "uid-1"}}
PLUGINS = ("kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/azure-file,kubernetes.io/cinder,"
           "kubernetes.io/gce-pd,kubernetes.io/portworx-volume,kubernetes.io/vsphere-volume")


def test_csinode_as_the_kubelet_creates_it_is_valid():
    obj = csinode_for(NODE)
    assert obj["metadata"] == {"name": "n1", "annotations": {MIGRATED_PLUGINS_ANNOTATION: PLUGINS},
                               "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1",
                                                    "uid": "uid-1"}]}
    assert obj["spec"] == {"drivers": []}
    assert causes("csinodes", obj, group="storage.k8s.io") == []


@pytest.mark.parametrize("annotations,changed", [
    ({}, True),
    ({MIGRATED_PLUGINS_ANNOTATION: "kubernetes.io/gce-pd"}, True),
    ({MIGRATED_PLUGINS_ANNOTATION: PLUGINS}, False),
    ({MIGRATED_PLUGINS_ANNOTATION: ",".join(reversed(PLUGINS.split(",")))}, False),  # compared as sets
])
def test_migration_annotation(annotations, changed):
    obj = {"metadata": {"name": "n1", "annotations": dict(annotations)}}
    assert set_migration_annotation(obj) is changed
    assert set(obj["metadata"]["annotations"][MIGRATED_PLUGINS_ANNOTATION].split(",")) == set(PLUGINS.split(","))


@pytest.mark.parametrize("refs,changed", [
    ([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}], False),
    ([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-0"}], True),
    ([], True),
])
def test_adopt_points_a_stale_owner_at_the_current_node(refs, changed):
    obj = {"metadata": {"name": "n1", "ownerReferences": refs}}
    assert adopt(obj, NODE) is changed
    assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == ["uid-1"]
