"""``/openapi/v2``: the v3 -> v2 conversion, CRD schemas as apiextensions publishes them in v2,
the merged document, Accept negotiation and gnostic's protobuf form (what client-go decodes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import descriptor_pb2

from controlplane.apiserver.discovery import openapi_v2
from controlplane.apiserver.discovery.openapi_v2 import crd_schema_to_v2, operation_to_v2, schema_to_v2
from controlplane.apiserver.discovery.registry import Registry, ResourceInfo
from controlplane.apiserver.discovery import openapi_v2_pb
from controlplane.apiserver.strategy.builtins import builtin_registry

OM3 = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
OM2 = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {"spec": {
        "type": "object", "required": ["size", "note"],
        "properties": {
            "size": {"type": "integer", "description": "how big"},
            "note": {"type": "string", "nullable": True},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                      "properties": {"a": {"type": "string"}}},
        }}},
}


def _widget(schema=WIDGET_SCHEMA) -> ResourceInfo:
    return ResourceInfo(group="oa2.example.com", version="v1", kind="Widget", plural="widgets",
                        singular="widget", namespaced=True, is_custom=True, schema=schema,
                        subresources=frozenset({"status"}))


@pytest.fixture(scope="module")
def registry() -> Registry:
    r = builtin_registry()
    r.add(_widget())
    return r


@pytest.fixture(scope="module")
def doc(registry) -> dict:
    return openapi_v2.document(registry)


# ---------------------------------------------------------------- schema conversion


@pytest.mark.parametrize("v3,v2", [
    ({"$ref": OM3}, {"$ref": OM2}),
    # kube-openapi's v3 wraps a described ref in allOf; v2 has the ref with siblings
    ({"allOf": [{"$ref": OM3}], "description": "meta", "default": {}},
     {"$ref": OM2, "description": "meta", "default": {}}),
    # several allOf members stay allOf (v2 has it), refs converted
    ({"allOf": [{"$ref": OM3}, {"type": "object"}]}, {"allOf": [{"$ref": OM2}, {"type": "object"}]}),
    ({"type": "string", "nullable": True, "writeOnly": True, "deprecated": True}, {"type": "string"}),
    ({"oneOf": [{"type": "string"}], "anyOf": [{"type": "integer"}], "not": {"type": "boolean"}}, {}),
    ({"discriminator": {"propertyName": "kind"}, "type": "object"}, {"type": "object"}),
    ({"type": "object", "properties": {"m": {"allOf": [{"$ref": OM3}], "description": "d"}}},
     {"type": "object", "properties": {"m": {"$ref": OM2, "description": "d"}}}),
    ({"type": "array", "items": {"$ref": OM3}}, {"type": "array", "items": {"$ref": OM2}}),
    ({"type": "object", "additionalProperties": {"$ref": OM3}},
     {"type": "object", "additionalProperties": {"$ref": OM2}}),
    ({"type": "object", "additionalProperties": True}, {"type": "object", "additionalProperties": True}),
    # values are data, not schemas: left alone
    ({"default": {"allOf": 1, "nullable": True}, "enum": [{"$ref": OM3}]},
     {"default": {"allOf": 1, "nullable": True}, "enum": [{"$ref": OM3}]}),
    ({"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-map-keys": ["name"]},
     {"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-map-keys": ["name"]}),
    ({"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": True},
     {"type": "integer", "format": "int32", "minimum": 0, "exclusiveMinimum": True}),
], ids=["ref", "allof-ref", "allof-many", "v3-only-keywords", "junctors", "discriminator-object",
        "nested-property", "items", "additional-properties", "additional-properties-bool", "values",
        "extensions", "validations"])
def test_schema_to_v2(v3, v2):
    assert schema_to_v2(v3) == v2


@pytest.mark.parametrize("crd,v2", [
    ({"type": "object", "allOf": [{"required": ["a"]}], "oneOf": [{}], "anyOf": [{}], "not": {}},
     {"type": "object"}),
    # nullable: untyped, no properties/items (kubectl's validation would refuse null)
    ({"type": "object", "nullable": True, "properties": {"a": {"type": "string"}}}, {}),
    ({"type": "array", "nullable": True, "items": {"type": "string"}, "description": "d"}, {"description": "d"}),
    # a nullable property is no longer required
    ({"type": "object", "required": ["a", "b"],
      "properties": {"a": {"type": "string", "nullable": True}, "b": {"type": "string"}}},
     {"type": "object", "required": ["b"], "properties": {"a": {}, "b": {"type": "string"}}}),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "nullable": True}}},
     {"type": "object", "properties": {"a": {}}}),
    # nullable map values: nothing required
    ({"type": "object", "required": ["x"], "additionalProperties": {"type": "string", "nullable": True}},
     {"type": "object", "additionalProperties": {}}),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
     {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    # an array whose items went away loses its type
    ({"type": "array", "x-kubernetes-preserve-unknown-fields": True, "items": {"type": "string"}},
     {"x-kubernetes-preserve-unknown-fields": True}),
    ({"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
     {"x-kubernetes-int-or-string": True}),
    ({"type": "array", "items": {"type": "object", "nullable": True, "properties": {"a": {}}}},
     {"type": "array", "items": {}}),
    ({"type": "string", "enum": ["a", None], "default": "a", "x-kubernetes-validations": [{"rule": "true"}]},
     {"type": "string", "enum": ["a", None], "default": "a", "x-kubernetes-validations": [{"rule": "true"}]}),
], ids=["junctors", "nullable-object", "nullable-array", "nullable-not-required", "required-emptied",
        "nullable-map-values", "preserve-unknown-fields", "array-without-items", "int-or-string",
        "nested-items", "values-kept"])
def test_crd_schema_to_v2(crd, v2):
    assert crd_schema_to_v2(crd) == v2


def test_operation_to_v2_body_media_types_and_parameters():
    op = {
        "tags": ["core_v1"], "description": "patch ConfigMap", "operationId": "patchCoreV1NamespacedConfigMap",
        "parameters": [{"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
                       {"name": "namespace", "in": "path", "required": True, "description": "ns",
                        "schema": {"type": "string", "uniqueItems": True}}],
        "requestBody": {"required": True, "content": {
            "application/json-patch+json": {"schema": {"$ref": "#/components/schemas/P"}},
            "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/P"}}}},
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/C"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/C"}}}},
            "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    }
    assert operation_to_v2(op) == {
        "consumes": ["application/json-patch+json", "application/merge-patch+json"],
        "description": "patch ConfigMap", "operationId": "patchCoreV1NamespacedConfigMap", "tags": ["core_v1"],
        "parameters": [
            {"in": "body", "name": "body", "required": True, "schema": {"$ref": "#/definitions/P"}},
            {"name": "force", "in": "query", "type": "boolean", "uniqueItems": True},
            {"name": "namespace", "in": "path", "required": True, "description": "ns", "type": "string",
             "uniqueItems": True}],
        "produces": ["application/json", "application/yaml"],
        "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/C"}},
                      "401": {"description": "Unauthorized"}},
        "schemes": ["https"],
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
    }


@pytest.mark.parametrize("data,digest", [(b"", "cbf29ce484222325"), (b"a", "af63bd4c8601b7be"),
                                         (b"foobar", "340d8765a4dda9c2")])
def test_fnv1_64(data, digest):  # Go's hash/fnv New64 (FNV-1), which kube-openapi names parameters with
    assert openapi_v2._fnv1_64(data).hex() == digest


def test_parameter_name_is_stable_and_per_content():
    a = {"name": "dryRun", "in": "query", "type": "string"}
    name = openapi_v2.parameter_name(a)
    assert name.startswith("dryRun-") and len(name) == len("dryRun-") + 8
    assert openapi_v2.parameter_name(dict(reversed(list(a.items())))) == name
    assert openapi_v2.parameter_name({**a, "description": "x"}) != name


@pytest.mark.parametrize("accept,form", [
    ("", openapi_v2.JSON),
    ("*/*", openapi_v2.JSON),
    ("application/json", openapi_v2.JSON),
    ("application/*", openapi_v2.JSON),
    ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", openapi_v2.PROTOBUF),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", openapi_v2.PROTOBUF),
    ("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", openapi_v2.PROTOBUF),
    ("text/html, application/json;q=0.9", openapi_v2.JSON),
    ("text/html", None),
    ("application/vnd.kubernetes.protobuf", None),
])
def test_negotiate(accept, form):
    assert openapi_v2.negotiate(accept) == form


# ---------------------------------------------------------------- the document


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for k, v in node.items():
            if k not in ("default", "enum", "example"):
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_document_shape(doc):
    assert doc["swagger"] == "2.0"
    assert doc["info"] == {"title": "Kubernetes", "version": "v1.32.4"}
    assert doc["securityDefinitions"] == {"BearerToken": {
        "description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"}}
    assert doc["security"] == [{"BearerToken": []}]
    for ref in set(_refs(doc)):
        kind, _, name = ref[2:].partition("/")
        assert kind in ("definitions", "parameters"), ref
        assert name in doc[kind], ref
    text = json.dumps(doc)
    assert "#/components/" not in text and '"requestBody"' not in text and '"nullable": true' not in text


@pytest.mark.parametrize("group,version,kind,name", [
    ("", "v1", "ConfigMap", "io.k8s.api.core.v1.ConfigMap"),
    ("", "v1", "PodList", "io.k8s.api.core.v1.PodList"),
    ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("oa2.example.com", "v1", "Widget", "com.example.oa2.v1.Widget"),
    ("oa2.example.com", "v1", "WidgetList", "com.example.oa2.v1.WidgetList"),
])
def test_definitions_carry_their_kind(doc, group, version, kind, name):
    gvks = doc["definitions"][name]["x-kubernetes-group-version-kind"]
    assert {"group": group, "version": version, "kind": kind} in gvks


def test_built_in_definition_is_the_v2_form(doc):
    deploy = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deploy["properties"]["metadata"]["$ref"] == OM2
    assert "allOf" not in deploy["properties"]["spec"]
    containers = doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_crd_definition_is_published_as_v2(doc):
    widget = doc["definitions"]["com.example.oa2.v1.Widget"]
    spec = widget["properties"]["spec"]
    assert spec["required"] == ["size"]  # "note" is nullable
    assert spec["properties"]["note"] == {}
    assert spec["properties"]["port"] == {"x-kubernetes-int-or-string": True}
    assert spec["properties"]["extra"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert widget["properties"]["metadata"] == {"$ref": OM2, "description": "Standard object's metadata."}
    assert {"apiVersion", "kind"} <= set(widget["properties"])


def test_crd_without_schema_gets_an_empty_definition():
    r = builtin_registry()
    r.add(_widget(schema=None))
    doc = openapi_v2.document(r)
    assert doc["definitions"]["com.example.oa2.v1.Widget"] == {}
    widget_list = doc["definitions"]["com.example.oa2.v1.WidgetList"]
    assert widget_list["x-kubernetes-group-version-kind"][0]["kind"] == "WidgetList"


def test_paths_operations_and_shared_parameters(doc):
    item = doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    assert {op["x-kubernetes-action"] for verb, op in item.items() if verb != "parameters"} == {
        "get", "put", "patch", "delete"}
    # name and namespace are common to all four: on the path; the name stays inline
    assert item["parameters"][0]["name"] == "name" and item["parameters"][0]["in"] == "path"
    assert item["parameters"][1]["$ref"].startswith("#/parameters/namespace-")
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    params = [doc["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in patch["parameters"]]
    assert params[0] == {"in": "body", "name": "body", "required": True,
                         "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": True,
            "description": params[3]["description"]} in params
    assert patch["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}
    widget = doc["paths"]["/apis/oa2.example.com/v1/namespaces/{namespace}/widgets/{name}/status"]
    assert widget["get"]["x-kubernetes-group-version-kind"]["kind"] == "Widget"


def test_cache_follows_registry_generation():
    r = builtin_registry()
    first = openapi_v2.served(r, openapi_v2.JSON)
    assert openapi_v2.served(r, openapi_v2.JSON) is first
    assert first.etag.startswith('"') and len(first.etag) == 130
    pb = openapi_v2.served(r, openapi_v2.PROTOBUF)
    assert pb.content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    r.add(_widget())
    second = openapi_v2.served(r, openapi_v2.JSON)
    assert second.etag != first.etag
    assert "com.example.oa2.v1.Widget" in json.loads(second.body)["definitions"]


# ---------------------------------------------------------------- protobuf (gnostic)


def _kubectl_descriptor() -> descriptor_pb2.FileDescriptorProto | None:
    """The ``openapiv2/OpenAPIv2.proto`` descriptor Go's protobuf embeds in kubectl."""
    path = Path("/usr/bin/kubectl")
    if not path.exists():
        return None
    data = path.read_bytes()
    start = data.find(b"\n\x19openapiv2/OpenAPIv2.proto")
    if start < 0:
        return None
    best = None
    for end in range(start + 12000, min(start + 20000, len(data))):
        try:
            fd = descriptor_pb2.FileDescriptorProto.FromString(data[start:end])
        except Exception:  # noqa: BLE001 - a cut in the middle of a field
            continue
        if fd.options.go_package:
            best = fd
    return best


