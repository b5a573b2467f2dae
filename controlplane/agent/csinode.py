"""This node's CSINode (``storage.k8s.io/v1``), as the kubelet's CSI volume plugin makes it at
start (``nodeinfomanager.InitializeCSINodeWithAnnotation``): a CSINode named like the Node and
owned by it (an ownerReference without ``controller``, so the garbage collector removes it with
the Node), no drivers (no CSI plugin registers with this agent), and the
``storage.alpha.kubernetes.io/migrated-plugins`` annotation listing the in-tree volume plugins
the 1.32 kubelet treats as migrated to CSI (the scheduler's volume limits read it). An existing
CSINode only gets the annotation set right, as the kubelet's; ours also points a stale owner
reference (a Node deleted and registered again) at the current Node. Caller: ``node.NodeManager``
(at registration, retried with the heartbeat until it succeeds).
"""

from __future__ import annotations

from typing import Any

from controlplane.client.resources import CSINODES
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger

log = get_logger(__name__)

MIGRATED_PLUGINS_ANNOTATION = "storage.alpha.kubernetes.io/migrated-plugins"
# csi_plugin.go's migratedPlugins whose gate is on in 1.32 (GCE PD, AWS EBS, Cinder, Azure
# Disk/File, vSphere: GA; Portworx: beta, on since 1.31), sorted as sets.List writes them
MIGRATED_PLUGINS = ("kubernetes.io/aws-ebs", "kubernetes.io/azure-disk", "kubernetes.io/azure-file",
                    "kubernetes.io/cinder", "kubernetes.io/gce-pd", "kubernetes.io/portworx-volume",
                    "kubernetes.io/vsphere-volume")

Obj = dict[str, Any]


def owner_reference(node: Obj) -> Obj:
    meta = node.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Node", "name": meta.get("name", ""), "uid": meta.get("uid", "")}


def csinode_for(node: Obj) -> Obj:
    """The CSINode the kubelet creates for ``node`` (``CreateCSINode``)."""
    name = (node.get("metadata") or {}).get("name", "")
    return {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": name, "ownerReferences": [owner_reference(node)],
                         "annotations": {MIGRATED_PLUGINS_ANNOTATION: ",".join(MIGRATED_PLUGINS)}},
            "spec": {"drivers": []}}


def set_migration_annotation(csinode: Obj) -> bool:
    """``setMigrationAnnotation``: True when the annotation had to change (compared as sets)."""
    meta = csinode.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    current = annotations.get(MIGRATED_PLUGINS_ANNOTATION, "")
    if set(filter(None, current.split(","))) == set(MIGRATED_PLUGINS):
        return False
    meta["annotations"] = {**annotations, MIGRATED_PLUGINS_ANNOTATION: ",".join(MIGRATED_PLUGINS)}
    return True


def adopt(csinode: Obj, node: Obj) -> bool:
    """Point the Node owner reference at ``node`` when it names an older Node of that name."""
    meta = csinode.setdefault("metadata", {})
    refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict)]
    uid = (node.get("metadata") or {}).get("uid")
    if not uid or any(r.get("kind") == "Node" and r.get("uid") == uid for r in refs):
        return False
    meta["ownerReferences"] = [r for r in refs if r.get("kind") != "Node"] + [owner_reference(node)]
    return True


async def ensure_csinode(client: RestClient, node: Obj) -> Obj:
    """Create the CSINode of ``node``, or fix an existing one's annotation and owner."""
    name = (node.get("metadata") or {}).get("name", "")
    try:
        current = await client.get(CSINODES, name)
    except ApiStatusError as e:
        if not e.not_found:
            raise
        created = await client.create(CSINODES, csinode_for(node))
        log.info("csinode created", node=name)
        return created
    if set_migration_annotation(current) | adopt(current, node):
        return await client.update(CSINODES, current)
    return current
