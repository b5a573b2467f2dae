"""Aggregated discovery (``apidiscovery.k8s.io/v2``, and ``v2beta1``), as kube-apiserver >= 1.30
serves it on ``/api`` and ``/apis`` to clients that ask for it (kubectl): one
``APIGroupDiscoveryList`` with every group, its versions (preferred first) and each version's
resources, so a client needs two requests instead of one per group/version.

The resources are converted from the legacy ``APIResourceList`` entries (``documents.py``:
``resource_entries``), as Kubernetes' ``ConvertGroupVersionIntoToDiscovery`` does, so both
documents carry the same data; the aggregation layer converts a backend's legacy list the same
way. Also here: the ``Accept`` negotiation between the legacy and the aggregated documents.
Neighbours: ``documents.py`` (legacy discovery), ``aggregation/discovery.py`` (the merged
document with the APIService groups, cached), ``server/routes.py``.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.documents import resource_entries
from controlplane.apiserver.discovery.registry import Registry

Obj = dict[str, Any]
GROUP = "apidiscovery.k8s.io"
KIND = "APIGroupDiscoveryList"
VERSIONS = ("v2", "v2beta1")
CURRENT, STALE = "Current", "Stale"
LEGACY = "legacy"  # negotiate(): answer the legacy document


def content_type(version: str) -> str:
    """The Content-Type of an aggregated document (client-go compares its parameters)."""
    return f"application/json;g={GROUP};v={version};as={KIND}"


def media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an Accept header, highest ``q`` first (stable otherwise)."""
    out: list[tuple[float, int, str, dict[str, str]]] = []
    for i, clause in enumerate(accept.split(",")):
        parts = [p.strip() for p in clause.split(";")]
        if not parts[0]:
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            out.append((-q, i, parts[0].lower(), params))
    return [(t, p) for _, _, t, p in sorted(out, key=lambda c: (c[0], c[1]))]


def negotiate(accept: str) -> str | None:
    """``/api`` and ``/apis``: the aggregated version to answer (``v2``/``v2beta1``), ``LEGACY``,
    or None when the client asked only for aggregated forms we do not serve (406, as Kubernetes).

    Media ranges are taken in order of preference: an aggregated JSON one we serve wins; an
    aggregated protobuf one is skipped (the next range kubectl sends is the JSON form); any
    range without ``as=`` (``application/json``, ``*/*``, protobuf) gets the legacy document
    (always JSON here, as every response of this server may be)."""
    asked_aggregated = False
    for mtype, params in media_ranges(accept):
        if "as" in params:
            if params.get("as") == KIND and params.get("g") == GROUP:
                asked_aggregated = True
                if mtype in ("application/json", "application/*", "*/*") and params.get("v") in VERSIONS:
                    return params["v"]
            continue  # as=Table and other conversions do not apply to discovery
        if mtype in ("application/json", "application/*", "*/*", "application/vnd.kubernetes.protobuf"):
            return LEGACY
    return None if asked_aggregated else LEGACY


def _gvk(entry: Obj, group: str, version: str) -> Obj:
    """An entry's kind; its group/version default to the list's (legacy lists name them only
    when they differ, e.g. ``deployments/scale``: ``autoscaling/v1`` ``Scale``)."""
    if "group" in entry or "version" in entry:
        group, version = entry.get("group") or "", entry.get("version") or version
    return {"group": group, "version": version, "kind": entry.get("kind") or ""}


def resources_from_list(group: str, version: str, entries: list[Obj]) -> list[Obj]:
    """Legacy ``APIResource`` entries of ``group/version`` -> ``APIResourceDiscovery`` list
    (Kubernetes' ``ConvertGroupVersionIntoToDiscovery``): one entry per resource, its
    ``plural/sub`` entries become its ``subresources``; a subresource without its resource
    gets an (empty) parent."""
    out: list[Obj] = []
    parents: dict[str, Obj] = {}
    for e in entries:
        name = e.get("name") or ""
        if "/" in name:
            continue
        r: Obj = {"resource": name, "responseKind": _gvk(e, group, version),
                  "scope": "Namespaced" if e.get("namespaced") else "Cluster",
                  "singularResource": e.get("singularName") or "", "verbs": list(e.get("verbs") or [])}
        if e.get("shortNames"):
            r["shortNames"] = list(e["shortNames"])
        if e.get("categories"):
            r["categories"] = list(e["categories"])
        out.append(r)
        parents[name] = r
    for e in entries:
        parent, _, sub = (e.get("name") or "").partition("/")
        if not sub:
            continue
        r = parents.get(parent)
        if r is None:
            r = {"resource": parent, "responseKind": {"group": "", "version": "", "kind": ""},
                 "scope": "Namespaced" if e.get("namespaced") else "Cluster", "singularResource": "", "verbs": []}
            out.append(r)
            parents[parent] = r
        s: Obj = {"subresource": sub, "verbs": list(e.get("verbs") or [])}
        s["responseKind"] = _gvk(e, group, version) if e.get("kind") else {"group": "", "version": "", "kind": ""}
        r.setdefault("subresources", []).append(s)
    return out


def version_doc(version: str, resources: list[Obj], freshness: str = CURRENT) -> Obj:
    doc: Obj = {"version": version}
    if resources:
        doc["resources"] = resources
    doc["freshness"] = freshness
    return doc


def group_doc(name: str, versions: list[Obj]) -> Obj:
    g: Obj = {"metadata": {"name": name} if name else {}}
    if versions:
        g["versions"] = versions
    return g


def local_version(registry: Registry, group: str, version: str) -> Obj:
    entries: list[Obj] = []
    for info in registry.resources(group, version):
        entries.extend(resource_entries(info))
    return version_doc(version, resources_from_list(group, version, entries))


def local_groups(registry: Registry) -> dict[str, Obj]:
    """Every group the registry serves (``""``: the legacy core group), in the order of the
    legacy ``/apis``, each with its versions preferred first."""
    return {g: group_doc(g, [local_version(registry, g, v) for v in vs])
            for g, vs in registry.group_versions().items()}


def document(items: list[Obj], version: str = "v2") -> Obj:
    return {"kind": KIND, "apiVersion": f"{GROUP}/{version}", "metadata": {}, "items": items}


def find_version(doc: Obj, group: str, version: str) -> Obj | None:
    """The ``APIVersionDiscovery`` of ``group/version`` in an ``APIGroupDiscoveryList``."""
    for g in doc.get("items") or []:
        if ((g.get("metadata") or {}).get("name") or "") != group:
            continue
        for v in g.get("versions") or []:
            if v.get("version") == version:
                return v
    return None
