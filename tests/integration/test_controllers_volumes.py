"""PersistentVolumes, PersistentVolumeClaims and StorageClasses end to end with real etcd, the
apiserver, the controller-manager (persistentvolume-binder, pvc-protection, pv-protection,
local-path-provisioner) and the real kubectl: static binding shown by ``kubectl get pv,pvc``,
Retain and Delete on claim deletion, the protection finalizers, the DefaultStorageClass
admission, local-path provisioning on a selected node, the 422s."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import yaml

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from tests.integration.test_controllers_deployment import eventually, new_namespace

pytestmark = pytest.mark.integration


def pv(name: str, size: str = "1Gi", *, cls: str = "manual", policy: str = "Retain", modes=("ReadWriteOnce",),
       labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                     "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/tmp/pv-test/{name}"}}}


def pvc(name: str, ns: str, size: str = "1Gi", *, cls: str | None = "manual", modes=("ReadWriteOnce",)) -> dict:
    spec: dict = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


async def phase(client: RestClient, res, name: str, ns: str | None = None) -> str | None:
    try:
        return ((await client.get(res, name, ns)).get("status") or {}).get("phase")
    except ApiStatusError as e:
        if e.not_found:
            return None
        raise


async def gone(client: RestClient, res, name: str, ns: str | None = None) -> bool:
    try:
        await client.get(res, name, ns)
        return False
    except ApiStatusError as e:
        return e.not_found


async def test_static_binding_smallest_fit_and_kubectl_columns(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pv")
    tag = uuid.uuid4().hex[:5]
    big, small, other = f"big-{tag}", f"small-{tag}", f"rox-{tag}"
    docs = [pv(big, "5Gi"), pv(small, "2Gi"), pv(other, "1Gi", modes=("ReadOnlyMany",)), pvc("data", ns, "1500Mi")]
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMECLAIMS, "data", ns), "Bound"))
        claim = await client.get(R.PERSISTENTVOLUMECLAIMS, "data", ns)
        assert claim["spec"]["volumeName"] == small  # the smallest that fits, RWO
        ann = claim["metadata"]["annotations"]
        assert ann["pv.kubernetes.io/bind-completed"] == "yes" and ann["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert claim["status"]["capacity"] == {"storage": "2Gi"}
        assert "kubernetes.io/pvc-protection" in claim["metadata"]["finalizers"]
        vol = await client.get(R.PERSISTENTVOLUMES, small)
        assert vol["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert "kubernetes.io/pv-protection" in vol["metadata"]["finalizers"]
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMES, big), "Available"))

        out = (await asyncio.to_thread(kubectl, "get", "pv", small, big)).stdout.splitlines()
        assert out[0].split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM",
                                  "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        rows = {line.split()[0]: line.split() for line in out[1:]}
        assert rows[small][:7] == [small, "2Gi", "RWO", "Retain", "Bound", f"{ns}/data", "manual"]
        assert rows[big][:6] == [big, "5Gi", "RWO", "Retain", "Available", "manual"]
        out = (await asyncio.to_thread(kubectl, "get", "pvc", "-n", ns)).stdout.splitlines()
        assert out[0].split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                                  "VOLUMEATTRIBUTESCLASS", "AGE"]
        assert out[1].split()[:7] == ["data", "Bound", small, "2Gi", "RWO", "manual", "<unset>"]
        wide = (await asyncio.to_thread(kubectl, "get", "pv", small, "-o", "wide")).stdout.splitlines()
        assert wide[0].split()[-1] == "VOLUMEMODE" and wide[1].split()[-1] == "Filesystem"
        described = (await asyncio.to_thread(kubectl, "describe", "pvc", "data", "-n", ns)).stdout
        assert "Bound" in described and small in described and "kubernetes.io/pvc-protection" in described
        described = (await asyncio.to_thread(kubectl, "describe", "pv", small)).stdout
        assert f"{ns}/data" in described and "HostPath" in described
        both = (await asyncio.to_thread(kubectl, "get", "pv,pvc", "-n", ns)).stdout
        assert f"persistentvolume/{small}" in both and "persistentvolumeclaim/data" in both

        # Retain: the claim goes, the volume stays Released with its claimRef
        await asyncio.to_thread(kubectl, "delete", "pvc", "data", "-n", ns, "--wait=true")
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMES, small), "Released"))
        await asyncio.sleep(1.0)
        assert await phase(client, R.PERSISTENTVOLUMES, small) == "Released"
        out = (await asyncio.to_thread(kubectl, "get", "pv", small)).stdout.splitlines()
        assert out[1].split()[4:6] == ["Released", f"{ns}/data"]
    finally:
        await asyncio.to_thread(kubectl, "delete", "pv", big, small, other, "--ignore-not-found", "--wait=false")


async def test_delete_policy_and_protection_finalizers(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pvd")
    name = f"del-{uuid.uuid4().hex[:5]}"
    await client.create(R.PERSISTENTVOLUMES, pv(name, "1Gi", cls="slow", policy="Delete"))
    await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("c", ns, "1Gi", cls="slow"), ns)
    await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMECLAIMS, "c", ns), "Bound"))
    # a pod using the claim (no node: never runs) keeps the claim while it exists
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user", "namespace": ns},
           "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox:1"}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}}
    await client.create(R.PODS, pod, ns)
    await client.delete(R.PERSISTENTVOLUMECLAIMS, "c", ns)
    await asyncio.sleep(1.5)
    claim = await client.get(R.PERSISTENTVOLUMECLAIMS, "c", ns)
    assert claim["metadata"].get("deletionTimestamp") and claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    out = (await asyncio.to_thread(kubectl, "get", "pvc", "c", "-n", ns)).stdout.splitlines()
    assert out[1].split()[1] == "Terminating"
    # deleting the volume while bound: pv-protection holds it too
    await client.delete(R.PERSISTENTVOLUMES, name)
    await asyncio.sleep(1.0)
    assert (await client.get(R.PERSISTENTVOLUMES, name))["metadata"].get("deletionTimestamp")
    await client.delete(R.PODS, "user", ns, grace_period_seconds=0)
    # the pod gone: the claim goes, the volume is released and (Delete) removed
    await eventually(lambda: gone(client, R.PERSISTENTVOLUMECLAIMS, "c", ns))
    await eventually(lambda: gone(client, R.PERSISTENTVOLUMES, name))


async def test_default_storage_class_and_local_path_provisioning(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pvlp")
    tag = uuid.uuid4().hex[:5]
    sc_name, node = f"lp-{tag}", f"lp-node-{tag}"
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
          "metadata": {"name": sc_name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(sc))
    await client.create(R.NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": node, "labels": {"kubernetes.io/hostname": node},
        "annotations": {"storage.controlplane.io/local-path-dir": f"/tmp/pv-test/{node}/storage"}}})
    try:
        out = (await asyncio.to_thread(kubectl, "get", "sc", sc_name)).stdout.splitlines()
        assert out[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                                  "ALLOWVOLUMEEXPANSION", "AGE"]
        assert out[1].split()[:6] == [sc_name, "(default)", "rancher.io/local-path", "Delete",
                                      "WaitForFirstConsumer", "false"]
        await eventually(lambda: _default_class_is(client, sc_name))

        async def defaulted() -> bool:
            # DefaultStorageClass reads the apiserver's watch cache: a moment behind the write
            created = await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("lp", ns, "100Mi", cls=None), ns)
            if created["spec"].get("storageClassName") == sc_name:
                return True
            await client.delete(R.PERSISTENTVOLUMECLAIMS, "lp", ns)
            await eventually(lambda: gone(client, R.PERSISTENTVOLUMECLAIMS, "lp", ns))
            return False
        await eventually(defaulted, timeout=10)
        # an explicit "" is no class: not defaulted
        none = await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("none", ns, cls=""), ns)
        assert none["spec"]["storageClassName"] == ""
        # WaitForFirstConsumer: pending, with the event, until a node is selected
        await asyncio.sleep(1.0)
        assert await phase(client, R.PERSISTENTVOLUMECLAIMS, "lp", ns) == "Pending"
        await eventually(lambda: _has_event(client, ns, "lp", "WaitForFirstConsumer"))
        await client.patch(R.PERSISTENTVOLUMECLAIMS, "lp", {"metadata": {"annotations": {
            "volume.kubernetes.io/selected-node": node}}}, ns)
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMECLAIMS, "lp", ns), "Bound"))
        claim = await client.get(R.PERSISTENTVOLUMECLAIMS, "lp", ns)
        uid = claim["metadata"]["uid"]
        vol = await client.get(R.PERSISTENTVOLUMES, f"pvc-{uid}")
        assert vol["spec"]["hostPath"] == {"path": f"/tmp/pv-test/{node}/storage/pvc-{uid}_{ns}_lp",
                                           "type": "DirectoryOrCreate"}
        terms = vol["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]
        assert vol["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert claim["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
        await eventually(lambda: _has_event(client, ns, "lp", "ProvisioningSucceeded"))
        # Delete: the claim gone, the provisioner deletes the volume
        await client.delete(R.PERSISTENTVOLUMECLAIMS, "lp", ns)
        await eventually(lambda: gone(client, R.PERSISTENTVOLUMES, f"pvc-{uid}"))
    finally:
        await asyncio.to_thread(kubectl, "delete", "sc", sc_name, "--ignore-not-found")
        await client.delete(R.NODES, node)


async def test_validation_422s(apiserver, kubectl, client):
    ns = await new_namespace(client, "pvbad")
    bad_pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"bad-{uuid.uuid4().hex[:5]}"},
              "spec": {"capacity": {"storage": "0"}, "accessModes": ["ReadWriteSometimes"],
                       "local": {"path": "/mnt/x"}}}
    res = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(bad_pv), check=False)
    assert res.returncode != 0
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in res.stderr
    assert 'spec.capacity[storage]: Invalid value: "0": must be greater than zero' in res.stderr
    assert "spec.nodeAffinity: Required value: Local volume requires node affinity" in res.stderr
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.PERSISTENTVOLUMES, {"apiVersion": "v1", "kind": "PersistentVolume",
                                                  "metadata": {"name": "nosrc"},
                                                  "spec": {"capacity": {"storage": "1Gi"},
                                                           "accessModes": ["ReadWriteOnce"]}})
    assert e.value.code == 422 and "spec: Required value: must specify a volume type" in e.value.status["message"]
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.PERSISTENTVOLUMECLAIMS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                       "metadata": {"name": "x"}, "spec": {}}, ns)
    msg = e.value.status["message"]
    assert e.value.code == 422 and "spec.accessModes: Required value: at least 1 access mode is required" in msg
    assert "spec.resources[storage]: Required value" in msg
    # a claim's spec is immutable
    await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("imm", ns, cls="nothing-here"), ns)
    res = await asyncio.to_thread(kubectl, "patch", "pvc", "imm", "-n", ns, "-p",
                                  '{"spec":{"accessModes":["ReadWriteMany"]}}', check=False)
    assert res.returncode != 0 and "spec is immutable after creation except resources.requests" in res.stderr
    # StorageClass: provisioner required; parameters immutable
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.STORAGECLASSES, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                               "metadata": {"name": "noprov"}})
    assert e.value.code == 422 and "provisioner: Required value" in e.value.status["message"]
    name = f"sc-{uuid.uuid4().hex[:5]}"
    await client.create(R.STORAGECLASSES, {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                                           "metadata": {"name": name}, "provisioner": "example.com/x",
                                           "parameters": {"a": "1"}})
    try:
        res = await asyncio.to_thread(kubectl, "patch", "sc", name, "-p", '{"parameters":{"a":"2"}}', check=False)
        assert res.returncode != 0 and "parameters: Forbidden: updates to parameters are forbidden." in res.stderr
        sc = await client.get(R.STORAGECLASSES, name)
        assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    finally:
        await client.delete(R.STORAGECLASSES, name)


async def test_discovery_and_short_names(apiserver, kubectl):
    out = (await asyncio.to_thread(kubectl, "api-resources", "--no-headers")).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["persistentvolumes"][1:] == ["pv", "v1", "false", "PersistentVolume"]
    assert rows["persistentvolumeclaims"][1:] == ["pvc", "v1", "true", "PersistentVolumeClaim"]
    assert rows["storageclasses"][1:] == ["sc", "storage.k8s.io/v1", "false", "StorageClass"]


async def _eq(aw, want) -> bool:
    return (await aw) == want


async def _default_class_is(client: RestClient, name: str) -> bool:
    sc = await client.get(R.STORAGECLASSES, name)
    return sc["metadata"]["annotations"].get("storageclass.kubernetes.io/is-default-class") == "true"


async def _has_event(client: RestClient, ns: str, obj: str, reason: str) -> bool:
    items = (await client.list(R.EVENTS, ns)).get("items") or []
    return any(e.get("reason") == reason and (e.get("involvedObject") or {}).get("name") == obj for e in items)


async def test_claim_naming_its_volume_and_volume_reserved_for_a_claim(apiserver, controller_manager, client):
    ns = await new_namespace(client, "pvpre")
    tag = uuid.uuid4().hex[:5]
    small, named, reserved = f"s-{tag}", f"named-{tag}", f"res-{tag}"
    await client.create(R.PERSISTENTVOLUMES, pv(small, "1Gi", cls="pre"))
    await client.create(R.PERSISTENTVOLUMES, pv(named, "8Gi", cls="pre"))
    res = pv(reserved, "9Gi", cls="pre")
    res["spec"]["claimRef"] = {"namespace": ns, "name": "wants-any"}  # pre-bound, no uid yet
    await client.create(R.PERSISTENTVOLUMES, res)
    try:
        by_name = pvc("by-name", ns, "1Gi", cls="pre")
        by_name["spec"]["volumeName"] = named
        await client.create(R.PERSISTENTVOLUMECLAIMS, by_name, ns)
        await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("wants-any", ns, "1Gi", cls="pre"), ns)
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMECLAIMS, "by-name", ns), "Bound"))
        await eventually(lambda: _eq(phase(client, R.PERSISTENTVOLUMECLAIMS, "wants-any", ns), "Bound"))
        assert (await client.get(R.PERSISTENTVOLUMES, named))["spec"]["claimRef"]["name"] == "by-name"
        claim = await client.get(R.PERSISTENTVOLUMECLAIMS, "wants-any", ns)
        assert claim["spec"]["volumeName"] == reserved  # the volume reserved for it, not the smallest
        assert (await client.get(R.PERSISTENTVOLUMES, reserved))["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert await phase(client, R.PERSISTENTVOLUMES, small) == "Available"
    finally:
        for name in (small, named, reserved):
            await client.delete(R.PERSISTENTVOLUMES, name)


async def test_quota_on_claims(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "pvq")
    await asyncio.to_thread(kubectl, "create", "quota", "q", "-n", ns,
                            "--hard=requests.storage=1Gi,persistentvolumeclaims=5,"
                            "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1")

    async def counted() -> dict:
        st = (await client.get(R.RESOURCEQUOTAS, "q", ns)).get("status") or {}
        return "requests.storage" in (st.get("used") or {}) and st
    await eventually(counted)
    await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("a", ns, "600Mi", cls="gold"), ns)
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("b", ns, "600Mi", cls="silver"), ns)
    assert e.value.code == 403
    msg = e.value.status["message"]
    assert "exceeded quota: q, requested: requests.storage=" in msg and "limited: requests.storage=1Gi" in msg
    with pytest.raises(ApiStatusError) as e:
        await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("c", ns, "100Mi", cls="gold"), ns)
    assert "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1" in e.value.status["message"]
    await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("d", ns, "100Mi", cls="silver"), ns)

    async def used() -> bool:
        st = (await client.get(R.RESOURCEQUOTAS, "q", ns)).get("status") or {}
        return (st.get("used") or {}).get("persistentvolumeclaims") == "2"
    await eventually(used)


async def test_limit_range_on_claims(apiserver, client):
    ns = await new_namespace(client, "pvlr")
    await client.create(R.LIMITRANGES, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "storage"},
                                        "spec": {"limits": [{"type": "PersistentVolumeClaim",
                                                             "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]}},
                        ns)

    async def refused() -> str:
        try:
            await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("small", ns, "500Mi"), ns)
        except ApiStatusError as e:
            return e.code == 403 and e.status["message"]
        await client.delete(R.PERSISTENTVOLUMECLAIMS, "small", ns)  # the admission cache was behind
        await eventually(lambda: gone(client, R.PERSISTENTVOLUMECLAIMS, "small", ns))
        return ""
    msg = await eventually(refused, timeout=10)
    assert msg == ('persistentvolumeclaims "small" is forbidden: minimum storage usage per PersistentVolumeClaim '
                   "is 1Gi, but request is 500Mi")
    await client.create(R.PERSISTENTVOLUMECLAIMS, pvc("ok", ns, "2Gi"), ns)


async def test_statefulset_claims_and_retention_policy(apiserver, controller_manager, client):
    """Claims per ordinal with the selector's labels; ``whenScaled: Delete`` removes a condemned
    pod's claims with it, ``whenDeleted: Delete`` the rest with the set (pods played by the
    test's PodSimulator: no node agent)."""
    from tests.fixtures.controllers import PodSimulator
    ns = await new_namespace(client, "pvsts")
    sim = await PodSimulator(client, ns).start()
    try:
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
               "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "podManagementPolicy": "Parallel",
                        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                            {"name": "c", "image": "busybox:1", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                        "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "x"}}, "spec": {
                            "accessModes": ["ReadWriteOnce"], "storageClassName": "none-here",
                            "resources": {"requests": {"storage": "1Gi"}}}}]}}
        await client.create(R.STATEFULSETS, sts, ns)

        async def claims() -> list[str]:
            return sorted(c["metadata"]["name"] for c in (await client.list(R.PERSISTENTVOLUMECLAIMS, ns))["items"])
        await eventually(lambda: _eq(claims(), ["data-db-0", "data-db-1"]))
        c0 = await client.get(R.PERSISTENTVOLUMECLAIMS, "data-db-0", ns)
        assert c0["metadata"]["labels"] == {"tier": "x", "app": "db"}
        assert [r["kind"] for r in c0["metadata"]["ownerReferences"]] == ["StatefulSet"]
        pod = await eventually(lambda: _get_or_none(client, R.PODS, "db-0", ns))
        assert pod["spec"]["volumes"][0] == {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}

        await client.scale(R.STATEFULSETS, "db", 1, ns)
        await eventually(lambda: _eq(claims(), ["data-db-0"]))  # whenScaled: Delete
        await client.delete(R.STATEFULSETS, "db", ns)
        await eventually(lambda: _eq(claims(), []))              # whenDeleted: Delete
    finally:
        await sim.stop()


async def _get_or_none(client: RestClient, res, name: str, ns: str):
    try:
        return await client.get(res, name, ns)
    except ApiStatusError as e:
        if e.not_found:
            return None
        raise