def _fields(fd: descriptor_pb2.FileDescriptorProto) -> dict:
    return {m.name: sorted((f.name, f.number, f.type, f.label, f.type_name,
                            f.oneof_index if f.HasField("oneof_index") else -1) for f in m.field)
            for m in fd.message_type}


def test_proto_matches_the_descriptor_kubectl_embeds():
    theirs = _kubectl_descriptor()
    if theirs is None:
        pytest.skip("no kubectl v1.32 binary with gnostic's descriptor here")
    ours = openapi_v2_pb.parse_proto(openapi_v2_pb.PROTO_FILE.read_text())
    assert ours.package == theirs.package == "openapi.v2"
    assert _fields(ours) == _fields(theirs)


@pytest.mark.parametrize("text", [
    "message A { string a = 1; ",
    "message A { message B { } }",
    "string a = 1;",
    "message A { map<string, string> m = 1; }",
    "}",
])
def test_parse_proto_refuses_what_it_does_not_handle(text):
    with pytest.raises(ValueError):
        openapi_v2_pb.parse_proto(text)


def _decoded(doc: dict):
    body, unknown = openapi_v2_pb.encode(doc)
    assert unknown == []
    out = openapi_v2_pb.messages()["Document"]()
    out.ParseFromString(body)
    return out


