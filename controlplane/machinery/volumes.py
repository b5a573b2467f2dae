"""The pure rules of persistent volumes, shared by the persistentvolume-binder, the local-path
provisioner, the pvc/pv-protection controllers, the scheduler's VolumeBinding plugin and the
node agent: which PersistentVolume a claim may bind to (kube-controller-manager's
``findMatchingVolume``: class, access modes, capacity, selector, volumeMode, node affinity,
smallest fit first), whether a volume's node affinity admits a node, the annotations of
binding and provisioning, and where the local-path provisioner keeps a claim's data on a node.
No I/O here: table-tested in ``tests/unit/test_volumes.py``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.selectors import LabelSelector

Obj = dict[str, Any]

# annotations (k8s.io/component-helpers/storage/volume and the PV controller)
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"

# k3s's local-path provisioner
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_CLASS = "local-path"
# where a node agent keeps local-path volumes (written by the agent on its Node)
ANN_LOCAL_PATH_DIR = "storage.controlplane.io/local-path-dir"
ANN_LOCAL_PATH_NODE = "local.path.provisioner/selected-node"


def meta(o: Obj) -> Obj:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def spec(o: Obj) -> Obj:
    s = o.get("spec")
    return s if isinstance(s, dict) else {}


def annotations(o: Obj) -> dict[str, str]:
    a = meta(o).get("annotations")
    return a if isinstance(a, dict) else {}


def claim_class(claim: Obj) -> str:
    """``GetPersistentVolumeClaimClass``: the beta annotation wins, then the field, else ""."""
    if ANN_BETA_CLASS in annotations(claim):
        return annotations(claim)[ANN_BETA_CLASS]
    return spec(claim).get("storageClassName") or ""


def volume_class(pv: Obj) -> str:
    if ANN_BETA_CLASS in annotations(pv):
        return annotations(pv)[ANN_BETA_CLASS]
    return spec(pv).get("storageClassName") or ""


def storage_of(rl: Any) -> Fraction | None:
    try:
        return parse_quantity((rl or {}).get("storage")) if isinstance(rl, dict) and "storage" in rl else None
    except (ValueError, TypeError, ZeroDivisionError):
        return None


def claim_request(claim: Obj) -> Fraction:
    return storage_of((spec(claim).get("resources") or {}).get("requests")) or Fraction(0)


def volume_capacity(pv: Obj) -> Fraction:
    return storage_of(spec(pv).get("capacity")) or Fraction(0)


def _match_expression(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    have = key in labels
    val = labels.get(key)
    if op == "In":
        return have and val in values
    if op == "NotIn":
        return not have or val not in values
    if op == "Exists":
        return have
    if op == "DoesNotExist":
        return not have
    if op in ("Gt", "Lt"):
        try:
            a, b = int(val or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def _match_field(expr: Obj, node_name: str) -> bool:
    if expr.get("key") != "metadata.name":
        return False
    return _match_expression(expr, {"metadata.name": node_name})


def node_affinity_admits(pv: Obj, node: Obj) -> bool:
    """``CheckNodeAffinity``: a volume without node affinity fits every node; otherwise one of
    its ``required.nodeSelectorTerms`` (ORed; expressions within a term ANDed) matches."""
    aff = spec(pv).get("nodeAffinity")
    if not isinstance(aff, dict) or not isinstance(aff.get("required"), dict):
        return True
    terms = aff["required"].get("nodeSelectorTerms") or []
    labels = meta(node).get("labels") or {}
    name = meta(node).get("name") or ""
    for t in terms:
        if not isinstance(t, dict):
            continue
        exprs, fields = t.get("matchExpressions") or [], t.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_match_expression(e, labels) for e in exprs) and all(_match_field(f, name) for f in fields):
            return True
    return False


def claim_ref_matches(pv: Obj, claim: Obj) -> bool:
    ref = spec(pv).get("claimRef")
    if not isinstance(ref, dict):
        return False
    m = meta(claim)
    if ref.get("name") != m.get("name") or (ref.get("namespace") or "") != (m.get("namespace") or ""):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


def mismatch(claim: Obj, pv: Obj, node: Obj | None = None) -> str | None:
    """Why ``pv`` cannot satisfy ``claim`` (None when it can), ignoring whether it is taken."""
    cs, vs = spec(claim), spec(pv)
    if claim_class(claim) != volume_class(pv):
        return "storage class mismatch"
    modes = vs.get("accessModes") or []
    if any(m not in modes for m in cs.get("accessModes") or []):
        return "access modes mismatch"
    if volume_capacity(pv) < claim_request(claim):
        return "capacity too small"
    if (cs.get("volumeMode") or "Filesystem") != (vs.get("volumeMode") or "Filesystem"):
        return "volume mode mismatch"
    sel = cs.get("selector")
    if sel is not None:
        try:
            if not LabelSelector.from_dict(sel).matches(meta(pv).get("labels") or {}):
                return "selector mismatch"
        except ValueError:
            return "invalid selector"
    if node is not None and not node_affinity_admits(pv, node):
        return "node affinity mismatch"
    return None


def find_matching_volume(claim: Obj, volumes: list[Obj], node: Obj | None = None) -> Obj | None:
    """``findMatchingVolume``: a volume pre-bound to this claim if one fits, else the smallest
    Available (no ``claimRef``) volume that fits, never one being deleted. A claim naming a
    ``spec.selector`` never takes a pre-bound volume of another claim; one with
    ``volumeName`` set is not matched here (the binder follows the name)."""
    best: Obj | None = None
    for pv in volumes:
        if meta(pv).get("deletionTimestamp"):
            continue
        ref = spec(pv).get("claimRef")
        if isinstance(ref, dict) and ref:
            if claim_ref_matches(pv, claim) and mismatch(claim, pv, node) is None:
                return pv
            continue
        if (pv.get("status") or {}).get("phase") not in (None, "", "Available", "Pending"):
            continue
        if mismatch(claim, pv, node) is not None:
            continue
        if best is None or volume_capacity(pv) < volume_capacity(best) or \
                (volume_capacity(pv) == volume_capacity(best) and meta(pv).get("name", "") < meta(best).get("name", "")):
            best = pv
    return best


def claim_ref(claim: Obj) -> Obj:
    m = meta(claim)
    return {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
            "uid": m.get("uid", ""), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion", "")}


def volume_phase(pv: Obj, claim: Obj | None) -> str:
    """The phase a volume should be in, given the claim its ``claimRef`` names (None: that
    claim is gone, or another claim of the same name took its place)."""
    ref = spec(pv).get("claimRef")
    if not isinstance(ref, dict) or not ref:
        return "Available"
    current = (pv.get("status") or {}).get("phase") or "Pending"
    if claim is None or (ref.get("uid") and ref.get("uid") != meta(claim).get("uid")):
        if current in ("Released", "Failed"):
            return current
        # a volume pre-bound to a claim that does not exist yet stays Available
        return "Released" if ref.get("uid") else "Available"
    vn = spec(claim).get("volumeName")
    if vn == meta(pv).get("name"):
        return "Bound"
    if not vn and current in ("Available", "Bound"):
        # binding half done (the claim's side is next): the claim's sync finishes it, the volume
        # keeps its phase meanwhile, as Kubernetes' syncVolume
        return current
    return "Available"


def local_path_dir_name(claim: Obj) -> str:
    """k3s local-path's directory of a claim: ``pvc-<uid>_<namespace>_<name>``."""
    m = meta(claim)
    return f"pvc-{m.get('uid', '')}_{m.get('namespace', '')}_{m.get('name', '')}"


