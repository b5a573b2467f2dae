"""Real kubectl v1.32 (own kubeconfig, temporary cache dir) against the real apiserver: apply
(client-side and server-side), get in its output forms, describe, label, annotate, patch, scale,
diff, explain (OpenAPI v3 and v2), api-resources, ``replace -f`` of a List (client-side validation
against ``/openapi/v2``), the typed ``create`` generators (protobuf bodies) and delete."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid

import pytest
import yaml

from controlplane.apiserver.discovery import openapi_v2_pb

pytestmark = pytest.mark.integration


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _manifest(ns: str, group: str, containers: list[dict]) -> str:
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
         "data": {"color": "blue"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
         "stringData": {"password": "hunter2"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": f"widgets.{group}"},
         "spec": {"group": group, "scope": "Namespaced",
                  "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                  "versions": [{
                      "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                      "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                          "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                          "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}},
        {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": ns},
         "spec": {"size": 3}},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


CONTAINERS_V1 = [
    {"name": "app", "image": "busybox:1.36", "ports": [{"containerPort": 8080}]},
    {"name": "sidecar", "image": "busybox:1.36"},
]
CONTAINERS_V2 = [
    {"name": "app", "image": "busybox:1.37", "ports": [{"containerPort": 8080}]},
    {"name": "logger", "image": "busybox:1.36"},
]


def _apply(kubectl, path, *extra: str) -> str:
    """``kubectl apply``; a CR whose CRD was created in the same run may need a second pass
    (kubectl maps every document before applying, as against a real cluster)."""
    res = kubectl("apply", "-f", str(path), *extra, check=False)
    if res.returncode != 0:
        # the custom resource's schema/mapping did not exist yet when kubectl started
        assert any(m in res.stderr for m in ("ensure CRDs are installed first", "no matches for kind",
                                             "could not find the requested resource")), res.stderr
        time.sleep(0.5)
        res = kubectl("apply", "-f", str(path), *extra)
    return res.stdout


def _rvs(kubectl, ns: str) -> dict[str, str]:
    out = {}
    for kind in ("configmap/settings", "secret/creds", "deployment/web", "service/web", "widget/w1"):
        obj = json.loads(kubectl("get", kind, "-n", ns, "-o", "json").stdout)
        out[kind] = obj["metadata"]["resourceVersion"]
    return out


def test_apply_reapply_and_merge_by_name(kubectl, tmp_path) -> None:
    ns, group = _unique("apply"), f"{uuid.uuid4().hex[:6]}.example.com"
    f = tmp_path / "all.yaml"
    f.write_text(_manifest(ns, group, CONTAINERS_V1))
    _apply(kubectl, f)
    dep = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["app", "sidecar"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
    svc = json.loads(kubectl("get", "svc", "web", "-n", ns, "-o", "json").stdout)
    assert svc["spec"]["clusterIP"].startswith("10.")
    assert json.loads(kubectl("get", "widget", "w1", "-n", ns, "-o", "json").stdout)["spec"] == {"size": 3}

    # unchanged re-apply writes nothing (the Secret's stringData was merged into data by the
    # server, so kubectl's three-way patch re-sends it and says "configured", as against
    # Kubernetes; the server finds nothing to change and writes nothing)
    before = _rvs(kubectl, ns)
    out = kubectl("apply", "-f", str(f)).stdout
    assert out.count("unchanged") == 6 and "secret/creds configured" in out, out
    assert _rvs(kubectl, ns) == before
    secret = json.loads(kubectl("get", "secret", "creds", "-n", ns, "-o", "json").stdout)
    assert "stringData" not in secret and base64.b64decode(secret["data"]["password"]) == b"hunter2"

    # someone else adds env to container "app"; the next apply changes the container list
    kubectl("patch", "deploy", "web", "-n", ns, "--type", "strategic", "-p",
            json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "X", "value": "1"}]}]}}}}))
    f.write_text(_manifest(ns, group, CONTAINERS_V2))
    kubectl("apply", "-f", str(f))
    dep = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json").stdout)
    containers = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"app", "logger"}
    assert containers["app"]["image"] == "busybox:1.37"
    assert containers["app"]["env"] == [{"name": "X", "value": "1"}]  # merged by name, not replaced
    assert dep["metadata"]["generation"] == 3


def test_server_side_apply(kubectl, tmp_path) -> None:
    name = _unique("ssa")
    f = tmp_path / "cm.yaml"
    f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  a: '1'\n")
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(f)).stdout
    obj = json.loads(kubectl("get", "cm", name, "-o", "json", "--show-managed-fields").stdout)
    assert any(m["manager"] == "kubectl" and m["operation"] == "Apply" for m in obj["metadata"]["managedFields"])
    f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  a: '2'\n")
    res = kubectl("apply", "--server-side", "--field-manager", "other", "-f", str(f), check=False)
    assert res.returncode != 0 and "conflict" in res.stderr.lower()
    kubectl("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", str(f))
    assert json.loads(kubectl("get", "cm", name, "-o", "json").stdout)["data"] == {"a": "2"}


def test_get_forms_describe_label_annotate(kubectl) -> None:
    name = _unique("cm")
    kubectl("create", "configmap", name, "--from-literal=k=v")
    out = kubectl("get", "cm", name).stdout
    assert out.split("\n")[0].split() == ["NAME", "DATA", "AGE"] and name in out
    assert "k: v" in kubectl("get", "cm", name, "-o", "yaml").stdout
    kubectl("label", "cm", name, "tier=gold")
    kubectl("annotate", "cm", name, "note=hello")
    obj = json.loads(kubectl("get", "cm", name, "-o", "json").stdout)
    assert obj["metadata"]["labels"] == {"tier": "gold"} and obj["metadata"]["annotations"] == {"note": "hello"}
    assert name in kubectl("get", "cm", "-l", "tier=gold").stdout
    desc = kubectl("describe", "cm", name).stdout
    assert "tier=gold" in desc and "note: " in desc or "note=hello" in desc
    dep = _unique("dep")
    kubectl("create", "deployment", dep, "--image=busybox:1.36", "--replicas=2")
    header = kubectl("get", "deploy", dep).stdout.split("\n")[0].split()
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = kubectl("get", "deploy", dep, "-o", "wide").stdout.split("\n")[0].split()
    assert wide[:5] == header and "CONTAINERS" in wide and "SELECTOR" in wide
    assert "Replicas:" in kubectl("describe", "deploy", dep).stdout


def test_field_selectors_per_kind(kubectl) -> None:
    """A field label the kind does not support is a 400 with kube-apiserver's words (it was an
    empty list); supported ones select, events.k8s.io's by its own names."""
    name = _unique("fs")
    kubectl("create", "configmap", name, "--from-literal=k=v")
    assert kubectl("get", "cm", "--field-selector", f"metadata.name={name}", "-o", "name").stdout.strip() == \
        f"configmap/{name}"
    for args, message in [
        (("pods", "--field-selector", "spec.foo=bar"), "field label not supported: spec.foo"),
        (("cm", "--field-selector", "data.k=v"), 'field label "data.k" not supported for "ConfigMap"'),
        (("deploy", "--field-selector", "spec.replicas=2"),
         '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ]:
        res = kubectl("get", *args, check=False)
        assert res.returncode != 0 and "(BadRequest)" in res.stderr and message in res.stderr, res.stderr
    kubectl("get", "events.v1.events.k8s.io", "--field-selector", "regarding.kind=Pod,reportingController=kubelet")
    kubectl("get", "svc", "-A", "--field-selector", "spec.clusterIP!=None,spec.type=ClusterIP")


def test_get_watch_prints_changes(kubectl, apiserver, tmp_path) -> None:
    name = _unique("watched")
    kubectl("create", "configmap", name)
    proc = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir",
                             str(tmp_path / "wcache"), "get", "cm", name, "-w", "-o", "name"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        kubectl("label", "cm", name, "x=1")
        kubectl("delete", "cm", name)
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert out.count(f"configmap/{name}") >= 2, (out, err)


def test_patch_types_scale_diff(kubectl, tmp_path) -> None:
    dep = _unique("p")
    kubectl("create", "deployment", dep, "--image=busybox:1.36")
    kubectl("patch", "deploy", dep, "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:1.37"}]}}}}')
    kubectl("patch", "deploy", dep, "--type", "merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    kubectl("patch", "deploy", dep, "--type", "json", "-p", '[{"op":"add","path":"/metadata/annotations","value":{"j":"2"}}]')
    obj = json.loads(kubectl("get", "deploy", dep, "-o", "json").stdout)
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert obj["metadata"]["labels"]["m"] == "1" and obj["metadata"]["annotations"]["j"] == "2"
    res = kubectl("patch", "deploy", dep, "--type", "json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]', check=False)
    assert res.returncode != 0
    kubectl("scale", "deploy", dep, "--replicas=4")
    obj = json.loads(kubectl("get", "deploy", dep, "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 4
    rv = obj["metadata"]["resourceVersion"]
    obj["spec"]["replicas"] = 5
    for k in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        obj["metadata"].pop(k, None)
    obj.pop("status", None)
    f = tmp_path / "d.json"
    f.write_text(json.dumps(obj))
    res = kubectl("diff", "-f", str(f), check=False)
    assert res.returncode == 1, res.stderr
    assert "replicas: 5" in res.stdout
    assert json.loads(kubectl("get", "deploy", dep, "-o", "json").stdout)["metadata"]["resourceVersion"] == rv


def test_diff_of_a_server_side_applied_object_is_empty(kubectl, tmp_path) -> None:
    """``kubectl diff`` patches with ``"metadata": {"annotations": {}}``; ObjectMeta's maps
    are omitempty, so an unchanged manifest shows no difference (exit 0), and a changed one only
    its change."""
    name = _unique("ssad")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {}},
                "data": {"k": "v"}}
    f = tmp_path / "cm.json"
    f.write_text(json.dumps(manifest))
    kubectl("apply", "--server-side", "-f", str(f))
    obj = json.loads(kubectl("get", "cm", name, "-o", "json").stdout)
    assert "labels" not in obj["metadata"] and "annotations" not in obj["metadata"], obj["metadata"]
    res = kubectl("diff", "-f", str(f), check=False)
    assert res.returncode == 0 and res.stdout == "", (res.stdout, res.stderr)
    manifest["data"]["k"] = "w"
    f.write_text(json.dumps(manifest))
    res = kubectl("diff", "-f", str(f), check=False)
    assert res.returncode == 1, res.stderr
    changed = [ln for ln in res.stdout.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert sorted(changed) == ["+  k: w", "-  k: v"], res.stdout
    kubectl("delete", "cm", name)


def test_explain_and_api_resources(kubectl) -> None:
    out = kubectl("explain", "pods.spec.containers").stdout
    assert "image" in out and "FIELDS" in out.upper()
    res = kubectl("api-resources").stdout
    for needle in ("deployments", "deploy", "customresourcedefinitions", "leases", "configmaps"):
        assert needle in res


def test_replace_of_a_list_is_validated_against_openapi_v2(kubectl, tmp_path) -> None:
    """``kind: List`` has no path in the v3 documents, so kubectl validates its items itself
    against ``/openapi/v2`` (gnostic protobuf): ``replace -f`` of ``get -o yaml`` output works,
    and an unknown field in an item gets kubectl's client-side message; nothing is sent."""
    ns = _unique("oa2")
    kubectl("create", "namespace", ns)
    kubectl("create", "configmap", "a", "-n", ns, "--from-literal=x=1")
    kubectl("create", "configmap", "b", "-n", ns, "--from-literal=y=2")
    listed = tmp_path / "list.yaml"
    listed.write_text(kubectl("get", "cm", "a", "b", "-n", ns, "-o", "yaml").stdout)
    out = kubectl("replace", "-f", str(listed)).stdout
    assert "configmap/a replaced" in out and "configmap/b replaced" in out
    doc = yaml.safe_load(listed.read_text())
    assert doc["kind"] == "List"
    for item in doc["items"]:
        del item["metadata"]["resourceVersion"]
    doc["items"][0]["data"] = {"x": "changed"}
    doc["items"][1]["bogus"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    res = kubectl("replace", "-f", str(bad), check=False)
    assert res.returncode != 0
    assert ('error validating data: ValidationError(ConfigMap): unknown field "bogus" in '
            "io.k8s.api.core.v1.ConfigMap") in res.stderr, res.stderr
    assert json.loads(kubectl("get", "cm", "a", "-n", ns, "-o", "json").stdout)["data"] == {"x": "1"}
    kubectl("delete", "namespace", ns, "--wait=false")


def test_openapi_v2_explain_and_custom_resources(kubectl, apiserver, tmp_path) -> None:
    """``explain --output plaintext-openapiv2`` reads the gnostic protobuf; a CRD's kind shows up
    in ``/openapi/v2`` (JSON) as kube-apiserver publishes it there; ETag and 304; anonymous
    users are refused as on ``/openapi/v3``."""
    out = kubectl("explain", "pods.spec", "--output", "plaintext-openapiv2").stdout
    assert "RESOURCE: spec <Object>" in out and "containers\t<[]Object> -required-" in out, out
    assert "List of containers belonging to the pod." in out
    group = f"{_unique('oa2')}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gadgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object", "required": ["size", "note"],
                            "properties": {"size": {"type": "integer", "description": "How big the gadget is."},
                                           "note": {"type": "string", "nullable": True}}}}}}}]}}
    (tmp_path / "crd.json").write_text(json.dumps(crd))
    kubectl("apply", "-f", str(tmp_path / "crd.json"))
    name = ".".join(reversed(group.split("."))) + ".v1.Gadget"
    doc = json.loads(kubectl("get", "--raw", "/openapi/v2").stdout)
    assert doc["swagger"] == "2.0" and "BearerToken" in doc["securityDefinitions"]
    gadget = doc["definitions"][name]
    assert gadget["x-kubernetes-group-version-kind"] == [{"group": group, "version": "v1", "kind": "Gadget"}]
    assert gadget["properties"]["spec"]["required"] == ["size"]  # nullable fields are not required in v2
    assert doc["paths"][f"/apis/{group}/v1/namespaces/{{namespace}}/gadgets/{{name}}"]["patch"][
        "x-kubernetes-action"] == "patch"
    deadline = time.monotonic() + 20
    while True:  # the new kind reaches kubectl's discovery
        res = kubectl("explain", "gadgets.spec", "--output", "plaintext-openapiv2", check=False)
        if res.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "size\t<integer> -required-" in res.stdout and "How big the gadget is." in res.stdout, res
    pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    with apiserver.http() as http:
        r = http.get("/openapi/v2", headers={"Accept": pb})
        assert r.status_code == 200 and r.headers["content-type"] == openapi_v2_pb.MEDIA_TYPE
        assert r.headers["vary"] == "Accept"
        assert http.get("/openapi/v2", headers={"Accept": pb, "If-None-Match": r.headers["etag"]}).status_code == 304
        assert http.get("/openapi/v2", headers={"Accept": "text/html"}).status_code == 406
    with apiserver.http(user="") as anonymous:
        assert anonymous.get("/openapi/v2").status_code == anonymous.get("/openapi/v3").status_code == 403
    kubectl("delete", "crd", f"gadgets.{group}", "--wait=false")


