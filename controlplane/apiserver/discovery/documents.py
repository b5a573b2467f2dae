"""Legacy API discovery documents built from the registry (``/api``, ``/apis``, ``/api/v1``,
``/apis/<group>/<version>``) and ``/version``.

Clients that ask for aggregated discovery (kubectl) get ``aggregated.py``'s document instead; it
is converted from these entries. Neighbours: ``registry.py`` (the source of truth),
``server/routes.py`` (routes), ``openapi.py`` (the schema side of discovery).
"""

from __future__ import annotations

import hashlib
from typing import Any

from controlplane.apiserver.discovery.registry import Registry, ResourceInfo

VERSION_INFO = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "controlplane",
    "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
    "compiler": "gc", "platform": "linux/amd64",
}

# subresource -> (kind, group, version, verbs); group/version None = the parent's
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, list[str]]] = {
    "status": (None, None, None, ["get", "patch", "update"]),
    "scale": ("Scale", "autoscaling", "v1", ["get", "patch", "update"]),
    "binding": ("Binding", None, None, ["create"]),
    "log": ("Pod", None, None, ["get"]),
    "exec": ("PodExecOptions", None, None, ["create", "get"]),
    "attach": ("PodAttachOptions", None, None, ["create", "get"]),
    "portforward": ("PodPortForwardOptions", None, None, ["create", "get"]),
    "eviction": ("Eviction", "policy", "v1", ["create"]),
    "proxy": ("NodeProxyOptions", None, None, ["create", "delete", "get", "patch", "update"]),  # per resource below
    "finalize": ("Namespace", None, None, ["update"]),
    "ephemeralcontainers": ("Pod", None, None, ["get", "patch", "update"]),
}

_PROXY_KINDS = {"pods": "PodProxyOptions", "services": "ServiceProxyOptions", "nodes": "NodeProxyOptions"}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _storage_hash(info: ResourceInfo) -> str:
    return hashlib.sha256(f"{info.storage_group}/{info.storage_version}/{info.kind}".encode()).hexdigest()[:12]


def resource_entries(info: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
        "kind": info.kind, "verbs": list(info.verbs), "storageVersionHash": _storage_hash(info),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    out = [main]
    for sub in sorted(info.subresources):
        kind, group, version, verbs = _SUBRESOURCES.get(sub, (None, None, None, ["get"]))
        if sub == "proxy":
            kind = _PROXY_KINDS.get(info.plural, kind)
        entry: dict[str, Any] = {"name": f"{info.plural}/{sub}", "singularName": "",
                                 "namespaced": info.namespaced, "kind": kind or info.kind, "verbs": verbs}
        if group is not None:
            entry["group"], entry["version"] = group, version
        out.append(entry)
    return out


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    infos = registry.resources(group, version)
    if not infos:
        return None
    resources: list[dict[str, Any]] = []
    for info in infos:
        resources.extend(resource_entries(info))
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