def local_path_volume_name(claim: Obj) -> str:
    """The PersistentVolume a provisioner creates for a claim (``pvc-<claim uid>``)."""
    return f"pvc-{meta(claim).get('uid', '')}"


def local_path_volume(claim: Obj, sc: Obj, node: str, base_dir: str) -> Obj:
    """The PersistentVolume k3s's local-path provisioner creates for ``claim`` on ``node``:
    a ``hostPath`` directory (``DirectoryOrCreate``) under the node's storage dir, pinned to the
    node by ``nodeAffinity``, pre-bound to the claim, the class's reclaim policy."""
    cs = spec(claim)
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": local_path_volume_name(claim),
                     "annotations": {ANN_PROVISIONED_BY: LOCAL_PATH_PROVISIONER, ANN_LOCAL_PATH_NODE: node}},
        "spec": {
            "capacity": {"storage": ((cs.get("resources") or {}).get("requests") or {}).get("storage", "0")},
            "accessModes": list(cs.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": meta(sc).get("name", ""),
            "volumeMode": cs.get("volumeMode") or "Filesystem",
            "hostPath": {"path": f"{base_dir.rstrip('/')}/{local_path_dir_name(claim)}", "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
            "claimRef": claim_ref(claim),
        },
    }


def pod_claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes name (``persistentVolumeClaim.claimName``), in order."""
    out: list[str] = []
    for v in spec(pod).get("volumes") or []:
        c = (v.get("persistentVolumeClaim") or {}).get("claimName") if isinstance(v, dict) else None
        if c and c not in out:
            out.append(c)
    return out


def pod_is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