def test_create_generators_use_protobuf(kubectl) -> None:
    ns = _unique("gen")
    kubectl("create", "namespace", ns)
    kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=b")
    kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=p=q")
    kubectl("create", "deployment", "d", "-n", ns, "--image=busybox:1.36")
    cm = json.loads(kubectl("get", "cm", "c", "-n", ns, "-o", "json").stdout)
    assert cm["data"] == {"a": "b"}
    sec = json.loads(kubectl("get", "secret", "s", "-n", ns, "-o", "json").stdout)
    assert sec["data"] == {"p": "cQ=="}
    dep = json.loads(kubectl("get", "deploy", "d", "-n", ns, "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"


def test_delete_waits_for_finalizer(kubectl, apiserver, tmp_path) -> None:
    name = _unique("fin")
    f = tmp_path / "cm.yaml"
    f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n"
                 "  finalizers: [example.com/hold]\n")
    kubectl("apply", "-f", str(f))
    proc = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir",
                             str(tmp_path / "dcache"), "delete", "cm", name, "--timeout=60s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        assert proc.poll() is None  # still waiting for the finalizer
        obj = json.loads(kubectl("get", "cm", name, "-o", "json").stdout)
        assert obj["metadata"]["deletionTimestamp"]
        kubectl("patch", "cm", name, "--type", "json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f'"{name}" deleted' in out
    assert kubectl("get", "cm", name, check=False).returncode != 0


def test_crd_validation_rules(kubectl, tmp_path) -> None:
    """``x-kubernetes-validations`` (CEL) on a CRD: kubectl shows Kubernetes' messages for a
    violated rule and a violated transition rule; a rule that does not compile refuses the CRD."""
    group = f"{_unique('rules')}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"scalers.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "scalers", "singular": "scaler", "kind": "Scaler"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {
                            "type": "object",
                            "x-kubernetes-validations": [
                                {"rule": "self.minReplicas <= self.maxReplicas",
                                 "message": "minReplicas cannot be larger than maxReplicas"},
                                {"rule": "self.target == oldSelf.target", "message": "target is immutable"}],
                            "properties": {"minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
                                           "target": {"type": "string"}}}}}}}]}}
    (tmp_path / "crd.json").write_text(json.dumps(crd))
    kubectl("apply", "-f", str(tmp_path / "crd.json"))
    ns = _unique("rules")
    kubectl("create", "namespace", ns)

    def scaler(lo: int, hi: int, target: str = "web") -> str:
        p = tmp_path / f"s-{lo}-{hi}-{target}.json"
        p.write_text(json.dumps({"apiVersion": f"{group}/v1", "kind": "Scaler", "metadata": {"name": "s1", "namespace": ns},
                                 "spec": {"minReplicas": lo, "maxReplicas": hi, "target": target}}))
        return str(p)
    deadline = time.monotonic() + 20
    while True:  # the new kind reaches kubectl's discovery
        res = kubectl("apply", "-f", scaler(5, 2), check=False)
        if "no matches for kind" not in res.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert res.returncode != 0
    assert (f'The Scaler "s1" is invalid: spec: Invalid value: "object": minReplicas cannot be larger than '
            "maxReplicas") in res.stderr, res.stderr
    kubectl("apply", "-f", scaler(1, 3))
    res = kubectl("apply", "-f", scaler(1, 3, target="db"), check=False)
    assert res.returncode != 0 and 'spec: Invalid value: "object": target is immutable' in res.stderr, res.stderr
    kubectl("apply", "-f", scaler(2, 4))  # the same target: the transition rule holds
    bad = json.loads(json.dumps(crd))
    bad["metadata"]["name"] = f"broken.{group}"
    bad["spec"]["names"] = {"plural": "broken", "singular": "broken", "kind": "Broken"}
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.minReplicas <"}]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = kubectl("apply", "-f", str(tmp_path / "bad.json"), check=False)
    assert res.returncode != 0
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "
            'Invalid value: "self.minReplicas <": compilation failed') in res.stderr, res.stderr
    kubectl("delete", "namespace", ns, "--wait=false")
    kubectl("delete", "crd", f"scalers.{group}", "--wait=false")


