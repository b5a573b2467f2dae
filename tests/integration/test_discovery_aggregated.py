"""Aggregated discovery (apidiscovery.k8s.io/v2) on the real apiserver, read by the real
kubectl: the negotiation kubectl relies on (Content-Type, v2beta1, protobuf first, 406), the
ETag/304, the same data as every legacy APIResourceList, CRDs followed at once, readable by any
authenticated user (system:discovery), and kubectl doing its discovery in two requests."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from controlplane.apiserver.discovery import aggregated as agg
from tests.fixtures.apiserver import ApiServerProcess, Kubectl, make_kubectl

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

V2 = agg.content_type("v2")
V2B1 = agg.content_type("v2beta1")
KUBECTL_ACCEPT = f"{V2},{V2B1},application/json"
PB_V2 = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _crd(group: str, plural: str, kind: str) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Cluster",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": ["gz"],
                               "categories": ["all"]},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


@pytest.mark.parametrize("path", ["/api", "/apis"])
@pytest.mark.parametrize("accept,ctype,api_version", [
    (KUBECTL_ACCEPT, V2, "apidiscovery.k8s.io/v2"),
    (f"{V2B1},application/json", V2B1, "apidiscovery.k8s.io/v2beta1"),
    (f"{PB_V2},{KUBECTL_ACCEPT}", V2, "apidiscovery.k8s.io/v2"),
    (f"{PB_V2},application/json", "application/json", "v1"),
    ("application/json", "application/json", "v1"),
], ids=["kubectl", "v2beta1", "protobuf-first", "protobuf-then-legacy", "legacy"])
def test_negotiation(apiserver: ApiServerProcess, path: str, accept: str, ctype: str, api_version: str) -> None:
    with apiserver.http() as h:
        r = h.get(path, headers={"Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == ctype
    doc = r.json()
    if ctype == "application/json":
        assert doc["kind"] == ("APIVersions" if path == "/api" else "APIGroupList")
    else:
        assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == api_version
        names = [i["metadata"].get("name", "") for i in doc["items"]]
        assert names == [""] if path == "/api" else ("apps" in names and "" not in names)


def test_protobuf_only_is_not_acceptable_and_etag(apiserver: ApiServerProcess) -> None:
    with apiserver.http() as h:
        r = h.get("/apis", headers={"Accept": PB_V2})
        assert r.status_code == 406 and r.json()["reason"] == "NotAcceptable", r.text
        r = h.get("/apis", headers={"Accept": KUBECTL_ACCEPT})
        etag = r.headers["etag"]
        assert etag.startswith('"') and r.headers["vary"] == "Accept"
        again = h.get("/apis", headers={"Accept": KUBECTL_ACCEPT, "If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
        other = h.get("/apis", headers={"Accept": KUBECTL_ACCEPT, "If-None-Match": '"nope"'})
        assert other.status_code == 200 and other.content == r.content


def test_same_resources_as_every_legacy_list(apiserver: ApiServerProcess) -> None:
    """Served side by side: every group/version of the aggregated document has exactly the
    legacy APIResourceList's resources (so the two can never drift), and every legacy group
    and version is in the aggregated document, in the same order."""
    with apiserver.http() as h:
        items = h.get("/api", headers={"Accept": KUBECTL_ACCEPT}).json()["items"]
        items += h.get("/apis", headers={"Accept": KUBECTL_ACCEPT}).json()["items"]
        groups = h.get("/apis").json()["groups"]
        legacy_gvs = ["v1"] + [v["groupVersion"] for g in groups for v in g["versions"]]
        agg_gvs = [f"{i['metadata']['name']}/{v['version']}" if i["metadata"].get("name") else v["version"]
                   for i in items for v in i["versions"]]
        assert agg_gvs == legacy_gvs
        for item in items:
            group = item["metadata"].get("name", "")
            for v in item["versions"]:
                assert v["freshness"] == "Current"
                gv = f"{group}/{v['version']}" if group else v["version"]
                listed = h.get(f"/apis/{gv}" if group else f"/api/{gv}").json()["resources"]
                want = sorted((e["name"], e["kind"], e.get("group", group), e.get("version", v["version"]),
                               e["namespaced"], tuple(e["verbs"]), tuple(e.get("shortNames", ())),
                               tuple(e.get("categories", ()))) for e in listed)
                got = []
                for r in v.get("resources", []):
                    k = r["responseKind"]
                    ns = r["scope"] == "Namespaced"
                    got.append((r["resource"], k["kind"], k["group"], k["version"], ns, tuple(r["verbs"]),
                                tuple(r.get("shortNames", ())), tuple(r.get("categories", ()))))
                    for s in r.get("subresources", []):
                        k = s["responseKind"]
                        got.append((f"{r['resource']}/{s['subresource']}", k["kind"], k["group"], k["version"], ns,
                                    tuple(s["verbs"]), (), ()))
                assert sorted(got) == want, gv


def _requests(stderr: str) -> list[str]:
    return re.findall(r'"Response" verb="GET" url="([^"]+)"', stderr) or re.findall(r"GET (https?://\S+) \d+", stderr)


def test_kubectl_discovers_in_two_requests(apiserver: ApiServerProcess, tmp_path: Path) -> None:
    for i, args in enumerate((["api-resources"], ["get", "pods", "-A"], ["explain", "deployment"])):
        kubectl = make_kubectl(apiserver.kubeconfig, tmp_path / f"cache{i}")  # a cold cache each time
        r = kubectl("-v=6", *args)
        urls = [u.split("?")[0] for u in _requests(r.stderr)]
        assert urls[:2] and {u.rsplit("/", 1)[1] for u in urls[:2]} == {"api", "apis"}, urls
        per_gv = [u for u in urls if re.search(r"^https?://[^/]+/(api/v1|apis/[^/]+/[^/]+)$", u)]
        assert per_gv == [], per_gv
        if args[0] == "api-resources":
            assert "deployments" in r.stdout and "customresourcedefinitions" in r.stdout
        if args[0] == "explain":
            assert "DeploymentSpec" in r.stdout or "spec" in r.stdout


def test_kubectl_follows_crds(apiserver: ApiServerProcess, kubectl: Kubectl) -> None:
    group = f"d{uuid.uuid4().hex[:6]}.example.com"
    kubectl("api-resources")  # the cache now holds the document without the CRD
    kubectl("create", "-f", "-", input=json.dumps(_crd(group, "gizmos", "Gizmo")))
    try:
        kubectl("create", "-f", "-", input=json.dumps({"apiVersion": f"{group}/v1", "kind": "Gizmo",
                                                       "metadata": {"name": "g1"}}))
        out = kubectl("get", f"gizmos.{group}").stdout
        assert "g1" in out, out
        res = kubectl("api-resources", f"--api-group={group}").stdout
        assert "gizmos" in res and "gz" in res and "Gizmo" in res, res
        with apiserver.http() as h:
            doc = h.get("/apis", headers={"Accept": KUBECTL_ACCEPT}).json()
        v = agg.find_version(doc, group, "v1")
        assert v is not None
        (r,) = v["resources"]
        assert r["scope"] == "Cluster" and r["categories"] == ["all"] and r["singularResource"] == "gizmo"
        assert r["subresources"] == [{"subresource": "status", "verbs": ["get", "patch", "update"],
                                      "responseKind": {"group": group, "version": "v1", "kind": "Gizmo"}}]
    finally:
        kubectl("delete", "crd", f"gizmos.{group}", "--wait=true")
    with apiserver.http() as h:
        assert agg.find_version(h.get("/apis", headers={"Accept": KUBECTL_ACCEPT}).json(), group, "v1") is None


def test_readable_by_any_authenticated_user(apiserver: ApiServerProcess) -> None:
    """/api and /apis stay under system:discovery (every authenticated user)."""
    with apiserver.http(user=f"nobody-{uuid.uuid4().hex[:6]}") as h:
        for path in ("/api", "/apis"):
            r = h.get(path, headers={"Accept": KUBECTL_ACCEPT})
            assert r.status_code == 200 and r.headers["content-type"] == V2, (path, r.text)
        assert h.get("/api/v1/namespaces").status_code == 403
