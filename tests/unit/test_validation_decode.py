"""The compiled decode walker (``validation_decode.py``): unknown-field paths and Go-style type
errors, checked against expected strings and against the previous walker (``legacy_decoder.py``)
on a table of tricky objects and on seeded random mutations of realistic objects."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from controlplane.apiserver.discovery import k8s_schemas
from controlplane.apiserver.validation import decode as validation_decode
from tests.unit.legacy_decoder import LegacyDecoder

POD = ("", "v1", "Pod")
SECRET = ("", "v1", "Secret")
CM = ("", "v1", "ConfigMap")
SVC = ("", "v1", "Service")
NODE = ("", "v1", "Node")
EVENT = ("", "v1", "Event")
DEPLOY = ("apps", "v1", "Deployment")
JOB = ("batch", "v1", "Job")
CRD = ("apiextensions.k8s.io", "v1", "CustomResourceDefinition")


def _new(obj: Any, gvk: tuple[str, str, str]) -> tuple[list[str], str | None]:
    root = validation_decode.root_node(*gvk)
    assert root is not None
    return validation_decode.decode(obj, root, gvk[2])


def _old(obj: Any, gvk: tuple[str, str, str]) -> tuple[list[str], str | None]:
    schema = k8s_schemas.schema_for(*gvk)
    assert schema is not None
    w = LegacyDecoder(gvk[2], gvk[1])
    w.walk(obj, schema, "", "")
    return w.unknown, w.type_error


def _outcome(result: tuple[list[str], str | None]) -> tuple[list[str], str | None]:
    """What ``validate`` reports: the type error alone when there is one, else unknown fields."""
    unknown, type_error = result
    return ([], type_error) if type_error else (unknown, None)


def _pod(**spec: Any) -> dict[str, Any]:
    base = {"containers": [{"name": "c", "image": "nginx"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


_CANNOT = "json: cannot unmarshal "

TABLE: list[tuple[str, tuple[str, str, str], Any, list[str], str | None]] = [
    ("valid pod", POD, _pod(), [], None),
    ("unknown top level", POD, {**_pod(), "foo": 1}, ["foo"], None),
    ("unknown null value is still unknown", POD, {**_pod(), "foo": None}, ["foo"], None),
    ("unknown in spec", POD, _pod(bar=1), ["spec.bar"], None),
    ("unknown in list item", POD, _pod(containers=[{"name": "c", "image": "i", "x": 1}]),
     ["spec.containers[0].x"], None),
    ("unknown in second item", POD,
     _pod(containers=[{"name": "a"}, {"name": "b", "ports": [{"containerPort": 1, "y": 2}]}]),
     ["spec.containers[1].ports[0].y"], None),
    ("unknown in map-of-struct value", POD,
     _pod(overhead={"cpu": "1"}, containers=[{"name": "c", "resources": {"claims": [{"name": "x", "z": 1}]}}]),
     ["spec.containers[0].resources.claims[0].z"], None),
    ("several unknown in order", POD, {**_pod(a=1), "b": 2, "metadata": {"name": "p", "c": 3}},
     ["metadata.c", "spec.a", "b"], None),
    ("labels are a free map", POD, {**_pod(), "metadata": {"name": "p", "labels": {"a.b/c": "d"}}},
     [], None),
    ("label value wrong type", POD, {**_pod(), "metadata": {"name": "p", "labels": {"a": 1}}},
     [], _CANNOT + "number into Go struct field ObjectMeta.metadata.labels of type string"),
    ("labels not a map", POD, {**_pod(), "metadata": {"name": "p", "labels": ["a"]}},
     [], _CANNOT + "array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ("string gets number", POD, _pod(containers=[{"name": 5}]),
     [], _CANNOT + "number into Go struct field Container.spec.containers.name of type string"),
    ("int32 gets string", POD, _pod(containers=[{"name": "c", "ports": [{"containerPort": "80"}]}]),
     [], _CANNOT + "string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"),
    ("int64 gets bool", POD, _pod(terminationGracePeriodSeconds=True),
     [], _CANNOT + "bool into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    ("integral float is an integer", POD, _pod(terminationGracePeriodSeconds=30.0), [], None),
    ("fractional float is not", POD, _pod(terminationGracePeriodSeconds=1.5),
     [], _CANNOT + "number into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    ("bool gets string", POD, _pod(hostNetwork="yes"),
     [], _CANNOT + "string into Go struct field PodSpec.spec.hostNetwork of type bool"),
    ("array gets object", POD, _pod(containers={"name": "c"}),
     [], _CANNOT + "object into Go struct field PodSpec.spec.containers of type []Container"),
    ("string array gets string", POD, _pod(containers=[{"name": "c", "command": "sh"}]),
     [], _CANNOT + "string into Go struct field Container.spec.containers.command of type []string"),
    ("string array item number", POD, _pod(containers=[{"name": "c", "command": ["sh", 1]}]),
     [], _CANNOT + "number into Go struct field Container.spec.containers.command of type string"),
    ("struct gets string", POD, _pod(securityContext="x"),
     [], _CANNOT + "string into Go struct field PodSpec.spec.securityContext of type PodSecurityContext"),
    ("spec gets list", POD, {**_pod(), "spec": []},
     [], _CANNOT + "array into Go struct field Pod.spec of type PodSpec"),
    ("quantity gets bool", POD, _pod(containers=[{"name": "c", "resources": {"limits": {"cpu": True}}}]),
     [], _CANNOT + "bool into Go struct field ResourceRequirements.spec.containers.resources.limits "
     "of type resource.Quantity"),
    ("quantity float ok", POD, _pod(containers=[{"name": "c", "resources": {"limits": {"cpu": 0.5}}}]),
     [], None),
    ("int-or-string gets float", POD,
     _pod(containers=[{"name": "c", "livenessProbe": {"httpGet": {"port": 8.5}}}]),
     [], _CANNOT + "number into Go struct field HTTPGetAction.spec.containers.livenessProbe.httpGet.port "
     "of type intstr.IntOrString"),
    ("int-or-string gets list", DEPLOY,
     {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
      "spec": {"strategy": {"rollingUpdate": {"maxSurge": []}}}},
     [], _CANNOT + "array into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge "
     "of type intstr.IntOrString"),
    ("first type error wins", POD, _pod(hostNetwork="x", hostPID="y"),
     [], _CANNOT + "string into Go struct field PodSpec.spec.hostNetwork of type bool"),
    ("nulls are skipped", POD, _pod(hostNetwork=None, containers=[None, {"name": None}]), [], None),
    ("bad base64", SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "data": {"a": "aGVsbG8=", "b": "not base64!"}},
     [], "illegal base64 data at input byte 3"),
    ("secret data number", SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                    "data": {"a": 1}},
     [], _CANNOT + "number into Go struct field Secret.data of type string"),
    ("configmap binaryData ok", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                     "data": {"k": "v"}, "binaryData": {"b": "aGk="}}, [], None),
    ("service targetPort string", SVC,
     {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
      "spec": {"ports": [{"port": 80, "targetPort": "http", "q": 1}]}}, ["spec.ports[0].q"], None),
    ("node status maps", NODE,
     {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
      "status": {"capacity": {"cpu": "8", "pods": 110}, "conditions": [{"type": "Ready", "w": 1}]}},
     ["status.conditions[0].w"], None),
    ("event", EVENT, {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                      "involvedObject": {"kind": "Pod", "zz": 1}, "count": "1"},
     [], _CANNOT + "string into Go struct field Event.count of type int32"),
    ("job template unknown", JOB,
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
      "spec": {"template": {"spec": {"containers": [{"name": "c", "u": 1}]}}}},
     ["spec.template.spec.containers[0].u"], None),
    ("crd schema preserves unknown", CRD,
     {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "a.b.c"},
      "spec": {"group": "b.c", "names": {"kind": "A", "plural": "a"}, "scope": "Namespaced",
               "versions": [{"name": "v1", "served": True, "storage": True,
                             "schema": {"openAPIV3Schema": {
                                 "type": "object",
                                 "properties": {"spec": {"type": "object", "default": {"x": [1]},
                                                         "properties": {"n": {"type": "integer"}},
                                                         "additionalProperties": False}}}}}]}},
     [], None),
    ("crd recursive schema type error", CRD,
     {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "a.b.c"},
      "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
          "properties": {"spec": {"properties": {"n": {"type": 3}}}}}}}]}},
     [], _CANNOT + "number into Go struct field JSONSchemaProps.spec.versions.schema.openAPIV3Schema"
     ".properties.properties.type of type string"),  # map keys are not Go fields
    ("dotted map key", POD, {**_pod(), "metadata": {"name": "p", "annotations": {".x": 1}}},
     [], _CANNOT + "number into Go struct field ObjectMeta.metadata.annotations of type string"),
]


@pytest.mark.parametrize("name,gvk,obj,unknown,type_error", TABLE, ids=[t[0] for t in TABLE])
def test_table(name, gvk, obj, unknown, type_error):
    got = _outcome(_new(copy.deepcopy(obj), gvk))
    assert got == _outcome(_old(copy.deepcopy(obj), gvk))
    assert got == ((unknown, None) if type_error is None else ([], type_error))


def test_unknown_kind_has_no_schema():
    assert validation_decode.root_node("example.com", "v1", "Widget") is None


def test_roots_are_compiled_once():
    assert validation_decode.root_node(*POD) is validation_decode.root_node(*POD)


# --- seeded random mutations of realistic objects, compared with the previous walker ---------

_BASES: list[tuple[tuple[str, str, str], dict[str, Any]]] = [
    (POD, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"},
                                                          "annotations": {"x": "y"}},
           "spec": {"containers": [{"name": "c", "image": "i", "command": ["sh", "-c"],
                                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
                                    "livenessProbe": {"httpGet": {"port": 8080, "path": "/"},
                                                      "periodSeconds": 3}}],
                    "volumes": [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}],
                    "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 3}],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "k", "operator": "In", "values": ["a"]}]}]}}},
                    "hostNetwork": False},
           "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "True"}]}}),
    (DEPLOY, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
    (SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"a": "aGk="}, "stringData": {"b": "c"}, "type": "Opaque"}),
    (NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "8"}, "addresses": [{"type": "Hostname", "address": "n"}]}}),
]
_VALUES: list[Any] = [None, True, 0, 3, 1.5, 2.0, "", "s", "aGk=", "!!", [], [1], ["a"], [{}],
                      {}, {"k": "v"}, {"k": 1}]


def _containers(obj: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k))
            _containers(v, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i))
            _containers(v, out)


def _mutate(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 4)):
        slots: list[tuple[Any, Any]] = []
        _containers(obj, slots)
        parent, key = rng.choice(slots)
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent[rng.choice(["zz", "spec", "name", "x.y", "[0]"])] = copy.deepcopy(rng.choice(_VALUES))
        else:
            parent[key] = copy.deepcopy(rng.choice(_VALUES))
    return obj


@pytest.mark.parametrize("seed", range(60))
def test_random_mutations_match_previous_walker(seed):
    rng = random.Random(seed)
    for gvk, base in _BASES:
        for _ in range(10):
            obj = _mutate(base, rng)
            assert _outcome(_new(copy.deepcopy(obj), gvk)) == _outcome(_old(copy.deepcopy(obj), gvk)), obj