def test_ingress_and_ingressclass(kubectl, tmp_path) -> None:
    """networking.k8s.io/v1 Ingress and IngressClass: kubectl's typed ``create ingress`` (a
    protobuf body), apply, its table columns, Kubernetes' 422s."""
    ns = _unique("ing")
    kubectl("create", "namespace", ns)
    cls = _unique("cls")
    ic = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": cls},
          "spec": {"controller": "example.com/ingress-controller"}}
    (tmp_path / "ic.json").write_text(json.dumps(ic))
    kubectl("apply", "-f", str(tmp_path / "ic.json"))
    out = kubectl("get", "ingressclass", cls).stdout.splitlines()
    assert out[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert out[1].split()[:3] == [cls, "example.com/ingress-controller", "<none>"]
    kubectl("create", "ingress", "simple", "-n", ns, f"--class={cls}",
            "--rule=foo.example.com/bar*=svc1:8080,tls=my-cert", "--rule=/=svc2:http")
    got = json.loads(kubectl("get", "ingress", "simple", "-n", ns, "-o", "json").stdout)
    spec = got["spec"]
    assert spec["ingressClassName"] == cls
    assert spec["tls"] == [{"hosts": ["foo.example.com"], "secretName": "my-cert"}]
    paths = {r.get("host", ""): r["http"]["paths"][0] for r in spec["rules"]}
    assert paths["foo.example.com"] == {"path": "/bar", "pathType": "Prefix",
                                        "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}
    assert paths[""]["backend"]["service"]["port"] == {"name": "http"} and paths[""]["pathType"] == "Exact"
    out = kubectl("get", "ingress", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert out[1].split()[:4] == ["simple", cls, "foo.example.com", "80,"], out
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad", "namespace": ns},
           "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
               {"path": "nope", "pathType": "Prefix",
                "backend": {"service": {"name": "svc", "port": {"name": "http", "number": 80}}}}]}}]}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = kubectl("apply", "-f", str(tmp_path / "bad.json"), check=False)
    assert res.returncode != 0
    for msg in ('spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
                'spec.rules[0].http.paths[0].path: Invalid value: "nope": must be an absolute path',
                "spec.rules[0].http.paths[0].backend.service.port: Invalid value: \"\": cannot set both port name "
                "& port number"):
        assert msg in res.stderr, res.stderr
    kubectl("delete", "namespace", ns, "--wait=false")
    kubectl("delete", "ingressclass", cls)


