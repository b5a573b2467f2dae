"""Golden managedFields: ``update_managed_fields`` and ``server_side_apply`` must keep producing
byte-identical managedFields (entries, FieldsV1 trees and key order, since they are serialised)
and identical conflicts. The expected values were computed by the implementation before its
fast paths (create without compare, cached list semantics, direct FieldsV1 building) and are
kept here as literals; ``python -m tests.unit.test_patch_managed_fields_golden`` prints the
current values in the same shape (for reviewing a deliberate change, never to paper over one).
Scenarios: defaulted Pod/Deployment/ConfigMap/Service creates, status/scale subresources,
resets, capping to ancient-changes, every list type, odd values (null, empty, non-dict items,
duplicate keys), custom resources with and without schema, apply conflicts/force/kubectl
upgrades, and seeded random update chains."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any, Callable

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.patch.ssa import server_side_apply, update_managed_fields

POD = ("", "v1", "Pod")
CM = ("", "v1", "ConfigMap")
SVC = ("", "v1", "Service")
DEPLOY = ("apps", "v1", "Deployment")
NODE = ("", "v1", "Node")
WIDGET = ("example.com", "v1", "Widget")
WIDGET_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "size": {"type": "integer"},
    "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id", "zone"],
              "items": {"type": "object", "properties": {"id": {"type": "string"}, "zone": {"type": "string"},
                                                         "v": {"type": "integer"}}}},
    "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    "conf": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "tags": {"type": "array", "items": {"type": "string"}}}},
    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}

# What prepare_create made of small Pod/Deployment bodies (defaults applied), frozen here.
DEFAULTED_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"},
                 "uid": "54ef7ae1-af44-4d1e-bbef-4a0877b08d55", "creationTimestamp": "2026-11-22T17:52:33Z"},
    "spec": {"containers": [{"name": "c", "image": "nginx",
                             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                             "imagePullPolicy": "Always", "terminationMessagePath": "/dev/termination-log",
                             "terminationMessagePolicy": "File"}],
             "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "terminationGracePeriodSeconds": 30, "securityContext": {}, "enableServiceLinks": True,
             "serviceAccountName": "default", "serviceAccount": "default", "priority": 0,
             "preemptionPolicy": "PreemptLowerPriority",
             "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": 300},
                             {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": 300}]},
    "status": {"phase": "Pending", "qosClass": "Burstable"}}
DEFAULTED_DEPLOY: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"},
                 "uid": "94332e52-5776-4fc7-84da-2d8165597236", "creationTimestamp": "2026-11-22T17:52:33Z",
                 "generation": 1},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
             "template": {"metadata": {"labels": {"app": "d"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1",
                                                   "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                                   "imagePullPolicy": "IfNotPresent",
                                                   "terminationMessagePath": "/dev/termination-log",
                                                   "terminationMessagePolicy": "File", "resources": {}}],
                                   "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                                   "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
                                   "securityContext": {}}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
             "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}}
CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "default", "labels": {"a": "1", "b": "2"},
                 "annotations": {"note": "x"}, "finalizers": ["f/1", "f/2"],
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"},
                                     {"apiVersion": "v1", "kind": "Pod", "name": "q", "uid": "u2"}]},
    "data": {f"key{i}": "x" * 80 for i in range(10)}, "binaryData": {"bin": "AAEC"}, "immutable": False}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
    "spec": {"selector": {"app": "web"}, "type": "ClusterIP",
             "ports": [{"port": 80, "targetPort": 8080, "name": "http"},
                       {"port": 53, "protocol": "UDP", "name": "dns"}, {"port": 443, "name": "https"}],
             "clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"]}}
RICH_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "r", "labels": {}, "annotations": None, "finalizers": ["a", "b", "a"]},
    "spec": {"containers": [{"name": "a", "image": "a", "args": ["1", "2"], "command": [],
                             "env": [{"name": "E", "value": "1"},
                                     {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                             "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"},
                                       {"containerPort": 81, "protocol": None}],
                             "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                             "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": None}}},
                            "not-a-dict", {"name": "a", "image": "dup"}, {"image": "nameless"}],
             "volumes": [{"name": "v", "emptyDir": {}},
                         {"name": "w", "configMap": {"name": "c", "items": [{"key": "k", "path": "p"}]}}],
             "nodeSelector": {"disk": "ssd"}, "overhead": {"cpu": "1"},
             "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                 "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}]}}},
             "unknownField": {"nested": {"deep": 1}, "list": [1, 2]}, "hostAliases": [{"ip": "1.1.1.1",
                                                                                    "hostnames": ["x"]}],
             "readinessGates": [{"conditionType": "x"}], "topologySpreadConstraints": [
                 {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
NODE_OBJ: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"kubernetes.io/hostname": "n"}},
    "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoExecute"}],
             "podCIDRs": ["10.0.0.0/24"]},
    "status": {"capacity": {"cpu": "4", "memory": "8Gi"}, "allocatable": {"cpu": "4"},
               "conditions": [{"type": "Ready", "status": "True"}],
               "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}, {"type": "Hostname", "address": "n"}],
               "images": [{"names": ["a", "b"], "sizeBytes": 1}]}}


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Run:
    """Steps of one scenario; each records the managedFields (or the error) it produced."""

    def __init__(self, literal: bool) -> None:
        self.out: list[str] = []
        self.t = 0
        self.literal = literal  # False: digests only (long random chains)

    def _now(self) -> str:
        self.t += 1
        return f"2026-01-01T00:00:{self.t:02d}Z"

    def _rec(self, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            obj = fn()
        except ApiError as e:
            self.out.append(json.dumps({"error": e.code, "message": e.message,
                                        "causes": (e.details or {}).get("causes")}))
            return None
        mf = json.dumps(obj["metadata"].get("managedFields"))
        self.out.append(mf if self.literal and len(mf) <= 2000 else "mf-sha:" + _digest(mf))
        self.out.append("obj-sha:" + _digest(json.dumps(obj)))
        return obj

    def update(self, old: dict[str, Any] | None, new: dict[str, Any], manager: str, gvk: tuple[str, str, str],
               subresource: str = "", **kw: Any) -> dict[str, Any] | None:
        old_c, new_c = copy.deepcopy(old), copy.deepcopy(new)
        res = self._rec(lambda: update_managed_fields(old, new, manager=manager, operation="Update", gvk=gvk,
                                                      now=self._now(), subresource=subresource, **kw))
        assert (old, new) == (old_c, new_c), "inputs must not be mutated"
        return res

    def apply(self, live: dict[str, Any] | None, cfg: dict[str, Any], manager: str, gvk: tuple[str, str, str],
              force: bool = False, **kw: Any) -> dict[str, Any] | None:
        return self._rec(lambda: server_side_apply(live, cfg, manager=manager, force=force, gvk=gvk,
                                                   is_custom=gvk == WIDGET, now=self._now(), **kw))


def edit(obj: dict[str, Any] | None, fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    assert new is not None
    fn(new)
    return new


def sc_pod_lifecycle(r: Run) -> None:
    live = r.update(None, DEFAULTED_POD, "kubectl-create", POD)
    st1 = edit(live, lambda o: o.update(status={"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}))
    live2 = r.update(live, st1, "kubelet", POD, "status")
    st2 = edit(live2, lambda o: o["status"]["conditions"][0].update(status="False"))
    live3 = r.update(live2, st2, "kubelet", POD, "status")
    sp = edit(live3, lambda o: (o["spec"].update(nodeName="n1"), o["status"].update(phase="Bound")))
    live4 = r.update(live3, sp, "scheduler", POD, "binding")
    lab = edit(live4, lambda o: (o["metadata"]["labels"].update(x="1"), o["status"].update(phase="X"),
                                 o["spec"]["containers"][0].update(image="nginx:2")))
    r.update(live4, lab, "kubectl-edit", POD)
    r.update(live4, lab, "kubelet", POD, "status")


def sc_deploy(r: Run) -> None:
    live = r.update(None, DEFAULTED_DEPLOY, "kubectl-create", DEPLOY)
    new = edit(live, lambda o: (o["spec"]["template"]["spec"]["containers"][0].update(image="nginx:2"),
                                o["spec"].update(replicas=3)))
    live2 = r.update(live, new, "kubectl-edit", DEPLOY)
    r.update(live2, copy.deepcopy(live2), "noop", DEPLOY)
    sc = r.update(live2, edit(live2, lambda o: o["spec"].update(replicas=7)), "kubectl", DEPLOY, "scale")
    st = r.update(sc, edit(sc, lambda o: o.update(status={"replicas": 7, "conditions": [
        {"type": "Available", "status": "True"}]})), "kube-controller-manager", DEPLOY, "status")
    rm = edit(st, lambda o: (o["metadata"].pop("labels"), o["spec"]["template"]["spec"]["containers"][0].pop("ports"),
                             o["spec"].pop("strategy")))
    r.update(st, rm, "kubectl-edit", DEPLOY)
    r.update(None, edit(DEFAULTED_DEPLOY, lambda o: o.update(status={"replicas": 1})), "c", DEPLOY)


def sc_configmap(r: Run) -> None:
    live = r.update(None, CONFIGMAP, "kubectl-create", CM)
    live2 = r.update(live, edit(live, lambda o: (o["data"].update(key0="y", new="z"), o["data"].pop("key1"),
                                                 o["metadata"]["finalizers"].append("f/3"))), "other", CM)
    r.update(live2, edit(live2, lambda o: o["metadata"].update(managedFields=[])), "reset", CM)
    r.update(live2, edit(live2, lambda o: (o["metadata"].update(managedFields=[{}]), o["data"].update(key2="q"))),
             "reset", CM)
    sent = edit(live2, lambda o: o["metadata"].update(managedFields=[
        {"manager": "imported", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key0": {}, "f:key3": {}}}}]))
    r.update(live2, sent, "sender", CM)
    r.update(live2, edit(sent, lambda o: o["data"].update(key3="changed")), "sender", CM)
    r.update(live2, edit(live2, lambda o: o["metadata"].update(managedFields=[{"manager": ""}])), "odd", CM)
    r.update(None, edit(CONFIGMAP, lambda o: o["metadata"].update(managedFields=[
        {"manager": "pre", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:key0": {}}}}])), "creator", CM)
    r.update(None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}, "empty", CM)
    r.update(None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}, "data": {}}, "empty", CM)


def sc_cap(r: Run) -> None:
    live = r.update(None, CONFIGMAP, "kubectl-create", CM)
    for i in range(13):
        nxt = r.update(live, edit(live, lambda o: o["data"].update({f"m{i}": str(i)})), f"mgr-{i}", CM)
        assert nxt is not None
        live = nxt


def sc_service_node(r: Run) -> None:
    live = r.update(None, SERVICE, "svc", SVC)
    r.update(live, edit(live, lambda o: o["spec"]["ports"][1].update(port=5353)), "x", SVC)
    n = r.update(None, NODE_OBJ, "kubelet", NODE)
    r.update(n, edit(n, lambda o: (o["status"]["capacity"].update(cpu="8"), o["status"]["addresses"].pop())),
             "kubelet", NODE, "status")
    r.update(n, edit(n, lambda o: o["spec"]["taints"].pop(0)), "ctl", NODE)


def sc_rich_pod(r: Run) -> None:
    live = r.update(None, RICH_POD, "create", POD)
    r.update(live, edit(live, lambda o: (o["spec"]["containers"][0]["env"].reverse(),
                                         o["spec"]["unknownField"]["list"].append(3),
                                         o["metadata"].update(annotations={"a": None}),
                                         o["spec"].update(nodeSelector=None))), "edit", POD)
    r.update(live, edit(live, lambda o: o.update(status={"conditions": [{"type": "Ready", "status": "False"}]})),
             "kubelet", POD, "status")
    r.update(live, edit(live, lambda o: o.update(extraTop={"x": 1})), "top", POD)


def sc_widget(r: Run) -> None:
    w = widget(size=1, items=[{"id": "a", "zone": "z", "v": 1}, {"id": "b", "v": 2}, {"v": 3}],
               set=["x", "y"], conf={"a": "1"}, labels={"l": "1"}, free={"x": {"y": [1]}}, tags=["t"])
    for schema in (WIDGET_SCHEMA, None):
        live = r.update(None, w, "create", WIDGET, schema=schema)
        st = r.update(live, edit(live, lambda o: (o.update(status={"ready": True}), o["spec"].update(size=2))),
                      "ctl", WIDGET, schema=schema)
        r.update(st, edit(st, lambda o: (o["status"].update(ready=False), o["spec"].update(size=3))),
                 "ctl", WIDGET, "status", schema=schema, status_subresource=True)
        r.update(st, edit(st, lambda o: (o["status"].update(ready=False), o["spec"]["items"].pop())),
                 "ctl2", WIDGET, schema=schema, status_subresource=True)
        a = r.apply(None, widget(items=[{"id": "a", "zone": "z", "v": 1}], set=["x"]), "m1", WIDGET, schema=schema)
        b = r.apply(a, widget(items=[{"id": "b", "v": 2}], set=["y"], conf={"k": "v"}), "m2", WIDGET, schema=schema)
        r.apply(b, widget(items=[{"id": "a", "zone": "z", "v": 5}]), "m2", WIDGET, schema=schema)
        r.apply(b, widget(items=[{"id": "a", "zone": "z", "v": 5}]), "m2", WIDGET, force=True, schema=schema)


def deploy_cfg(replicas: int = 2, image: str = "nginx:1", **extra_meta: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}, **extra_meta},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


def sc_apply(r: Run) -> None:
    a = r.apply(None, deploy_cfg(), "kubectl", DEPLOY)
    r.apply(a, deploy_cfg(), "kubectl", DEPLOY)
    b = r.apply(a, edit(deploy_cfg(image="nginx:2"), lambda o: o["metadata"]["labels"].update(t="1")), "kubectl",
                DEPLOY)
    c = r.apply(b, deploy_cfg(), "kubectl", DEPLOY)
    sc = r.update(c, edit(c, lambda o: o["spec"].update(replicas=5)), "kubectl", DEPLOY, "scale")
    r.apply(sc, deploy_cfg(replicas=3), "kubectl", DEPLOY)
    r.apply(sc, deploy_cfg(replicas=3), "kubectl", DEPLOY, force=True)
    r.apply(sc, deploy_cfg(replicas=9, image="x"), "ci", DEPLOY)
    side = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}}
    s = r.apply(c, side, "injector", DEPLOY)
    r.apply(s, deploy_cfg(image="nginx:3"), "kubectl", DEPLOY)
    r.apply(DEFAULTED_DEPLOY, deploy_cfg(replicas=2), "ci", DEPLOY)
    r.apply(DEFAULTED_DEPLOY, deploy_cfg(replicas=4), "ci", DEPLOY)
    last = json.dumps(deploy_cfg())
    cs = r.update(None, deploy_cfg(annotations={"kubectl.kubernetes.io/last-applied-configuration": last}),
                  "kubectl-client-side-apply", DEPLOY)
    r.apply(cs, deploy_cfg(replicas=4), "kubectl", DEPLOY)
    cs2 = r.update(cs, edit(cs, lambda o: o["spec"].update(replicas=7)), "kubectl-scale", DEPLOY, "scale")
    r.apply(cs2, deploy_cfg(replicas=4), "kubectl", DEPLOY)
    p = r.apply(None, RICH_POD, "kubectl", POD)
    r.apply(p, edit(RICH_POD, lambda o: o["spec"]["containers"][0]["args"].append("3")), "other", POD)
    r.apply(p, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r"}, "status": {"phase": "X"}},
            "kubelet", POD, subresource="status")
    cm = r.apply(None, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "s"]}},
                 "ma", CM)
    r.apply(cm, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b", "s"]}},
            "mb", CM)


def sc_noncanonical(r: Run) -> None:
    """Entries a client sent in forms this encoder never writes: decoded, re-encoded."""
    odd = [
        {"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key2": {}, "f:key0": {}}, "f:binaryData": {}}},
        {"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z",
         "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:ownerReferences": {'k:{"uid": "u1"}': {".": {}, "f:name": {}}}}}},
        {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z",
         "fieldsType": "FieldsV1", "fieldsV1": {".": {}, "f:data": {"f:key3": {".": {}}, "f:key4": {"f:x": {}, ".": {}},
                                                                   "f:key5": {".": {"x": {}}, "f:y": {}}}}},
        {"manager": "values", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:03Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key6": 1, "f:key7": None}, "f:immutable": {}}},
        {"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:04Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}},
        {"manager": "sets", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:05Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {'v:"f/2"': {}, 'v:"f/1"': {}}}}},
    ]
    live = edit(CONFIGMAP, lambda o: o["metadata"].update(managedFields=odd))
    r.update(live, copy.deepcopy(live), "noop", CM)
    r.update(live, edit(live, lambda o: (o["metadata"].pop("managedFields"), o["data"].update(key2="n", key3="n"),
                                         o["metadata"]["labels"].pop("a"), o["metadata"]["finalizers"].pop(0))),
             "writer", CM)
    r.update(live, edit(live, lambda o: (o["metadata"].pop("managedFields"), o["data"].update(key9="n"))),
             "writer", CM)
    r.update(live, edit(live, lambda o: (o["data"].update(key6="n"), o["metadata"]["ownerReferences"].pop(0))),
             "unsorted", CM)
    r.apply(live, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"key0": "z"}},
            "ci", CM)
    r.update(None, live, "creator", CM)


def _mutate(rng: random.Random, o: dict[str, Any]) -> None:
    spec = o["spec"] if o["kind"] == "Pod" else o["spec"]["template"]["spec"]
    cs = spec["containers"]
    k = rng.randrange(10)
    if k == 0:
        o["metadata"].setdefault("labels", {})[rng.choice("abc")] = rng.choice("123")
    elif k == 1 and o["metadata"].get("labels"):
        o["metadata"]["labels"].pop(rng.choice(sorted(o["metadata"]["labels"])))
    elif k == 2:
        cs.append({"name": f"c{rng.randrange(5)}", "image": rng.choice(["a", "b"])})
    elif k == 3 and len(cs) > 1:
        cs.pop(rng.randrange(len(cs)))
    elif k == 4:
        rng.choice(cs)["image"] = rng.choice(["x", "y", "z"])
    elif k == 5:
        rng.choice(cs).setdefault("env", []).append({"name": rng.choice("EF"), "value": rng.choice("12")})
    elif k == 6:
        spec["tolerations"] = [{"key": rng.choice("kl"), "operator": "Exists"}]
    elif k == 7:
        o["metadata"]["finalizers"] = rng.sample(["f/1", "f/2", "f/3"], rng.randrange(3))
    elif k == 8:
        spec["nodeSelector"] = {rng.choice("xy"): "1"} if rng.random() < 0.7 else {}
    else:
        rng.choice(cs).setdefault("ports", []).append({"containerPort": rng.choice([80, 81]),
                                                       **({"protocol": "UDP"} if rng.random() < 0.3 else {})})


def random_chain(seed: int) -> Callable[[Run], None]:
    def run(r: Run) -> None:
        rng = random.Random(seed)
        base, gvk = (DEFAULTED_POD, POD) if seed % 2 else (DEFAULTED_DEPLOY, DEPLOY)
        live = r.update(None, base, "create", gvk)
        for _ in range(8):
            assert live is not None
            new = copy.deepcopy(live)
            for _ in range(rng.randrange(1, 4)):
                _mutate(rng, new)
            if rng.random() < 0.3:
                nxt = r.apply(live, {"apiVersion": new["apiVersion"], "kind": new["kind"],
                                     "metadata": {"name": new["metadata"]["name"],
                                                  "labels": new["metadata"].get("labels") or {}},
                                     "spec": {k: v for k, v in new["spec"].items() if k != "template"}},
                              rng.choice(["kubectl", "ci"]), gvk, force=rng.random() < 0.5)
            else:
                nxt = r.update(live, new, rng.choice(["m1", "m2", "m3"]), gvk)
            live = nxt or live
    return run


SCENARIOS: dict[str, Callable[[Run], None]] = {
    "pod-lifecycle": sc_pod_lifecycle, "deployment": sc_deploy, "configmap": sc_configmap, "cap": sc_cap,
    "service-node": sc_service_node, "noncanonical": sc_noncanonical, "rich-pod": sc_rich_pod, "widget": sc_widget,
    "apply": sc_apply,
    **{f"random-{s}": random_chain(s) for s in range(12)},
}


def run_scenario(name: str) -> list[str]:
    r = Run(literal=not name.startswith("random-"))
    SCENARIOS[name](r)
    return r.out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_managed_fields_match_golden(name: str) -> None:
    got = run_scenario(name)
    want = GOLDEN[name]
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"step output {i} differs"


def _print_golden() -> None:
    print("GOLDEN: dict[str, list[str]] = {")
    for n in sorted(SCENARIOS):
        print(f"    {n!r}: [")
        for s in run_scenario(n):
            print(f"        {s!r},")
        print("    ],")
    print("}")


# Computed by the implementation before the fast paths; see the module docstring.
GOLDEN: dict[str, list[str]] = {
    'apply': [
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:de1d3cd10d6340b46cc4',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:de1d3cd10d6340b46cc4',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:t": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:9a6240f95f725a1f2bfd',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:a0648dc03c0fc6302df4',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}, {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}]',
        'obj-sha:888b32d9911b8572060d',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"kubectl\\" with subresource \\"scale\\" using apps/v1: .spec.replicas", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl\\" with subresource \\"scale\\" using apps/v1", "field": ".spec.replicas"}]}',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:e3011150dafe5d72cf20',
        '{"error": 409, "message": "Apply failed with 2 conflicts: conflicts with \\"kubectl\\":\\n- .spec.template.spec.containers[name=\\"web\\"].image\\nconflicts with \\"kubectl\\" with subresource \\"scale\\" using apps/v1:\\n- .spec.replicas", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl\\"", "field": ".spec.template.spec.containers[name=\\"web\\"].image"}, {"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl\\" with subresource \\"scale\\" using apps/v1", "field": ".spec.replicas"}]}',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}, {"manager": "injector", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"side\\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}]',
        'obj-sha:bea1b750f66f31426fd1',
        '[{"manager": "injector", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"side\\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}}, {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:10Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:3cb507427646772fe26f',
        '[{"manager": "ci", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:11Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}, {"manager": "before-first-apply", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:11Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}]',
        'obj-sha:c2e1ffde84a00d2fcfa7',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"before-first-apply\\" using apps/v1: .spec.replicas", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"before-first-apply\\" using apps/v1", "field": ".spec.replicas"}]}',
        '[{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:13Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:6c57fdef552d0f512791',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:14Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}, {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:13Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]',
        'obj-sha:5cef885c4a12b93371d8',
        '[{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:13Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}, "f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}}}}}}}}}, {"manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:15Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}]',
        'obj-sha:eba3aef121d8ca35a716',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"kubectl-scale\\" with subresource \\"scale\\" using apps/v1: .spec.replicas", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl-scale\\" with subresource \\"scale\\" using apps/v1", "field": ".spec.replicas"}]}',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:17Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:nodeSelector": {}, "f:overhead": {"f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}]',
        'obj-sha:312966614f29ae06daf5',
        '{"error": 409, "message": "Apply failed with 2 conflicts: conflicts with \\"kubectl\\":\\n- .spec.containers[name=\\"a\\"].args\\n- .spec.containers[name=\\"a\\"].image", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl\\"", "field": ".spec.containers[name=\\"a\\"].args"}, {"reason": "FieldManagerConflict", "message": "conflict with \\"kubectl\\"", "field": ".spec.containers[name=\\"a\\"].image"}]}',
        '[{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:17Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:nodeSelector": {}, "f:overhead": {"f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}, {"manager": "kubelet", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:19Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"}]',
        'obj-sha:0e34a066c7a1a09b9f7b',
        '[{"manager": "ma", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"a\\"": {}, "v:\\"s\\"": {}}}}}]',
        'obj-sha:716622e2abb1f05c7890',
        '[{"manager": "ma", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"a\\"": {}, "v:\\"s\\"": {}}}}}, {"manager": "mb", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:21Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"b\\"": {}, "v:\\"s\\"": {}}}}}]',
        'obj-sha:4250ecedfbafa370af87',
    ],
    'cap': [
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}]',
        'obj-sha:78d61db880b02e0a0612',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}]',
        'obj-sha:9c505466393acb06ec61',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}]',
        'obj-sha:0fdcf6b3e9276a7de8cf',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}]',
        'obj-sha:766861742e05737bcac1',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}, {"manager": "mgr-3", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m3": {}}}}]',
        'obj-sha:55cfeafa2a3eac97ba6d',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}, {"manager": "mgr-3", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m3": {}}}}, {"manager": "mgr-4", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m4": {}}}}]',
        'obj-sha:1317ba2a11b27b9b9a39',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}, {"manager": "mgr-3", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m3": {}}}}, {"manager": "mgr-4", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m4": {}}}}, {"manager": "mgr-5", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m5": {}}}}]',
        'obj-sha:e69f6ade50231bc737eb',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}, {"manager": "mgr-3", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m3": {}}}}, {"manager": "mgr-4", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m4": {}}}}, {"manager": "mgr-5", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m5": {}}}}, {"manager": "mgr-6", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:08Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m6": {}}}}]',
        'obj-sha:f27417d4df138dd64487',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "mgr-0", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m0": {}}}}, {"manager": "mgr-1", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m1": {}}}}, {"manager": "mgr-2", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m2": {}}}}, {"manager": "mgr-3", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m3": {}}}}, {"manager": "mgr-4", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m4": {}}}}, {"manager": "mgr-5", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m5": {}}}}, {"manager": "mgr-6", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:08Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m6": {}}}}, {"manager": "mgr-7", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:m7": {}}}}]',
        'obj-sha:8995809bd690d3ee59d1',
        'mf-sha:cdfceaf62b1ca329bd10',
        'obj-sha:876be1af94d5cf49734a',
        'mf-sha:966bd21f5188b0d3fe4f',
        'obj-sha:c19c63240259c4611189',
        'mf-sha:89853b1050447135a421',
        'obj-sha:711ab139896799df36d6',
        'mf-sha:02a05ab99a3b55b500bf',
        'obj-sha:d66d8eb0a3e81ca28b0a',
        'mf-sha:62f1999a71a12ba3d73b',
        'obj-sha:61b507b65e3e631d4447',
    ],
    'configmap': [
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}]',
        'obj-sha:78d61db880b02e0a0612',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "other", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key0": {}, "f:new": {}}, "f:metadata": {"f:finalizers": {"v:\\"f/3\\"": {}}}}}]',
        'obj-sha:90aaa5414df8efcb1947',
        'null',
        'obj-sha:e9cee3ef9d8aa51d5b4e',
        '[{"manager": "reset", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key2": {}}}}]',
        'obj-sha:44ea85f862500d27a40b',
        '[{"manager": "imported", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key0": {}, "f:key3": {}}}}]',
        'obj-sha:94d37c9d1a012ccfd2a6',
        '[{"manager": "imported", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key0": {}}}}, {"manager": "sender", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key3": {}}}}]',
        'obj-sha:f5055d9e0155b390607a',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}, {"manager": "other", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key0": {}, "f:new": {}}, "f:metadata": {"f:finalizers": {"v:\\"f/3\\"": {}}}}}]',
        'obj-sha:90aaa5414df8efcb1947',
        '[{"manager": "creator", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:08Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}]',
        'obj-sha:74a1765cc63c1c7b7380',
        'null',
        'obj-sha:88d3985724dec46926c0',
        '[{"manager": "empty", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:10Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]',
        'obj-sha:2d957e67c389f2c272b3',
    ],
    'deployment': [
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}]',
        'obj-sha:9f2118edcb53e39d95f2',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {"f:image": {}}}}}}}}]',
        'obj-sha:ebed787b80d7692717c9',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {"f:image": {}}}}}}}}]',
        'obj-sha:ebed787b80d7692717c9',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {"f:image": {}}}}}}}}, {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}]',
        'obj-sha:734b8053c8eacddd9fcb',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {"f:image": {}}}}}}}}, {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}, {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"Available\\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}, "subresource": "status"}]',
        'obj-sha:f9b8d617bd3a22562655',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:progressDeadlineSeconds": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {"f:image": {}}}}}}}}, {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}, {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"Available\\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}, "subresource": "status"}]',
        'obj-sha:09a5d2f5600229eb48f9',
        '[{"manager": "c", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:07Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {}, "f:strategy": {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}}]',
        'obj-sha:fa0969071c178c1777a5',
    ],
    'noncanonical': [
        '[{"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {}, "f:data": {"f:key0": {}, "f:key2": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}}, {"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {".": {}, "f:name": {}}}}}}, {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key3": {}, "f:key4": {".": {}, "f:x": {}}, "f:key5": {".": {}, "f:y": {}}}}}, {"manager": "values", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key6": {}, "f:key7": {}}, "f:immutable": {}}}, {"manager": "sets", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}}}}]',
        'obj-sha:496d6dba623215345a4a',
        '[{"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {}, "f:data": {"f:key0": {}}}}, {"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {".": {}, "f:name": {}}}}}}, {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key4": {".": {}, "f:x": {}}, "f:key5": {".": {}, "f:y": {}}}}}, {"manager": "values", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key6": {}, "f:key7": {}}, "f:immutable": {}}}, {"manager": "sets", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"f/2\\"": {}}}}}, {"manager": "writer", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key2": {}, "f:key3": {}}}}]',
        'obj-sha:2c4d67574abbcb2de5ab',
        '[{"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {}, "f:data": {"f:key0": {}, "f:key2": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}}, {"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {".": {}, "f:name": {}}}}}}, {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key3": {}, "f:key4": {".": {}, "f:x": {}}, "f:key5": {".": {}, "f:y": {}}}}}, {"manager": "values", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key6": {}, "f:key7": {}}, "f:immutable": {}}}, {"manager": "sets", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}}}}, {"manager": "writer", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key9": {}}}}]',
        'obj-sha:4c8f3c9759b82531aed5',
        '[{"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {"f:name": {}}}}}}, {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key3": {}, "f:key4": {".": {}, "f:x": {}}, "f:key5": {".": {}, "f:y": {}}}}}, {"manager": "values", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key7": {}}, "f:immutable": {}}}, {"manager": "sets", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}}}}, {"manager": "unsorted", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {}, "f:data": {"f:key0": {}, "f:key2": {}, "f:key6": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}}]',
        'obj-sha:f3220f8557544d9d6b8f',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"unsorted\\" using v1: .data.key0", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"unsorted\\" using v1", "field": ".data.key0"}]}',
        '[{"manager": "spaced", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {"f:name": {}}}}}}, {"manager": "dots", "operation": "Update", "apiVersion": "v1", "time": "2020-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key4": {"f:x": {}}, "f:key5": {"f:y": {}}}}}, {"manager": "creator", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:binaryData": {".": {}, "f:bin": {}}, "f:data": {".": {}, "f:key0": {}, "f:key1": {}, "f:key2": {}, "f:key3": {}, "f:key4": {}, "f:key5": {}, "f:key6": {}, "f:key7": {}, "f:key8": {}, "f:key9": {}}, "f:immutable": {}, "f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:finalizers": {"v:\\"f/1\\"": {}, "v:\\"f/2\\"": {}}, "f:labels": {".": {}, "f:a": {}, "f:b": {}}, "f:ownerReferences": {"k:{\\"uid\\":\\"u1\\"}": {}, "k:{\\"uid\\":\\"u2\\"}": {}}}}}]',
        'obj-sha:4b482f76db317e8d5e13',
    ],
    'pod-lifecycle': [
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}]',
        'obj-sha:23c4adc86b0003a950cc',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"PodScheduled\\"}": {".": {}, "f:status": {}, "f:type": {}}, "k:{\\"type\\":\\"Ready\\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:phase": {}}}, "subresource": "status"}]',
        'obj-sha:789e9bbe4bcfd6cafca1',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"PodScheduled\\"}": {".": {}, "f:status": {}, "f:type": {}}, "k:{\\"type\\":\\"Ready\\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:phase": {}}}, "subresource": "status"}]',
        'obj-sha:46878e8f9d6229de5ef1',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"PodScheduled\\"}": {".": {}, "f:status": {}, "f:type": {}}, "k:{\\"type\\":\\"Ready\\"}": {".": {}, "f:status": {}, "f:type": {}}}}}, "subresource": "status"}, {"manager": "scheduler", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:nodeName": {}}, "f:status": {"f:phase": {}}}, "subresource": "binding"}]',
        'obj-sha:60dee673a1cb7fabde1c',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"PodScheduled\\"}": {".": {}, "f:status": {}, "f:type": {}}, "k:{\\"type\\":\\"Ready\\"}": {".": {}, "f:status": {}, "f:type": {}}}}}, "subresource": "status"}, {"manager": "scheduler", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:nodeName": {}}, "f:status": {"f:phase": {}}}, "subresource": "binding"}, {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {"f:image": {}}}}}}]',
        'obj-sha:1dbb44c1dc781a3a4e70',
        '[{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {"f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:preemptionPolicy": {}, "f:priority": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:serviceAccount": {}, "f:serviceAccountName": {}, "f:terminationGracePeriodSeconds": {}, "f:tolerations": {}}}}, {"manager": "scheduler", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:nodeName": {}}}, "subresource": "binding"}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}, "f:status": {"f:conditions": {"k:{\\"type\\":\\"PodScheduled\\"}": {".": {}, "f:status": {}, "f:type": {}}, "k:{\\"type\\":\\"Ready\\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:phase": {}}}, "subresource": "status"}]',
        'obj-sha:30d16ecc27159fab68b9',
    ],
    'random-0': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:a03dd6e06ee069e48731',
        'obj-sha:5c6f1d0317d684e1c69a',
        'mf-sha:38751be54558f9608abc',
        'obj-sha:16e3759c07c75969b2e7',
        'mf-sha:bb4565eed8da64899418',
        'obj-sha:d07ec0a1777bfc5c43da',
        'mf-sha:b2efc004a02022350342',
        'obj-sha:a02623cfe76afe13c100',
        '{"error": 409, "message": "Apply failed with 2 conflicts: conflicts with \\"ci\\":\\n- .metadata.labels\\nconflicts with \\"m3\\" using apps/v1:\\n- .metadata.labels", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"ci\\"", "field": ".metadata.labels"}, {"reason": "FieldManagerConflict", "message": "conflict with \\"m3\\" using apps/v1", "field": ".metadata.labels"}]}',
        'mf-sha:19bf054cb1ace40d6680',
        'obj-sha:53df0837614e9a5610ca',
        'mf-sha:1375ed1db437b36573be',
        'obj-sha:492f6f80d80baa722959',
        'mf-sha:1375ed1db437b36573be',
        'obj-sha:492f6f80d80baa722959',
    ],
    'random-1': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:b5b0c1be62cdc121031f',
        'obj-sha:560ff89833cc659eae83',
        'mf-sha:75795456452eb4f8e066',
        'obj-sha:fdbf6eac7217488ba146',
        'mf-sha:7cc2962a5fa019a27d81',
        'obj-sha:c6e714ad18b1c2fdfbaa',
        'mf-sha:4b6902aea528e30ff395',
        'obj-sha:300d8451e5be57b9812e',
        'mf-sha:8a9f8c4582225e1436a4',
        'obj-sha:0d41c54fa97918e180a6',
        'mf-sha:8a9f8c4582225e1436a4',
        'obj-sha:0d41c54fa97918e180a6',
        'mf-sha:5f18097db80bd11eccc2',
        'obj-sha:2b476fb3f474a6529faf',
        'mf-sha:4178bf735de144c09ba9',
        'obj-sha:55d65bdea7c528a060c0',
    ],
    'random-10': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:87f826f346b6c3bdd752',
        'obj-sha:e44f1a183b986d763d63',
        'mf-sha:4d23e2a4a9062d61cfe2',
        'obj-sha:33ac76dcba9881df71d0',
        'mf-sha:3237d1aaaaa659558dab',
        'obj-sha:6115d0251e685ff09525',
        'mf-sha:6d7505d229c4ee45c25f',
        'obj-sha:091b01d25ccc0f6ddbe7',
        'mf-sha:7e009b39cd99158729ef',
        'obj-sha:cb06b0d2c40435b73088',
        'mf-sha:fd080221cc3decf563b7',
        'obj-sha:dc2de72a8cd1d4bb7a08',
        'mf-sha:82ce9f2d8e1de4fa2bc0',
        'obj-sha:63883c7cd7ecdf88b302',
        'mf-sha:77eba6f7e5fc25fa0908',
        'obj-sha:6b1f5dd0e1d88ed7c3a2',
    ],
    'random-11': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:14d874b57907a80f4fbf',
        'obj-sha:6be16cf8095e779fa820',
        'mf-sha:0f6e6d7ec71f3bebe77f',
        'obj-sha:b540d9f8731020853524',
        'mf-sha:a09773a4b3b66a61c9a9',
        'obj-sha:c23ed4c61ff68c430498',
        'mf-sha:77d9fa39bac41ebc1875',
        'obj-sha:6d045c7a31330b0534d2',
        'mf-sha:77d9fa39bac41ebc1875',
        'obj-sha:6d045c7a31330b0534d2',
        'mf-sha:1941316eedac4780dfcc',
        'obj-sha:b13a76fd6f94420753fa',
        'mf-sha:9f948f3fe68e72e0105a',
        'obj-sha:239ec146a94891b28c2c',
        'mf-sha:c1eab2c5a12625bc5033',
        'obj-sha:8afcddeb27e07a1b59a9',
    ],
    'random-2': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:4fcecdfc836d70ce50d9',
        'obj-sha:62e24ca008ab5ac7597f',
        'mf-sha:ab9194801b918b2d2c61',
        'obj-sha:f7258c85ba414b8af6f1',
        'mf-sha:806b5c473fc7f3d7724e',
        'obj-sha:bfd8175935f647b3d9d2',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"m1\\" using apps/v1: .metadata.labels", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"m1\\" using apps/v1", "field": ".metadata.labels"}]}',
        'mf-sha:58d366e691ac071d1f13',
        'obj-sha:a9e984d853def832719e',
        'mf-sha:b2cdfa2226c0256259ca',
        'obj-sha:cbc8700327839206ecbe',
        'mf-sha:b2cdfa2226c0256259ca',
        'obj-sha:4b07d82feb7a214add48',
        'mf-sha:b3f22df7766c4fc97d30',
        'obj-sha:fbe188bbd43ce08999a1',
    ],
    'random-3': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:79249a38c9c93fef2436',
        'obj-sha:fd0172309bd989f2fe67',
        'mf-sha:897035477d3b14faae16',
        'obj-sha:d94be9c414821d50afce',
        'mf-sha:836ce04272ed6e4efad5',
        'obj-sha:4ee5a6e5f1d2c43108bb',
        'mf-sha:836ce04272ed6e4efad5',
        'obj-sha:c8e53daee0ddb64bdd0d',
        'mf-sha:ebc4ac861d0a6db83ab2',
        'obj-sha:cce46202976bcedd0890',
        'mf-sha:69741c25140e143c5089',
        'obj-sha:7653bc5dc7bf5ca5e505',
        'mf-sha:f2592da72b946529560a',
        'obj-sha:3213d9e20ef6ab135378',
        'mf-sha:1585a1caa18532c527f4',
        'obj-sha:e943e6d4ed98f5444137',
    ],
    'random-4': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:a33e1ecf096762ec47ec',
        'obj-sha:3629e501d0cab4c85618',
        'mf-sha:404bbb64397e6ddebaac',
        'obj-sha:9cc58df7a8602d153896',
        'mf-sha:f8c10c1a1f812fecded9',
        'obj-sha:ef84bbfc87a473d3d8be',
        'mf-sha:5049d42b5fecf6771f05',
        'obj-sha:56a0c4b0d0b91f13ce6b',
        'mf-sha:c5a5d543796e3a54ba36',
        'obj-sha:1c8012cecbc60a7bc107',
        'mf-sha:c5a5d543796e3a54ba36',
        'obj-sha:1c8012cecbc60a7bc107',
        'mf-sha:42d5c1653b91dd34137a',
        'obj-sha:a7076788fa4645d0f734',
        'mf-sha:30c7450d08e7c1f58eb2',
        'obj-sha:cc34e45be85769c778bc',
    ],
    'random-5': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:4312701fe8130905a512',
        'obj-sha:798d63dfff98cd69e005',
        'mf-sha:41766bff2f691c76b760',
        'obj-sha:972f12c91aaaf33380ad',
        'mf-sha:7a222268bd679d541bf1',
        'obj-sha:75e3d227cc7fad91657f',
        'mf-sha:b4dfb86d9384033b78bc',
        'obj-sha:46056dfb1da1a89d8d56',
        'mf-sha:42e27d34de6233349651',
        'obj-sha:2af50065e94e1e6d4b33',
        'mf-sha:7d9c0968a40e30aae9aa',
        'obj-sha:ae252a8b02c5ac0817a0',
        'mf-sha:65d992d6021abeffa08c',
        'obj-sha:a5f369f3fc0cc42a2536',
        'mf-sha:fff42693c0d7c9511b58',
        'obj-sha:74270adafe27bcbcc514',
    ],
    'random-6': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:5a03beebe000f9f82cfc',
        'obj-sha:7159ccdc3f9b24e34c5d',
        'mf-sha:e931ab900910c1e5cd33',
        'obj-sha:56ba8993e5b5a8fc4c20',
        'mf-sha:7958aa412aa17fe94797',
        'obj-sha:0a564ef71570994d1f36',
        'mf-sha:7958aa412aa17fe94797',
        'obj-sha:0a564ef71570994d1f36',
        'mf-sha:7677f8f29094142af4db',
        'obj-sha:cc96e52eea23cced96ca',
        'mf-sha:904ca5d76ee5c601428e',
        'obj-sha:124bb2a7c1470245452a',
        'mf-sha:269cdc8e3bf59c0f1087',
        'obj-sha:9e76c56c53100269d961',
        'mf-sha:591e8e80c841eb47fb7f',
        'obj-sha:1d0638cd0f3bc09e7f27',
    ],
    'random-7': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:4af51379307c9e922976',
        'obj-sha:69d6c3b386b9da7c994d',
        'mf-sha:798c7652e8b506069aed',
        'obj-sha:1be0431edeac29f207e5',
        'mf-sha:021da766a5d65f690053',
        'obj-sha:610536bd96f7d880243c',
        'mf-sha:b4242249a8b5870fb13a',
        'obj-sha:c1ee7e1cebb92608ce39',
        'mf-sha:76edcf59ccab3ddcfd73',
        'obj-sha:d7030a85c2bb0c8a8e8d',
        'mf-sha:bf107f6c992bb5aa9c3e',
        'obj-sha:87be80c54924e3da0c24',
        'mf-sha:b445fb47463820add952',
        'obj-sha:8ff657472b8b67dd192a',
        'mf-sha:d03e61d89a6af9598074',
        'obj-sha:31f87564f2314c84ec53',
    ],
    'random-8': [
        'mf-sha:d194b1335004ed050d8c',
        'obj-sha:8bc156f0919e378a6cf0',
        'mf-sha:aa21d1a22bf8c1adbc0d',
        'obj-sha:16db72bb2ec417e93c45',
        'mf-sha:514141bca2190fa118b2',
        'obj-sha:e6da1c3c32d3c0096566',
        'mf-sha:b7b30647d7ea5b9b3250',
        'obj-sha:a498be0b824593424fc4',
        'mf-sha:46bdbdd5c656fa4a7479',
        'obj-sha:dbf5b821b66be51dd980',
        'mf-sha:8d0acc0478cd414030be',
        'obj-sha:af350b8d97e4066a42b2',
        'mf-sha:f3d3159c1ad4e85c6ff3',
        'obj-sha:060fb8ee4241e228021f',
        'mf-sha:efebec82a448c4fc7fe2',
        'obj-sha:f784555ca05bb5feb8a0',
        'mf-sha:4198d1682c9d06db8dc5',
        'obj-sha:4e84090fec99ce2d2fb9',
    ],
    'random-9': [
        'mf-sha:0b0f12d874f4114bdeba',
        'obj-sha:e260380f3347d028562f',
        'mf-sha:da793fa622b86c7330d3',
        'obj-sha:f51d148a58986db87149',
        'mf-sha:c49776ff278b5ff73874',
        'obj-sha:41432edac7ddf2e8ac8a',
        'mf-sha:ec30fafb9d8d8693ca84',
        'obj-sha:b8c9bd9b0bc4f96ad9f3',
        'mf-sha:ec30fafb9d8d8693ca84',
        'obj-sha:b8c9bd9b0bc4f96ad9f3',
        'mf-sha:f22072c629dd1af62242',
        'obj-sha:f997ed204ca53b3aaa4a',
        'mf-sha:1adb52d63b6208c3e334',
        'obj-sha:5ff9a49b6982bbc788bc',
        'mf-sha:1d9feaaa2be4d5856211',
        'obj-sha:a1d9e106c53e6bc32129',
        'mf-sha:12ecbad72b9d77bd0f23',
        'obj-sha:3c5ada9b682d54e83bbb',
    ],
    'rich-pod': [
        '[{"manager": "create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:nodeSelector": {}, "f:overhead": {".": {}, "f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}]',
        'obj-sha:20841513bb34745665d6',
        '[{"manager": "create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:overhead": {".": {}, "f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}, {"manager": "edit", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:a": {}}}, "f:spec": {"f:nodeSelector": {}, "f:unknownField": {"f:list": {}}}}}]',
        'obj-sha:b67e9c85466fb65b758f',
        '[{"manager": "create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:nodeSelector": {}, "f:overhead": {".": {}, "f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {"k:{\\"type\\":\\"Ready\\"}": {"f:status": {}}}}}, "subresource": "status"}]',
        'obj-sha:e3288be6086298841f1a',
        '[{"manager": "create", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:finalizers": {"v:\\"a\\"": {}, "v:\\"b\\"": {}}, "f:labels": {}}, "f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}, "f:containers": {"i:1": {}, "i:3": {".": {}, "f:image": {}}, "k:{\\"name\\":\\"a\\"}": {".": {}, "f:args": {}, "f:command": {}, "f:env": {"k:{\\"name\\":\\"E\\"}": {".": {}, "f:name": {}, "f:value": {}}, "k:{\\"name\\":\\"F\\"}": {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}}}, "f:image": {}, "f:name": {}, "f:ports": {"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}}, "k:{\\"containerPort\\":80,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}, "k:{\\"containerPort\\":81,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:securityContext": {"f:capabilities": {"f:add": {}, "f:drop": {}}}, "f:volumeMounts": {"k:{\\"mountPath\\":\\"/v\\"}": {".": {}, "f:mountPath": {}, "f:name": {}}}}}, "f:hostAliases": {"k:{\\"ip\\":\\"1.1.1.1\\"}": {".": {}, "f:hostnames": {}, "f:ip": {}}}, "f:nodeSelector": {}, "f:overhead": {".": {}, "f:cpu": {}}, "f:readinessGates": {}, "f:topologySpreadConstraints": {"k:{\\"topologyKey\\":\\"zone\\",\\"whenUnsatisfiable\\":\\"DoNotSchedule\\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}, "f:unknownField": {".": {}, "f:list": {}, "f:nested": {".": {}, "f:deep": {}}}, "f:volumes": {"k:{\\"name\\":\\"v\\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}, "k:{\\"name\\":\\"w\\"}": {".": {}, "f:configMap": {"f:items": {}, "f:name": {}}, "f:name": {}}}}}}, {"manager": "top", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:extraTop": {".": {}, "f:x": {}}}}]',
        'obj-sha:635e0112d300e2d7e346',
    ],
    'service-node': [
        '[{"manager": "svc", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:clusterIPs": {}, "f:ipFamilies": {}, "f:ports": {"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:name": {}, "f:port": {}}, "k:{\\"port\\":53,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}, "k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}}, "f:selector": {}, "f:type": {}}}}]',
        'obj-sha:886a4fa038cea714ed38',
        '[{"manager": "svc", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:clusterIPs": {}, "f:ipFamilies": {}, "f:ports": {"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:name": {}, "f:port": {}}, "k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}": {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}}, "f:selector": {}, "f:type": {}}}}, {"manager": "x", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ports": {"k:{\\"port\\":5353,\\"protocol\\":\\"UDP\\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}}}]',
        'obj-sha:be4349b09a58088094a6',
        '[{"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/hostname": {}}}, "f:spec": {"f:podCIDRs": {"v:\\"10.0.0.0/24\\"": {}}, "f:taints": {}}}}]',
        'obj-sha:f7a08b646449397dcc0c',
        '[{"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/hostname": {}}}, "f:spec": {"f:podCIDRs": {"v:\\"10.0.0.0/24\\"": {}}, "f:taints": {}}}}, {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:04Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:capacity": {"f:cpu": {}}}}, "subresource": "status"}]',
        'obj-sha:3eb64421a6c88dec28b0',
        '[{"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/hostname": {}}}, "f:spec": {"f:podCIDRs": {"v:\\"10.0.0.0/24\\"": {}}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:taints": {}}}}]',
        'obj-sha:51f28ba12ed62172a087',
    ],
    'widget': [
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:conf": {}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {"i:2": {".": {}, "f:v": {}}, "k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}, "k:{\\"id\\":\\"b\\"}": {".": {}, "f:id": {}, "f:v": {}}}, "f:labels": {".": {}, "f:l": {}}, "f:set": {"v:\\"x\\"": {}, "v:\\"y\\"": {}}, "f:size": {}, "f:tags": {}}}}]',
        'obj-sha:4dc1b85422e41cbbc4f7',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:conf": {}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {"i:2": {".": {}, "f:v": {}}, "k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}, "k:{\\"id\\":\\"b\\"}": {".": {}, "f:id": {}, "f:v": {}}}, "f:labels": {".": {}, "f:l": {}}, "f:set": {"v:\\"x\\"": {}, "v:\\"y\\"": {}}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}, "f:status": {"f:ready": {}}}}]',
        'obj-sha:7892047ec3758b508d4e',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:conf": {}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {"i:2": {".": {}, "f:v": {}}, "k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}, "k:{\\"id\\":\\"b\\"}": {".": {}, "f:id": {}, "f:v": {}}}, "f:labels": {".": {}, "f:l": {}}, "f:set": {"v:\\"x\\"": {}, "v:\\"y\\"": {}}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:03Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:ready": {}}}, "subresource": "status"}]',
        'obj-sha:566f1e1ec84ad0b907ec',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:conf": {}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {"k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}, "k:{\\"id\\":\\"b\\"}": {".": {}, "f:id": {}, "f:v": {}}}, "f:labels": {".": {}, "f:l": {}}, "f:set": {"v:\\"x\\"": {}, "v:\\"y\\"": {}}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}, "f:status": {"f:ready": {}}}}]',
        'obj-sha:e14538ca706f3fa6f6d8',
        '[{"manager": "m1", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:items": {"k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}}, "f:set": {"v:\\"x\\"": {}}}}}]',
        'obj-sha:04926e1661566716c640',
        '[{"manager": "m1", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:items": {"k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}}, "f:set": {"v:\\"x\\"": {}}}}}, {"manager": "m2", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:06Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:conf": {}, "f:items": {"k:{\\"id\\":\\"b\\"}": {".": {}, "f:id": {}, "f:v": {}}}, "f:set": {"v:\\"y\\"": {}}}}}]',
        'obj-sha:352b6e7654efaf60a5ab',
        '{"error": 409, "message": "Apply failed with 1 conflict: conflict with \\"m1\\": .spec.items[id=\\"a\\",zone=\\"z\\"].v", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"m1\\"", "field": ".spec.items[id=\\"a\\",zone=\\"z\\"].v"}]}',
        '[{"manager": "m1", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:items": {"k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:zone": {}}}, "f:set": {"v:\\"x\\"": {}}}}}, {"manager": "m2", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:08Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:items": {"k:{\\"id\\":\\"a\\",\\"zone\\":\\"z\\"}": {".": {}, "f:id": {}, "f:v": {}, "f:zone": {}}}}}}]',
        'obj-sha:f57394a8b706c1b8d48c',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:conf": {".": {}, "f:a": {}}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {}, "f:labels": {".": {}, "f:l": {}}, "f:set": {}, "f:size": {}, "f:tags": {}}}}]',
        'obj-sha:9f0d3bf877ed27c91ee2',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:conf": {".": {}, "f:a": {}}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {}, "f:labels": {".": {}, "f:l": {}}, "f:set": {}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:10Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}, "f:status": {".": {}, "f:ready": {}}}}]',
        'obj-sha:d777942166d3b9a48e4f',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:conf": {".": {}, "f:a": {}}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:items": {}, "f:labels": {".": {}, "f:l": {}}, "f:set": {}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:10Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}, "f:status": {}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:11Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:ready": {}}}, "subresource": "status"}]',
        'obj-sha:464cff136413e559ac77',
        '[{"manager": "create", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:09Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:conf": {".": {}, "f:a": {}}, "f:free": {".": {}, "f:x": {".": {}, "f:y": {}}}, "f:labels": {".": {}, "f:l": {}}, "f:set": {}, "f:tags": {}}}}, {"manager": "ctl", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:10Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}, "f:status": {".": {}, "f:ready": {}}}}, {"manager": "ctl2", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:12Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:items": {}}}}]',
        'obj-sha:328c7765680f31a87b4f',
        '[{"manager": "m1", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:13Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:items": {}, "f:set": {}}}}]',
        'obj-sha:bd9eed00380d70ac5ad2',
        '{"error": 409, "message": "Apply failed with 2 conflicts: conflicts with \\"m1\\":\\n- .spec.items\\n- .spec.set", "causes": [{"reason": "FieldManagerConflict", "message": "conflict with \\"m1\\"", "field": ".spec.items"}, {"reason": "FieldManagerConflict", "message": "conflict with \\"m1\\"", "field": ".spec.set"}]}',
        '[{"manager": "m2", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:15Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:items": {}}}}]',
        'obj-sha:30fb0e3044ce63ef402d',
        '[{"manager": "m2", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-01-01T00:00:16Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:items": {}}}}]',
        'obj-sha:46af19fba1a280b17b88',
    ],
}

if __name__ == "__main__":
    _print_golden()