def _named(entries, name):
    return next(e.value for e in entries if e.name == name)


def test_protobuf_document_decodes_as_gnostic(doc):
    msg = _decoded(doc)
    assert msg.swagger == "2.0" and msg.info.version == "v1.32.4"
    cm = _named(msg.definitions.additional_properties, "io.k8s.api.core.v1.ConfigMap")
    assert list(cm.type.value) == ["object"]
    gvk = _named(cm.vendor_extension, "x-kubernetes-group-version-kind")
    assert yaml.safe_load(gvk.yaml) == [{"group": "", "kind": "ConfigMap", "version": "v1"}]
    data = _named(cm.properties.additional_properties, "data")
    assert list(data.additional_properties.schema.type.value) == ["string"]
    meta = _named(cm.properties.additional_properties, "metadata")
    assert meta._ref == OM2
    spec = _named(_named(msg.definitions.additional_properties, "io.k8s.api.core.v1.PodSpec")
                  .properties.additional_properties, "containers")
    assert spec.items.schema[0]._ref == "#/definitions/io.k8s.api.core.v1.Container"
    assert _named(spec.vendor_extension, "x-kubernetes-patch-merge-key").yaml == "name\n"
    item = _named(msg.paths.path, "/api/v1/namespaces/{namespace}/configmaps/{name}")
    assert item.parameters[0].parameter.non_body_parameter.path_parameter_sub_schema.name == "name"
    assert item.parameters[1].json_reference._ref.startswith("#/parameters/namespace-")
    body = item.patch.parameters[0].json_reference._ref.rsplit("/", 1)[1]
    shared = _named(msg.parameters.additional_properties, body)
    assert shared.body_parameter.schema._ref == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    ok = _named(item.get.responses.response_code, "200")
    assert ok.response.schema.schema._ref == "#/definitions/io.k8s.api.core.v1.ConfigMap"
    assert yaml.safe_load(_named(item.get.vendor_extension, "x-kubernetes-action").yaml) == "get"
    bearer = _named(msg.security_definitions.additional_properties, "BearerToken")
    assert bearer.api_key_security.name == "authorization"
    assert msg.security[0].additional_properties[0].name == "BearerToken"