# --- Events: core/v1 and events.k8s.io/v1 are one stored resource ----------------------------

def _events_apis(apiserver):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    return client, client.CoreV1Api(api), client.EventsV1Api(api)


def _raw(api_client, method: str, path: str, query: list | None = None, body: dict | None = None):
    """A request through the client's connection without its models (they refuse what the
    test sends or gets on purpose): (status, decoded body)."""
    args = api_client.param_serialize(method, path, query_params=query or [], body=body,
                                      header_params={"Content-Type": "application/json"} if body else None)
    res = api_client.call_api(*args)
    res.read()
    return res.status, res.data.decode()


def test_events_written_through_either_group_are_seen_through_both(kubectl, apiserver) -> None:
    """An Event created with client-go's new API (``EventsV1Api``) is a core Event to kubectl
    (get, describe, events, core field selectors); one created through core/v1 reads as
    events.k8s.io/v1 with ``regarding``/``note``; a watch on one group gets the other's writes
    at the stored resourceVersion."""
    from datetime import datetime, timezone

    from kubernetes import watch

    client, core, events = _events_apis(apiserver)
    ns, pod = _unique("ev"), "target"
    kubectl("create", "namespace", ns)
    kubectl("run", pod, "-n", ns, "--image=busybox:1.36", "--restart=Never")
    uid = json.loads(kubectl("get", "pod", pod, "-n", ns, "-o", "json").stdout)["metadata"]["uid"]
    ref = client.V1ObjectReference(api_version="v1", kind="Pod", name=pod, namespace=ns, uid=uid)
    start_rv = events.list_namespaced_event(ns).metadata.resource_version

    created = events.create_namespaced_event(ns, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name=f"{pod}.v1a"), event_time=datetime.now(timezone.utc),
        reporting_controller="example.com/poker", reporting_instance="poker-1", action="Poking",
        reason="Poked", type="Normal", note="hello from events.k8s.io", regarding=ref))
    assert created.regarding.uid == uid and created.note == "hello from events.k8s.io"

    # kubectl: the core view of it
    got = json.loads(kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    ev = next(e for e in got if e["metadata"]["name"] == f"{pod}.v1a")
    assert ev["apiVersion"] == "v1" and ev["message"] == "hello from events.k8s.io"
    assert ev["involvedObject"]["uid"] == uid and ev["reportingComponent"] == "example.com/poker"
    assert ev["metadata"]["resourceVersion"] == created.metadata.resource_version
    assert "hello from events.k8s.io" in kubectl("get", "events", "-n", ns).stdout
    desc = kubectl("describe", "pod", pod, "-n", ns).stdout
    assert "Poked" in desc.split("Events:")[1] and "hello from events.k8s.io" in desc.split("Events:")[1], desc
    assert "hello from events.k8s.io" in kubectl("events", "-n", ns, "--for", f"pod/{pod}").stdout
    sel = kubectl("get", "events", "-n", ns, "-o", "name", "--field-selector",
                  f"involvedObject.name={pod},reportingComponent=example.com/poker").stdout.split()
    assert sel == [f"event/{pod}.v1a"]

    # through core/v1 (old style, no eventTime): read as events.k8s.io/v1
    core.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{pod}.core"), involved_object=ref, reason="Kicked",
        message="hello from core", type="Warning", count=2, source=client.V1EventSource(component="kicker")))
    v1 = yaml.safe_load(kubectl("get", "events.v1.events.k8s.io", f"{pod}.core", "-n", ns, "-o", "yaml").stdout)
    assert v1["apiVersion"] == "events.k8s.io/v1" and v1["note"] == "hello from core"
    assert v1["regarding"]["uid"] == uid and v1["deprecatedCount"] == 2
    assert v1["deprecatedSource"] == {"component": "kicker"} and "message" not in v1 and "involvedObject" not in v1
    listed = kubectl("get", "events.v1.events.k8s.io", "-n", ns, "-o", "name").stdout.split()
    assert sorted(listed) == [f"event.events.k8s.io/{pod}.core", f"event.events.k8s.io/{pod}.v1a"]
    sel = kubectl("get", "events.v1.events.k8s.io", "-n", ns, "-o", "name", "--field-selector",
                  f"regarding.name={pod},reportingController=example.com/poker,type=Normal").stdout.split()
    assert sel == [f"event.events.k8s.io/{pod}.v1a"]

    # a watch through each group from before both writes sees both, converted, at their revisions
    seen = {}
    w = watch.Watch()
    for e in w.stream(core.list_namespaced_event, ns, resource_version=start_rv, timeout_seconds=5):
        seen[e["object"].metadata.name] = (e["type"], e["object"].message, e["object"].metadata.resource_version)
        if len(seen) == 2:
            w.stop()
    assert seen[f"{pod}.v1a"] == ("ADDED", "hello from events.k8s.io", created.metadata.resource_version)
    assert seen[f"{pod}.core"][:2] == ("ADDED", "hello from core")
    # (raw: the client's EventsV1Event refuses an Event without eventTime, as against Kubernetes)
    _, data = _raw(events.api_client, "GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                   [("watch", "true"), ("resourceVersion", start_rv), ("timeoutSeconds", "2")])
    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
    by_name = {ln["object"]["metadata"]["name"]: ln["object"] for ln in lines if ln["type"] == "ADDED"}
    assert by_name[f"{pod}.core"]["note"] == "hello from core" and by_name[f"{pod}.core"]["apiVersion"] == \
        "events.k8s.io/v1"
    assert by_name[f"{pod}.core"]["metadata"]["resourceVersion"] == seen[f"{pod}.core"][2]
    kubectl("delete", "namespace", ns, "--wait=false")


def test_events_k8s_io_create_validation(kubectl, apiserver) -> None:
    """events.k8s.io/v1 checks a create as ValidateEventCreate does (422, core field paths);
    the same Event through core/v1 is accepted (the old clients' API)."""
    _, core, events = _events_apis(apiserver)
    ns = _unique("evv")
    kubectl("create", "namespace", ns)
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "bad.1"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": ns}, "reason": "Poked", "type": "Normal",
            "note": "x" * 1025, "deprecatedCount": 3}
    code, data = _raw(events.api_client, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", body=body)
    assert code == 422, data
    status = json.loads(data)
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Event"
    assert status["message"].startswith('Event "bad.1" is invalid: ')
    fields = [(c["field"], c["message"]) for c in status["details"]["causes"]]
    assert ("eventTime", "Required value") in fields
    assert ("count", 'Invalid value: "": needs to be unset') in fields
    body.update(eventTime="2026-12-08T10:00:00.000000Z")
    code, data = _raw(events.api_client, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", body=body)
    fields = [(c["field"], c["message"]) for c in json.loads(data)["details"]["causes"]]
    assert ("reportingController", "Required value") in fields and ("reportingInstance", "Required value") in fields
    assert ("message", 'Invalid value: "": can have at most 1024 characters') in fields
    # the same (old-style) Event through core/v1 is stored
    code, data = _raw(core.api_client, "POST", f"/api/v1/namespaces/{ns}/events", body={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "bad.1"}, "involvedObject": body["regarding"],
        "reason": "Poked", "message": "m", "count": 3})
    assert code == 201, data
    res = kubectl("create", "-n", ns, "-f", "-", check=False, input=yaml.safe_dump(
        {**body, "metadata": {"name": "bad.2"}, "note": "noted", "deprecatedCount": None,
         "reportingController": "example.com/x", "reportingInstance": "x-1"}))
    assert res.returncode != 0 and 'The Event "bad.2" is invalid' in res.stderr and "action: Required value" in \
        res.stderr, res.stderr
    code, data = _raw(events.api_client, "POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
                      body={**body, "note": True})
    assert code == 400 and "cannot unmarshal bool into Go struct field Event.note of type string" in data, data
    kubectl("delete", "namespace", ns, "--wait=false")


# --- core/v1 PodTemplate and the storage.k8s.io/v1 CSI kinds ---------------------------------

def test_podtemplates_and_csi_kinds(kubectl, tmp_path) -> None:
    """Listed by ``api-resources`` as Kubernetes serves them; a PodTemplate created from a file
    (PodSecurity warns about its template), its table columns and Kubernetes' 422; CSIDriver
    and VolumeAttachment through ``get a,b``, an immutable field of each."""
    rows = {tuple(line.split()[:1] + line.split()[-3:]) for line in kubectl("api-resources").stdout.splitlines()[1:]}
    for row in (("podtemplates", "v1", "true", "PodTemplate"),
                ("csidrivers", "storage.k8s.io/v1", "false", "CSIDriver"),
                ("csinodes", "storage.k8s.io/v1", "false", "CSINode"),
                ("volumeattachments", "storage.k8s.io/v1", "false", "VolumeAttachment"),
                ("csistoragecapacities", "storage.k8s.io/v1", "true", "CSIStorageCapacity")):
        assert row in rows, row
    ns = _unique("ptpl")
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/warn=restricted")
    tmpl = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "web", "namespace": ns},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                         "spec": {"containers": [{"name": "app", "image": "busybox:1.36"},
                                                 {"name": "log", "image": "busybox:1.37"}]}}}
    (tmp_path / "tmpl.json").write_text(json.dumps(tmpl))
    res = kubectl("create", "-f", str(tmp_path / "tmpl.json"))
    assert 'would violate PodSecurity "restricted:latest"' in res.stderr, res.stderr
    out = kubectl("get", "podtemplates", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"]
    assert out[1].split() == ["web", "app,log", "busybox:1.36,busybox:1.37", "app=web,tier=front"]
    got = json.loads(kubectl("get", "podtemplate", "web", "-n", ns, "-o", "json").stdout)
    assert got["metadata"]["generation"] == 1 and got["template"]["spec"]["restartPolicy"] == "Always"
    bad = {**tmpl, "metadata": {"name": "bad", "namespace": ns},
           "template": {"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "app", "image": "busybox"}]}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = kubectl("create", "-f", str(tmp_path / "bad.json"), check=False)
    assert res.returncode != 0
    assert ('The PodTemplate "bad" is invalid: template.spec.restartPolicy: Unsupported value: "Sometimes": '
            'supported values: "Always", "OnFailure", "Never"') in res.stderr, res.stderr

    drv, va = _unique("csi.example.com"), _unique("va")
    docs = [{"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": drv},
             "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"]}},
            {"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": va},
             "spec": {"attacher": drv, "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}}}]
    (tmp_path / "csi.yaml").write_text(yaml.safe_dump_all(docs))
    kubectl("create", "-f", str(tmp_path / "csi.yaml"))
    out = kubectl("get", "csidrivers,volumeattachments").stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines[f"csidriver.storage.k8s.io/{drv}"][1:7] == ["true", "false", "false", "<unset>", "false",
                                                             "Persistent,Ephemeral"]
    assert lines[f"volumeattachment.storage.k8s.io/{va}"][1:5] == [drv, "pv-1", "node-1", "false"]
    res = kubectl("patch", "csidriver", drv, "--type=merge", "-p", '{"spec":{"attachRequired":false}}', check=False)
    assert 'spec.attachedRequired: Invalid value: false: field is immutable' in res.stderr, res.stderr
    kubectl("patch", "csidriver", drv, "--type=merge", "-p", '{"spec":{"podInfoOnMount":true}}')  # mutable
    res = kubectl("patch", "volumeattachment", va, "--type=merge", "-p", '{"spec":{"nodeName":"node-2"}}',
                  check=False)
    assert "spec: Invalid value:" in res.stderr and "field is immutable" in res.stderr, res.stderr
    kubectl("delete", "volumeattachment", va)
    kubectl("delete", "csidriver", drv)
    kubectl("delete", "namespace", ns, "--wait=false")
