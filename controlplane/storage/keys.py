"""Storage keys for API objects: where each object lives in etcd.

Layout (as in kube-apiserver): ``/registry/<group>/<resource>/<namespace>/<name>`` with group
``core`` for the legacy (empty) API group, and no namespace segment for cluster-scoped
resources. Neighbours: ``controlplane.storage.etcd`` (the store), the apiserver's registry
and handlers (which build keys with these helpers), ``controlplane.apiserver.watchcache``.

API:
    object_key(group, resource, namespace, name) -> str
    resource_prefix(group, resource, namespace=None) -> str   # ends with "/"
    split_key(key) -> (group, resource, namespace|None, name)  # inverse of object_key
"""

from __future__ import annotations

ROOT = "/registry"


def _group(group: str | None) -> str:
    return group or "core"


def object_key(group: str | None, resource: str, namespace: str | None, name: str) -> str:
    """Key of one object; ``namespace`` None/"" for cluster-scoped resources."""
    if not name:
        raise ValueError("object name must not be empty")
    if namespace:
        return f"{ROOT}/{_group(group)}/{resource}/{namespace}/{name}"
    return f"{ROOT}/{_group(group)}/{resource}/{name}"


def resource_prefix(group: str | None, resource: str, namespace: str | None = None) -> str:
    """Prefix covering every object of a resource (in one namespace if given). Ends in "/"
    so that ``pods`` never matches ``podsecuritypolicies``."""
    if namespace:
        return f"{ROOT}/{_group(group)}/{resource}/{namespace}/"
    return f"{ROOT}/{_group(group)}/{resource}/"


def split_key(key: str) -> tuple[str, str, str | None, str]:
    """``(group, resource, namespace or None, name)`` of a key made by ``object_key``."""
    parts = key.split("/")
    if len(parts) == 6 and parts[1] == "registry":
        return parts[2], parts[3], parts[4], parts[5]
    if len(parts) == 5 and parts[1] == "registry":
        return parts[2], parts[3], None, parts[4]
    raise ValueError(f"not an object key: {key!r}")