@pytest.mark.parametrize("schema,check", [
    ({"type": ["string", "null"]}, lambda s: list(s.type.value) == ["string", "null"]),
    ({"additionalProperties": False}, lambda s: s.additional_properties.HasField("boolean")
     and not s.additional_properties.boolean),
    ({"type": "object", "properties": {}}, lambda s: s.HasField("properties")),
    ({"enum": ["a", 1, True]}, lambda s: [yaml.safe_load(a.yaml) for a in s.enum] == ["a", 1, True]),
    ({"default": {"k": "true"}}, lambda s: yaml.safe_load(s.default.yaml) == {"k": "true"}),
    ({"maximum": 5, "maxLength": 3, "uniqueItems": True},
     lambda s: s.maximum == 5.0 and s.max_length == 3 and s.unique_items),
    ({"items": [{"type": "string"}, {"type": "integer"}]}, lambda s: len(s.items.schema) == 2),
])
def test_protobuf_schema_shapes(schema, check):
    msg = _decoded({"swagger": "2.0", "definitions": {"s": schema}})
    assert check(msg.definitions.additional_properties[0].value)


def test_protobuf_reports_keys_it_cannot_place():
    _, unknown = openapi_v2_pb.encode({"swagger": "2.0", "components": {}, "definitions": {
        "s": {"type": "object", "nullable": True, "maxLength": "x"}}})
    assert unknown == ["$root.components", "$root.definitions.s.nullable",
                       "$root.definitions.s.maxLength: 'x' is not a max_length"]
