"""Aggregated discovery (apidiscovery.k8s.io/v2): Accept negotiation, the conversion from legacy
APIResource entries, parity with the legacy documents for every group/version (built-ins and a
CRD), the merge with APIService groups, and the cached document with remote backends (real
aiohttp servers on loopback: legacy-only, v2, unreachable)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from controlplane.apiserver.aggregation.discovery import AggregatedDiscovery, merged_items
from controlplane.apiserver.discovery import aggregated as agg
from controlplane.apiserver.discovery import documents as legacy
from controlplane.apiserver.server.crds import infos_for
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.etcd_process import free_port
from tests.unit.test_api_discovery import _crd

V2 = agg.content_type("v2")
V2B1 = agg.content_type("v2beta1")
PB_V2 = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL = f"{V2},{V2B1},application/json"


@pytest.mark.parametrize("accept,want", [
    (KUBECTL, "v2"),
    (f"{V2B1},application/json", "v2beta1"),
    (f"{PB_V2},{KUBECTL}", "v2"),  # protobuf first: its JSON form
    (f"{PB_V2},application/json", agg.LEGACY),
    (PB_V2, None),  # only what we do not serve: 406
    ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", None),
    ("application/json", agg.LEGACY),
    ("", agg.LEGACY),
    ("*/*", agg.LEGACY),
    ("application/vnd.kubernetes.protobuf, */*", agg.LEGACY),
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", agg.LEGACY),
    (f"application/json;q=0.5,{V2}", "v2"),
    (f"{V2};q=0,application/json", agg.LEGACY),
    ("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", "v2"),
], ids=["kubectl", "v2beta1-only", "protobuf-first", "protobuf-then-legacy", "protobuf-only", "unknown-version",
        "json", "empty", "any", "protobuf-legacy", "table", "q-order", "q-zero", "spaces"])
def test_negotiate(accept: str, want: str | None) -> None:
    assert agg.negotiate(accept) == want


GVK = {"group": "g.io", "version": "v1", "kind": "Thing"}


@pytest.mark.parametrize("entries,want", [
    ([{"name": "things", "singularName": "thing", "namespaced": True, "kind": "Thing", "verbs": ["get", "list"]}],
     [{"resource": "things", "responseKind": GVK, "scope": "Namespaced", "singularResource": "thing",
       "verbs": ["get", "list"]}]),
    ([{"name": "things", "singularName": "thing", "namespaced": False, "kind": "Thing", "verbs": [],
       "shortNames": ["th"], "categories": ["all"]},
      {"name": "things/status", "singularName": "", "namespaced": False, "kind": "Thing", "verbs": ["get"]},
      {"name": "things/scale", "namespaced": False, "group": "autoscaling", "version": "v1", "kind": "Scale",
       "verbs": ["get", "update"]}],
     [{"resource": "things", "responseKind": GVK, "scope": "Cluster", "singularResource": "thing", "verbs": [],
       "shortNames": ["th"], "categories": ["all"], "subresources": [
           {"subresource": "status", "verbs": ["get"], "responseKind": GVK},
           {"subresource": "scale", "verbs": ["get", "update"],
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}}]}]),
    ([{"name": "orphans/proxy", "namespaced": True, "kind": "", "verbs": ["get"]}],
     [{"resource": "orphans", "responseKind": {"group": "", "version": "", "kind": ""}, "scope": "Namespaced",
       "singularResource": "", "verbs": [], "subresources": [
           {"subresource": "proxy", "verbs": ["get"], "responseKind": {"group": "", "version": "", "kind": ""}}]}]),
], ids=["plain", "cluster-with-subresources", "orphan-subresource"])
def test_resources_from_list(entries: list[dict], want: list[dict]) -> None:
    assert agg.resources_from_list("g.io", "v1", entries) == want


def _registry_with_crd():
    reg = builtin_registry()
    for info in infos_for(_crd()):
        reg.add(info)
    return reg


def _as_legacy(group: str, version: str, resources: list[dict]) -> list[dict]:
    """The aggregated resources back as legacy APIResource fields (written independently of the
    conversion under test)."""
    out = []
    for r in resources:
        kind = r["responseKind"]
        out.append({"name": r["resource"], "singularName": r["singularResource"],
                    "namespaced": r["scope"] == "Namespaced", "kind": kind["kind"], "verbs": r["verbs"],
                    "shortNames": r.get("shortNames", []), "categories": r.get("categories", []),
                    "gv": (kind["group"], kind["version"])})
        for s in r.get("subresources", []):
            k = s["responseKind"]
            out.append({"name": f"{r['resource']}/{s['subresource']}", "singularName": "",
                        "namespaced": r["scope"] == "Namespaced", "kind": k["kind"], "verbs": s["verbs"],
                        "shortNames": [], "categories": [], "gv": (k["group"], k["version"])})
    return sorted(out, key=lambda e: e["name"])


def test_same_data_as_legacy_discovery_for_every_group_version() -> None:
    reg = _registry_with_crd()
    groups = agg.local_groups(reg)
    gvs = reg.group_versions()
    assert set(groups) == set(gvs) and "example.com" in groups
    checked = 0
    for group, versions in gvs.items():
        docs = groups[group]["versions"]
        assert [d["version"] for d in docs] == versions  # preferred first, as the legacy order
        for doc in docs:
            assert doc["freshness"] == agg.CURRENT
            want = []
            for e in legacy.api_resource_list(reg, group, doc["version"])["resources"]:
                want.append({"name": e["name"], "singularName": e["singularName"], "namespaced": e["namespaced"],
                             "kind": e["kind"], "verbs": e["verbs"], "shortNames": e.get("shortNames", []),
                             "categories": e.get("categories", []),
                             "gv": (e.get("group", group), e.get("version", doc["version"]))})
            assert _as_legacy(group, doc["version"], doc["resources"]) == sorted(want, key=lambda e: e["name"]), \
                f"{group}/{doc['version']}"
            checked += 1
    assert checked == sum(len(v) for v in gvs.values())
    assert groups[""]["metadata"] == {} and groups["apps"]["metadata"] == {"name": "apps"}


def _aps(name: str, group: str, version: str, *, available: bool = True, service: bool = True, **spec: Any) -> dict:
    s: dict[str, Any] = {"group": group, "version": version, "groupPriorityMinimum": 100, "versionPriority": 10, **spec}
    if service:
        s["service"] = {"namespace": "ns", "name": name.split(".")[0], "port": 443}
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": s,
            "status": {"conditions": [{"type": "Available", "status": "True" if available else "False"}]}}


def test_merged_items_order_and_stale_placeholders() -> None:
    reg = builtin_registry()
    local = agg.local_groups(reg)
    services = [_aps("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1"),
                _aps("v2.custom.example.com", "custom.example.com", "v2", groupPriorityMinimum=200),
                _aps("v1.custom.example.com", "custom.example.com", "v1", versionPriority=5),
                _aps("v1.apps", "apps", "v1", service=False)]
    remote = {("metrics.k8s.io", "v1beta1"): agg.version_doc("v1beta1", [{"resource": "nodes"}])}
    items = merged_items(local, services, reg.group_versions(), remote)
    names = [i["metadata"].get("name") for i in items]
    assert "" not in names and names[-2:] == ["custom.example.com", "metrics.k8s.io"]
    assert names[0] == "apps"  # a local APIService leaves the group local
    custom = items[-2]["versions"]
    assert [(v["version"], v["freshness"]) for v in custom] == [("v2", "Stale"), ("v1", "Stale")]
    assert items[-1]["versions"] == [{"version": "v1beta1", "resources": [{"resource": "nodes"}],
                                      "freshness": "Current"}]


# -- the cached document with backends -------------------------------------------------------

class _APIServices:
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def all(self) -> list[dict]:  # a new list on every change, as the watch-cache-backed one
        return list(self.items)


class _Resolver:
    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    def url(self, apiservice: dict) -> str:
        return f"http://127.0.0.1:{self.ports[apiservice['spec']['service']['name']]}"


class _TLS:
    def for_apiservice(self, apiservice: dict) -> tuple[bool, None]:
        return False, None


class _Proxy:
    def __init__(self, ports: dict[str, int]) -> None:
        self.resolver = _Resolver(ports)
        self.tls = _TLS()


NODE = {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]}


async def _backend(v2: bool, seen: list[tuple[str, str, str]]) -> tuple[web.AppRunner, int]:
    app = web.Application()

    async def apis(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Accept", ""), request.headers.get("X-Remote-User", "")))
        if v2 and "as=APIGroupDiscoveryList" in request.headers.get("Accept", ""):
            body = agg.document([agg.group_doc("wardle.example.com", [agg.version_doc(
                "v1alpha1", [{"resource": "flunders", "scope": "Namespaced", "verbs": ["get"],
                              "responseKind": {"group": "wardle.example.com", "version": "v1alpha1",
                                               "kind": "Flunder"}}])])])
            return web.Response(body=json.dumps(body), headers={"Content-Type": V2})
        return web.json_response({"kind": "APIGroupList", "groups": []})

    async def gv(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Accept", ""), request.headers.get("X-Remote-User", "")))
        return web.json_response({"kind": "APIResourceList", "groupVersion": "metrics.k8s.io/v1beta1",
                                  "resources": [NODE]})

    app.router.add_get("/apis", apis)
    app.router.add_get("/apis/metrics.k8s.io/v1beta1", gv)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def test_document_with_backends_cached_per_change() -> None:
    async def run() -> None:
        seen: list[tuple[str, str, str]] = []
        legacy_runner, legacy_port = await _backend(False, seen)
        v2_runner, v2_port = await _backend(True, seen)
        reg = builtin_registry()
        metrics = _aps("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1", service=True)
        metrics["spec"]["service"]["name"] = "metrics"
        wardle = _aps("v1alpha1.wardle.example.com", "wardle.example.com", "v1alpha1")
        wardle["spec"]["service"]["name"] = "wardle"
        services = _APIServices([metrics, wardle])
        ports = {"metrics": legacy_port, "wardle": v2_port}
        d = AggregatedDiscovery(services, reg, _Proxy(ports), refresh=3600, timeout=2)  # type: ignore[arg-type]
        try:
            body, etag = await d.document("apis", "v2")
            doc = json.loads(body)
            assert doc["apiVersion"] == "apidiscovery.k8s.io/v2" and doc["kind"] == "APIGroupDiscoveryList"
            m = agg.find_version(doc, "metrics.k8s.io", "v1beta1")
            assert m is not None and m["freshness"] == "Current"
            assert m["resources"][0]["resource"] == "nodes" and m["resources"][0]["scope"] == "Cluster"
            assert m["resources"][0]["responseKind"] == {"group": "metrics.k8s.io", "version": "v1beta1",
                                                         "kind": "NodeMetrics"}
            w = agg.find_version(doc, "wardle.example.com", "v1alpha1")
            assert w is not None and w["resources"][0]["resource"] == "flunders" and w["freshness"] == "Current"
            # the legacy backend was asked for v2 first, then its group/version list; as kube-aggregator
            assert [p for p, _, _ in seen].count("/apis/metrics.k8s.io/v1beta1") == 1
            assert all(u == "system:kube-aggregator" for _, _, u in seen)
            assert all(agg.KIND in a for p, a, _ in seen if p == "/apis")

            # no change: the same bytes, no fetch
            n = len(seen)
            again, etag2 = await d.document("apis", "v2")
            assert again is body and etag2 == etag and len(seen) == n
            b1, _ = await d.document("apis", "v2beta1")
            assert json.loads(b1)["apiVersion"] == "apidiscovery.k8s.io/v2beta1"

            # a CRD: a new document
            for info in infos_for(_crd()):
                reg.add(info)
            body2, etag3 = await d.document("apis", "v2")
            assert etag3 != etag and agg.find_version(json.loads(body2), "example.com", "v1") is not None

            # the backend goes away: its APIService changes, the last resources stay, Stale
            await legacy_runner.cleanup()
            metrics["metadata"]["resourceVersion"] = "2"
            metrics["spec"]["versionPriority"] = 11
            m = agg.find_version(json.loads((await d.document("apis", "v2"))[0]), "metrics.k8s.io", "v1beta1")
            assert m is not None and m["freshness"] == "Stale" and m["resources"][0]["resource"] == "nodes"
            # unavailable: not asked at all
            n = len(seen)
            wardle["status"]["conditions"][0]["status"] = "False"
            wardle["metadata"]["resourceVersion"] = "2"
            w = agg.find_version(json.loads((await d.document("apis", "v2"))[0]), "wardle.example.com", "v1alpha1")
            assert w is not None and w["freshness"] == "Stale" and len(seen) == n
            # deleted: gone
            services.items = [metrics]
            doc = json.loads((await d.document("apis", "v2"))[0])
            assert agg.find_version(doc, "wardle.example.com", "v1alpha1") is None

            core = json.loads((await d.document("api", "v2"))[0])
            assert [i["metadata"] for i in core["items"]] == [{}]
            assert core["items"][0]["versions"][0]["version"] == "v1"
        finally:
            await d.close()
            await v2_runner.cleanup()

    asyncio.run(run())
