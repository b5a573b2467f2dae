"""Kubernetes semantics the controllers, scheduler and node agents rely on: binding, status only
through /status, generation, graceful pod deletion, finalizers and propagation policies,
deletecollection, namespaces, custom resources with status/scale, Table output, metrics."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def http(apiserver) -> httpx.Client:
    with apiserver.http() as c:
        yield c


def _post(http: httpx.Client, path: str, obj: dict, code: int = 201) -> dict:
    r = http.post(path, headers=JSON, content=json.dumps(obj))
    assert r.status_code == code, r.text
    return r.json()


def _pod(name: str, node: str = "") -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 20}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


PODS = "/api/v1/namespaces/default/pods"


def test_binding_sets_node_once(http) -> None:
    name = f"bind-{uuid.uuid4().hex[:6]}"
    _post(http, PODS, _pod(name))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    _post(http, f"{PODS}/{name}/binding", binding)
    pod = http.get(f"{PODS}/{name}").json()
    assert pod["spec"]["nodeName"] == "node-a"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod["status"]["conditions"])
    binding["target"]["name"] = "node-b"
    r = http.post(f"{PODS}/{name}/binding", headers=JSON, content=json.dumps(binding))
    assert r.status_code == 409
    assert http.get(f"{PODS}/{name}").json()["spec"]["nodeName"] == "node-a"


def test_status_only_through_status_subresource(http) -> None:
    name = f"st-{uuid.uuid4().hex[:6]}"
    pod = _post(http, PODS, _pod(name))
    assert pod["status"]["phase"] == "Pending"
    r = http.patch(f"{PODS}/{name}", headers=MERGE, content=json.dumps({"status": {"phase": "Running"}}))
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Pending"
    r = http.patch(f"{PODS}/{name}/status", headers=MERGE,
                   content=json.dumps({"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}}))
    assert r.status_code == 200
    got = http.get(f"{PODS}/{name}").json()
    assert got["status"]["phase"] == "Running" and "labels" not in got["metadata"]


def test_generation_bumps_on_spec_changes_only(http) -> None:
    name = f"gen-{uuid.uuid4().hex[:6]}"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"a": name}},
                    "template": {"metadata": {"labels": {"a": name}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    path = "/apis/apps/v1/namespaces/default/deployments"
    assert _post(http, path, dep)["metadata"]["generation"] == 1
    r = http.patch(f"{path}/{name}", headers=MERGE, content=json.dumps({"metadata": {"labels": {"l": "1"}}}))
    assert r.json()["metadata"]["generation"] == 1
    r = http.patch(f"{path}/{name}/status", headers=MERGE, content=json.dumps({"status": {"replicas": 1}}))
    assert r.json()["metadata"]["generation"] == 1
    r = http.patch(f"{path}/{name}", headers=MERGE, content=json.dumps({"spec": {"replicas": 3}}))
    assert r.json()["metadata"]["generation"] == 2
    sc = http.get(f"{path}/{name}/scale").json()
    assert sc["kind"] == "Scale" and sc["spec"]["replicas"] == 3 and sc["status"]["selector"] == f"a={name}"
    sc["spec"]["replicas"] = 5
    r = http.put(f"{path}/{name}/scale", headers=JSON, content=json.dumps(sc))
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    assert http.get(f"{path}/{name}").json()["metadata"]["generation"] == 3


def test_bound_pod_deletion_waits_for_the_node_agent(http) -> None:
    name = f"grace-{uuid.uuid4().hex[:6]}"
    _post(http, PODS, _pod(name, node="node-a"))
    r = http.request("DELETE", f"{PODS}/{name}", headers=JSON, content=json.dumps({"propagationPolicy": "Background"}))
    assert r.status_code == 200
    pod = http.get(f"{PODS}/{name}").json()
    assert pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"] == 20
    r = http.request("DELETE", f"{PODS}/{name}", headers=JSON,
                     content=json.dumps({"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}}))
    assert r.status_code == 200
    assert http.get(f"{PODS}/{name}").status_code == 404
    unbound = f"nobody-{uuid.uuid4().hex[:6]}"
    _post(http, PODS, _pod(unbound))
    assert http.delete(f"{PODS}/{unbound}").status_code == 200
    assert http.get(f"{PODS}/{unbound}").status_code == 404


@pytest.mark.parametrize("policy,finalizer", [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")])
def test_propagation_policy_finalizers(http, policy: str, finalizer: str) -> None:
    name = f"prop-{uuid.uuid4().hex[:6]}"
    path = "/api/v1/namespaces/default/configmaps"
    _post(http, path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    r = http.request("DELETE", f"{path}/{name}", headers=JSON, content=json.dumps({"propagationPolicy": policy}))
    assert r.status_code in (200, 202)
    obj = http.get(f"{path}/{name}").json()
    assert obj["metadata"]["finalizers"] == [finalizer] and obj["metadata"]["deletionTimestamp"]
    # the garbage collector's part: drop the finalizer, then the object goes
    r = http.patch(f"{path}/{name}", headers={"Content-Type": "application/json-patch+json"},
                   content=json.dumps([{"op": "test", "path": "/metadata/resourceVersion",
                                        "value": obj["metadata"]["resourceVersion"]},
                                       {"op": "remove", "path": "/metadata/finalizers"}]))
    assert r.status_code == 200, r.text
    assert http.get(f"{path}/{name}").status_code == 404


def test_deletecollection_by_label(http) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    tag = uuid.uuid4().hex[:6]
    for i in range(4):
        _post(http, path, {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": f"dc-{tag}-{i}", "labels": {"batch": tag, "keep": str(i == 0)}}})
    r = http.delete(path, params={"labelSelector": f"batch={tag},keep=False"})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    left = http.get(path, params={"labelSelector": f"batch={tag}"}).json()["items"]
    assert [o["metadata"]["name"] for o in left] == [f"dc-{tag}-0"]


def test_namespace_deletion_marks_terminating(http) -> None:
    ns = f"doomed-{uuid.uuid4().hex[:6]}"
    _post(http, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code in (200, 202)
    got = http.get(f"/api/v1/namespaces/{ns}").json()
    assert got["status"]["phase"] == "Terminating" and got["metadata"]["deletionTimestamp"]
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", headers=JSON,
                  content=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}))
    assert r.status_code == 403
    # what the namespace controller does once the namespace is empty
    got["spec"]["finalizers"] = []
    r = http.put(f"/api/v1/namespaces/{ns}/finalize", headers=JSON, content=json.dumps(got))
    assert r.status_code == 200, r.text
    assert http.get(f"/api/v1/namespaces/{ns}").status_code == 404
    assert http.delete("/api/v1/namespaces/kube-system").status_code == 403


def test_custom_resources_status_scale_and_cleanup(http) -> None:
    group = f"{uuid.uuid4().hex[:6]}.example.org"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"pools.{group}"},
           "spec": {"group": group, "scope": "Cluster",
                    "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}, "scale": {
                                      "specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                                  "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                                                "jsonPath": ".spec.size"}],
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {
                                          "size": {"type": "integer", "minimum": 0, "default": 1}}},
                                      "status": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}
    _post(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for _ in range(50):
        got = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pools.{group}").json()
        if any(c["type"] == "Established" and c["status"] == "True" for c in got.get("status", {}).get("conditions", [])):
            break
        time.sleep(0.1)
    else:
        pytest.fail("CRD never became Established")
    assert any(r["name"] == "pools/scale" for r in http.get(f"/apis/{group}/v1").json()["resources"])
    base = f"/apis/{group}/v1/pools"
    p = _post(http, base, {"apiVersion": f"{group}/v1", "kind": "Pool", "metadata": {"name": "p1"},
                           "spec": {}, "status": {"size": 9}})
    assert p["spec"] == {"size": 1} and "status" not in p  # defaulted; status only via /status
    bad = http.post(base, headers=JSON, content=json.dumps({"apiVersion": f"{group}/v1", "kind": "Pool",
                                                             "metadata": {"name": "p2"}, "spec": {"size": -1}}))
    assert bad.status_code == 422
    r = http.patch(f"{base}/p1/status", headers=MERGE, content=json.dumps({"status": {"size": 1}}))
    assert r.status_code == 200 and r.json()["status"] == {"size": 1}
    r = http.patch(f"{base}/p1/scale", headers=MERGE, content=json.dumps({"spec": {"replicas": 4}}))
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 4 and r.json()["status"]["replicas"] == 1
    assert http.get(f"{base}/p1").json()["spec"]["size"] == 4
    table = http.get(base, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size"]
    assert table["rows"][0]["cells"] == ["p1", 4]
    assert http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pools.{group}").status_code in (200, 202)
    for _ in range(100):
        if http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pools.{group}").status_code == 404:
            break
        time.sleep(0.1)
    else:
        pytest.fail("CRD was not deleted")
    assert http.get(base).status_code == 404


def test_metrics_and_health(http) -> None:
    http.get("/api/v1/namespaces")
    assert http.get("/readyz").text == "ok" and http.get("/livez").status_code == 200
    body = http.get("/metrics").text
    assert 'apiserver_request_total{code="200",group="",resource="namespaces"' in body
    assert "apiserver_request_duration_seconds_bucket" in body
    assert "apiserver_current_inflight_requests" in body
    assert http.get("/version").json()["minor"] == "32"


def _events(http: httpx.Client, path: str, params: dict) -> list[dict]:
    with http.stream("GET", path, params=params, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def test_watch_initial_events_bookmarks_and_timeout(http) -> None:
    ns = f"w-{uuid.uuid4().hex[:6]}"
    _post(http, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    path = f"/api/v1/namespaces/{ns}/configmaps"
    a = _post(http, path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"k": "1"}}})
    _post(http, path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}})
    evs = _events(http, path, {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
                               "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in evs[:2]] == [("ADDED", "a"), ("ADDED", "b")]
    assert evs[2]["type"] == "BOOKMARK"
    assert evs[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert evs[-1]["type"] == "BOOKMARK"  # before the deadline
    # a label-selected watch from a resourceVersion sees only matching changes
    http.patch(f"{path}/b", headers=MERGE, content=json.dumps({"metadata": {"labels": {"k": "1"}}}))
    http.patch(f"{path}/a", headers=MERGE, content=json.dumps({"metadata": {"labels": {"k": "2"}}}))
    evs = _events(http, path, {"watch": "true", "resourceVersion": a["metadata"]["resourceVersion"],
                               "labelSelector": "k=1", "timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "b"), ("DELETED", "a")]
    # watches with Table output carry rows
    with http.stream("GET", path, params={"watch": "true", "timeoutSeconds": "1"},
                     headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
        rows = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert rows[0]["object"]["kind"] == "Table" and rows[0]["object"]["rows"][0]["cells"][0] == "a"


def test_custom_resources_survive_a_restart(fresh_apiserver) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.restart.example.org"},
           "spec": {"group": "restart.example.org", "scope": "Namespaced",
                    "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    base = "/apis/restart.example.org/v1/namespaces/default/things"
    with fresh_apiserver.http() as http:
        _post(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        _post(http, base, {"apiVersion": "restart.example.org/v1", "kind": "Thing", "metadata": {"name": "t1"},
                           "spec": {"anything": ["goes"]}})
    fresh_apiserver.restart()
    with fresh_apiserver.http() as http:
        got = http.get(f"{base}/t1")
        assert got.status_code == 200 and got.json()["spec"] == {"anything": ["goes"]}
        assert [i["metadata"]["name"] for i in http.get(base).json()["items"]] == ["t1"]
        assert any(r["name"] == "things" for r in http.get("/apis/restart.example.org/v1").json()["resources"])
