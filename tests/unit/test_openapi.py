"""OpenAPI v3 documents: what kubectl apply (fieldValidation support) and explain need."""

from __future__ import annotations

import json

import pytest

from controlplane.apiserver.discovery import openapi
from controlplane.apiserver.discovery.registry import Registry, ResourceInfo
from controlplane.apiserver.strategy.builtins import builtin_registry

CRONTAB_SCHEMA = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {
        "cronSpec": {"type": "string", "description": "the schedule"},
        "replicas": {"type": "integer"}}}},
}


def _crontab() -> ResourceInfo:
    return ResourceInfo(group="stable.example.com", version="v1", kind="CronTab",
                        plural="crontabs", singular="crontab", namespaced=True,
                        is_custom=True, schema=CRONTAB_SCHEMA, subresources=frozenset({"status"}))


@pytest.fixture(scope="module")
def registry() -> Registry:
    r = builtin_registry()
    r.add(_crontab())
    return r


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_root_lists_every_group_version_with_hash(registry):
    root = openapi.v3_root(registry)
    for key in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/stable.example.com/v1",
                "apis/apiextensions.k8s.io/v1", "apis/coordination.k8s.io/v1"):
        url = root["paths"][key]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        assert len(url.split("hash=")[1]) == 128


@pytest.mark.parametrize("group,version,kind,path", [
    ("", "v1", "Pod", "/api/v1/namespaces/{namespace}/pods/{name}"),
    ("", "v1", "Namespace", "/api/v1/namespaces/{name}"),
    ("", "v1", "Node", "/api/v1/nodes/{name}"),
    ("apps", "v1", "Deployment", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
    ("batch", "v1", "Job", "/apis/batch/v1/namespaces/{namespace}/jobs/{name}"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
     "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
    ("stable.example.com", "v1", "CronTab",
     "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"),
], ids=lambda x: x if isinstance(x, str) and x and "/" not in x else None)
def test_patch_operation_supports_field_validation(registry, group, version, kind, path):
    doc = openapi.v3_group_version(registry, group, version)
    op = doc["paths"][path]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": group, "version": version, "kind": kind}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])
    # kubectl apply picks a strategic merge patch only where the PATCH lists one: never for a
    # custom resource (the apiserver answers 415 to that), as apiextensions-apiserver's OpenAPI
    content = set(op["requestBody"]["content"])
    assert ("application/strategic-merge-patch+json" in content) is (kind != "CronTab")
    assert {"application/merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"} <= content


@pytest.mark.parametrize("group,version", [("", "v1"), ("apps", "v1"), ("stable.example.com", "v1"),
                                           ("apiextensions.k8s.io", "v1")])
def test_every_ref_resolves(registry, group, version):
    doc = openapi.v3_group_version(registry, group, version)
    schemas = doc["components"]["schemas"]
    for ref in set(_refs(doc)):
        assert ref.startswith("#/components/schemas/")
        assert ref.split("/")[-1] in schemas, ref
    json.dumps(doc)  # serialisable


def test_pod_schema_is_the_real_one(registry):
    schemas = openapi.v3_group_version(registry, "", "v1")["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert schemas["io.k8s.api.core.v1.Container"]["properties"]["image"]["type"] == "string"
    assert "enum" not in pod["properties"]["kind"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"


def test_custom_resource_schema_from_crd(registry):
    schemas = openapi.v3_group_version(registry, "stable.example.com", "v1")["components"]["schemas"]
    ct = schemas["com.example.stable.v1.CronTab"]
    assert ct["properties"]["spec"]["properties"]["cronSpec"]["description"] == "the schedule"
    assert ct["properties"]["metadata"]["allOf"][0]["$ref"].endswith(".ObjectMeta")
    assert ct["x-kubernetes-group-version-kind"][0]["kind"] == "CronTab"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas


def test_cache_follows_registry_generation():
    r = builtin_registry()
    before = openapi.v3_root(r)
    assert openapi.v3_group_version(r, "stable.example.com", "v1") is None
    r.add(_crontab())
    after = openapi.v3_root(r)
    assert "apis/stable.example.com/v1" in after["paths"]
    assert after["paths"]["api/v1"] == before["paths"]["api/v1"]  # unchanged doc, same hash
    assert openapi.v3_group_version(r, "unknown.io", "v1") is None
