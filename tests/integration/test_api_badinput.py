"""Bad input gets Kubernetes' Status (code, reason, field causes) and writes nothing: malformed
bodies, unknown fields under Strict validation, oversized bodies, invalid names and values,
stale resourceVersions, patches that do not apply, unknown resources."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def http(apiserver) -> httpx.Client:
    with apiserver.http() as c:
        yield c


@pytest.fixture
def cm(http: httpx.Client) -> dict:
    """A stored ConfigMap whose state each test checks afterwards."""
    name = f"victim-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/namespaces/default/configmaps", headers=JSON,
                  content=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                      "data": {"k": "v"}}))
    assert r.status_code == 201
    return r.json()


def _status(r: httpx.Response, code: int, reason: str) -> dict:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    return body


def _unchanged(http: httpx.Client, cm: dict) -> None:
    now = http.get(f"/api/v1/namespaces/default/configmaps/{cm['metadata']['name']}").json()
    assert now == cm


def _count(http: httpx.Client) -> int:
    return len(http.get("/api/v1/namespaces/default/configmaps").json()["items"])


@pytest.mark.parametrize("ctype,body", [
    ("application/json", b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": '),
    ("application/json", b"[1, 2"),
    ("application/yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n"),
    ("application/json", b""),
    ("application/json", b'"just a string"'),
], ids=["truncated-json", "json-array", "broken-yaml", "empty", "not-an-object"])
def test_malformed_bodies_are_400_and_write_nothing(http, ctype: str, body: bytes) -> None:
    before = _count(http)
    _status(http.post("/api/v1/namespaces/default/configmaps", headers={"Content-Type": ctype}, content=body),
            400, "BadRequest")
    assert _count(http) == before


@pytest.mark.parametrize("spec", [[], "x", {"containers": "x"}, {"containers": [{"name": "c", "image": "i"}],
                                                                   "initContainers": "x"},
                                  {"containers": [{"name": "c", "image": "i"}], "tolerations": "x"}],
                         ids=["spec-list", "spec-string", "containers-string", "initcontainers-string",
                              "tolerations-string"])
def test_wrongly_typed_pods_are_400_before_admission(http, spec) -> None:
    """Kubernetes decodes before its admission plugins run: a pod the mutating plugins
    (Priority, DefaultTolerationSeconds, ...) could not read is a 400, never a 500."""
    name = f"typed-{uuid.uuid4().hex[:6]}"
    st = _status(http.post("/api/v1/namespaces/default/pods", headers=JSON, content=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})), 400, "BadRequest")
    assert st["message"].startswith('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal ')
    assert http.get(f"/api/v1/namespaces/default/pods/{name}").status_code == 404


def test_yaml_bodies_are_accepted(http) -> None:
    name = f"yaml-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/namespaces/default/configmaps", headers={"Content-Type": "application/yaml"},
                  content=f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n".encode())
    assert r.status_code == 201 and r.json()["data"] == {"a": "b"}


def test_unknown_fields_under_strict_validation(http) -> None:
    name = f"strict-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "bogus": 1})
    st = _status(http.post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict", headers=JSON,
                           content=body), 400, "BadRequest")
    assert 'unknown field "bogus"' in st["message"]
    assert http.get(f"/api/v1/namespaces/default/configmaps/{name}").status_code == 404
    r = http.post("/api/v1/namespaces/default/configmaps?fieldValidation=Ignore", headers=JSON, content=body)
    assert r.status_code == 201


def test_oversized_body_is_413(http) -> None:
    name = f"big-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"blob": "x" * (3 * 1024 * 1024 + 10)}})
    _status(http.post("/api/v1/namespaces/default/configmaps", headers=JSON, content=body), 413,
            "RequestEntityTooLarge")
    assert http.get(f"/api/v1/namespaces/default/configmaps/{name}").status_code == 404


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "x" * 254, "dots..dots"])
def test_invalid_names_are_422_with_field_path(http, name: str) -> None:
    st = _status(http.post("/api/v1/namespaces/default/configmaps", headers=JSON,
                           content=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})),
                 422, "Invalid")
    assert any(c["field"] == "metadata.name" for c in st["details"]["causes"])


def test_invalid_value_is_422_with_field_path(http) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d-{uuid.uuid4().hex[:6]}"},
           "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    st = _status(http.post("/apis/apps/v1/namespaces/default/deployments", headers=JSON, content=json.dumps(dep)),
                 422, "Invalid")
    assert any(c["field"] == "spec.replicas" for c in st["details"]["causes"])


def test_stale_resource_version_is_409_and_keeps_object(http, cm) -> None:
    name = cm["metadata"]["name"]
    fresh = dict(cm, data={"k": "v2"})
    r = http.put(f"/api/v1/namespaces/default/configmaps/{name}", headers=JSON, content=json.dumps(fresh))
    assert r.status_code == 200
    stale = dict(cm, data={"k": "v3"})  # still carries the old resourceVersion
    _status(http.put(f"/api/v1/namespaces/default/configmaps/{name}", headers=JSON, content=json.dumps(stale)),
            409, "Conflict")
    _unchanged(http, r.json())


@pytest.mark.parametrize("ctype,patch,code", [
    ("application/json-patch+json", '[{"op":"test","path":"/data/k","value":"nope"},{"op":"replace","path":"/data/k","value":"x"}]', 422),
    ("application/json-patch+json", '[{"op":"remove","path":"/data/missing"}]', 422),
    ("application/json-patch+json", '[{"op":"replace","path":"/metadata/resourceVersion","value":"1"}]', 409),
    ("application/json-patch+json", '{"not":"a list"}', 400),
    ("application/merge-patch+json", '{"data": ', 400),
    ("application/strategic-merge-patch+json", '{"data": {"k": 5}}', 400),
    ("text/plain", '{}', 415),
], ids=["failed-test-op", "remove-missing", "stale-rv", "not-a-list", "broken-merge", "wrong-type", "bad-ctype"])
def test_patches_that_do_not_apply(http, cm, ctype: str, patch: str, code: int) -> None:
    r = http.patch(f"/api/v1/namespaces/default/configmaps/{cm['metadata']['name']}",
                   headers={"Content-Type": ctype}, content=patch.encode())
    assert r.status_code == code, r.text
    assert r.json()["kind"] == "Status"
    _unchanged(http, cm)


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/widgets", "/apis/nope.example.com/v1/things", "/api/v2/pods",
    "/apis/apps/v1/namespaces/default/deployments/missing",
])
def test_unknown_resources_are_404(http, path: str) -> None:
    _status(http.get(path), 404, "NotFound")


def test_mismatched_kind_and_namespace_are_400(http) -> None:
    _status(http.post("/api/v1/namespaces/default/configmaps", headers=JSON,
                      content=json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})),
            400, "BadRequest")
    _status(http.post("/api/v1/namespaces/default/configmaps", headers=JSON,
                      content=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "x", "namespace": "kube-system"}})),
            400, "BadRequest")


def test_dry_run_writes_nothing(http) -> None:
    name = f"dry-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/namespaces/default/configmaps?dryRun=All", headers=JSON,
                  content=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}))
    assert r.status_code == 201 and r.json()["metadata"]["name"] == name
    assert http.get(f"/api/v1/namespaces/default/configmaps/{name}").status_code == 404
