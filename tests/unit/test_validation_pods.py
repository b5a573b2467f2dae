"""Pod spec rules (``validation_pods.py``) with Kubernetes' exact causes, field paths included,
and the ConfigMap size limit (``validation_rules.py``) at its edges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.validation.objects import validate
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation.pods import validate_pod_spec

_QTY = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def _c(**kw: Any) -> dict[str, Any]:
    return {"name": "c", "image": "i", **kw}


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str, str]]]] = [
    ("valid", {"containers": [_c(ports=[{"containerPort": 80, "name": "http"}],
                                 env=[{"name": "A", "value": "1"}],
                                 resources={"limits": {"cpu": "1"}, "requests": {"cpu": "1000m"}})]}, []),
    ("no containers", {"containers": []}, [("FieldValueRequired", "spec.containers", "Required value")]),
    ("container not an object", {"containers": [None]},
     [("FieldValueRequired", "spec.containers[0]", "Required value")]),
    ("pull policy", {"containers": [_c(imagePullPolicy="Sometimes")]},
     [("FieldValueNotSupported", "spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')]),
    ("message policy", {"containers": [_c(terminationMessagePolicy="x")]},
     [("FieldValueNotSupported", "spec.containers[0].terminationMessagePolicy",
       'Unsupported value: "x": supported values: "FallbackToLogsOnError", "File"')]),
    ("port numbers", {"containers": [_c(ports=[{"name": "a"}, {"containerPort": 0, "hostPort": 70000,
                                                                "protocol": "ICMP"}])]},
     [("FieldValueRequired", "spec.containers[0].ports[0].containerPort", "Required value"),
      ("FieldValueInvalid", "spec.containers[0].ports[1].containerPort",
       "Invalid value: 0: must be between 1 and 65535, inclusive"),
      ("FieldValueInvalid", "spec.containers[0].ports[1].hostPort",
       "Invalid value: 70000: must be between 1 and 65535, inclusive"),
      ("FieldValueNotSupported", "spec.containers[0].ports[1].protocol",
       'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')]),
    ("port names", {"containers": [_c(ports=[{"containerPort": 1, "name": "web"},
                                             {"containerPort": 2, "name": "web"},
                                             {"containerPort": 3, "name": "a-very-long-port-name"}])]},
     [("FieldValueDuplicate", "spec.containers[0].ports[1].name", 'Duplicate value: "web"'),
      ("FieldValueInvalid", "spec.containers[0].ports[2].name",
       'Invalid value: "a-very-long-port-name": must be no more than 15 characters')]),
    ("env", {"containers": [_c(env=[{"value": "x"}, {"name": "1A"}, {"name": "B", "value": "v",
                                                                    "valueFrom": {"fieldRef": {}}}])]},
     [("FieldValueRequired", "spec.containers[0].env[0].name", "Required value"),
      ("FieldValueInvalid", "spec.containers[0].env[1].name",
       'Invalid value: "1A": a valid environment variable name must consist of alphabetic characters, '
       "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
       "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"),
      ("FieldValueRequired", "spec.containers[0].env[2].valueFrom.fieldRef.apiVersion", "Required value"),  # not defaulted here
      ("FieldValueInvalid", "spec.containers[0].env[2].valueFrom",
       'Invalid value: "": may not be specified when `value` is not empty')]),
    ("resources", {"containers": [_c(resources={"limits": {"cpu": "500m", "memory": "-1"},
                                                "requests": {"cpu": "0.6", "memory": "1x"}})]},
     [("FieldValueInvalid", "spec.containers[0].resources.limits[memory]",
       'Invalid value: "-1": must be greater than or equal to 0'),
      ("FieldValueInvalid", "spec.containers[0].resources.requests[memory]", f'Invalid value: "1x": {_QTY}'),
      ("FieldValueInvalid", "spec.containers[0].resources.requests",
       'Invalid value: "0.6": must be less than or equal to cpu limit of 500m')]),
    ("equal request and limit", {"containers": [_c(resources={"limits": {"memory": "1Gi"},
                                                              "requests": {"memory": "1024Mi"}})]}, []),
    ("mounts", {"volumes": [{"name": "v"}], "containers": [_c(volumeMounts=[{"name": "w", "mountPath": "/"},
                                                                            {"name": "v"}, {}])]},
     [("FieldValueNotFound", "spec.containers[0].volumeMounts[0].name", 'Not found: "w"'),
      ("FieldValueRequired", "spec.containers[0].volumeMounts[1].mountPath", "Required value"),
      ("FieldValueRequired", "spec.containers[0].volumeMounts[2].name", "Required value"),
      ("FieldValueRequired", "spec.containers[0].volumeMounts[2].mountPath", "Required value")]),
    ("init probes and duplicate names", {"initContainers": [_c(readinessProbe={"exec": {}})],
                                         "containers": [_c()]},
     [("FieldValueForbidden", "spec.initContainers[0].readinessProbe",
       "Forbidden: may not be set for init containers without restartPolicy=Always"),
      ("FieldValueDuplicate", "spec.containers[0].name", 'Duplicate value: "c"')]),
    ("a sidecar may have probes and hooks",
     {"initContainers": [_c(name="s", restartPolicy="Always", readinessProbe={"exec": {"command": ["true"]}},
                            livenessProbe={"exec": {"command": ["true"]}}, startupProbe={"exec": {"command": ["true"]}},
                            lifecycle={"preStop": {"exec": {"command": ["true"]}}})], "containers": [_c()]}, []),
    ("init restartPolicy other than Always",
     {"initContainers": [_c(name="a", restartPolicy="OnFailure"), _c(name="b", restartPolicy="Never")],
      "containers": [_c()]},
     [("FieldValueNotSupported", "spec.initContainers[0].restartPolicy",
       'Unsupported value: "OnFailure": supported values: "Always"'),
      ("FieldValueNotSupported", "spec.initContainers[1].restartPolicy",
       'Unsupported value: "Never": supported values: "Always"')]),
    ("regular init containers: no hooks, no probes",
     {"initContainers": [_c(name="i", lifecycle={"postStart": {"exec": {"command": ["true"]}}},
                            livenessProbe={"exec": {}}, startupProbe={"exec": {}})], "containers": [_c()]},
     [("FieldValueForbidden", "spec.initContainers[0].lifecycle",
       "Forbidden: may not be set for init containers without restartPolicy=Always"),
      ("FieldValueForbidden", "spec.initContainers[0].livenessProbe",
       "Forbidden: may not be set for init containers without restartPolicy=Always"),
      ("FieldValueForbidden", "spec.initContainers[0].startupProbe",
       "Forbidden: may not be set for init containers without restartPolicy=Always")]),
    ("restartPolicy on a regular container", {"containers": [_c(restartPolicy="Always")]},
     [("FieldValueForbidden", "spec.containers[0].restartPolicy",
       "Forbidden: may not be set for non-init containers")]),
    ("spec scalars", {"containers": [_c()], "dnsPolicy": "Nope", "terminationGracePeriodSeconds": -1,
                      "activeDeadlineSeconds": 0, "nodeName": "Bad_Node"},
     [("FieldValueNotSupported", "spec.dnsPolicy",
       'Unsupported value: "Nope": supported values: "ClusterFirst", "ClusterFirstWithHostNet", '
       '"Default", "None"'),
      ("FieldValueInvalid", "spec.terminationGracePeriodSeconds",
       "Invalid value: -1: must be greater than or equal to 0"),
      ("FieldValueInvalid", "spec.activeDeadlineSeconds",
       "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
      ("FieldValueInvalid", "spec.nodeName",
       'Invalid value: "Bad_Node": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
       "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
       "'example.com', regex used for validation is "
       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]),
    ("tolerations", {"containers": [_c()], "tolerations": [{"operator": "Maybe"},
                                                           {"operator": "Exists", "value": "v"},
                                                           {"key": "k", "effect": "Sometimes"}]},
     [("FieldValueNotSupported", "spec.tolerations[0].operator",
       'Unsupported value: "Maybe": supported values: "Equal", "Exists"'),
      ("FieldValueInvalid", "spec.tolerations[1].operator",
       'Invalid value: "v": value must be empty when `operator` is \'Exists\''),
      ("FieldValueNotSupported", "spec.tolerations[2].effect",
       'Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"')]),
    ("subPath and subPathExpr", {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [_c(volumeMounts=[
        {"name": "v", "mountPath": "/a", "subPath": "x", "subPathExpr": "$(POD)"}])]},
     [("FieldValueInvalid", "spec.containers[0].volumeMounts[0].subPathExpr",
       'Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive')]),
    ("sub paths escape", {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [_c(volumeMounts=[
        {"name": "v", "mountPath": "/a", "subPath": "/etc"}, {"name": "v", "mountPath": "/b", "subPathExpr": "a/../.."}])]},
     [("FieldValueInvalid", "spec.containers[0].volumeMounts[0].subPath", 'Invalid value: "/etc": must be a relative path'),
      ("FieldValueInvalid", "spec.containers[0].volumeMounts[1].subPathExpr",
       "Invalid value: \"a/../..\": must not contain '..'")]),
    ("subPathExpr alone", {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [_c(volumeMounts=[
        {"name": "v", "mountPath": "/a", "subPathExpr": "$(POD_NAME)/logs"}])]}, []),
    ("seccomp profiles", {"securityContext": {"seccompProfile": {"type": "Localhost"}},
                          "containers": [_c(securityContext={"seccompProfile": {"type": "Strict"}}),
                                         _c(name="d", securityContext={"seccompProfile": {
                                             "type": "RuntimeDefault", "localhostProfile": "p.json"}}),
                                         _c(name="e", securityContext={"seccompProfile": {
                                             "type": "Localhost", "localhostProfile": "../p.json"}})]},
     [("FieldValueNotSupported", "spec.containers[0].securityContext.seccompProfile.type",
       'Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", "Unconfined"'),
      ("FieldValueInvalid", "spec.containers[1].securityContext.seccompProfile.localhostProfile",
       'Invalid value: {"localhostProfile": "p.json", "type": "RuntimeDefault"}: can only be set when seccomp type is Localhost'),
      ("FieldValueInvalid", "spec.containers[2].securityContext.seccompProfile.localhostProfile",
       "Invalid value: \"../p.json\": must not contain '..'"),
      ("FieldValueRequired", "spec.securityContext.seccompProfile.localhostProfile",
       "Required value: must be set when seccomp type is Localhost")]),
    ("no escalation yet privileged", {"containers": [_c(securityContext={
        "allowPrivilegeEscalation": False, "privileged": True, "capabilities": {"add": ["CAP_SYS_ADMIN"]}})]},
     [("FieldValueInvalid", "spec.containers[0].securityContext",
       'Invalid value: {"allowPrivilegeEscalation": false, "capabilities": {"add": ["CAP_SYS_ADMIN"]}, "privileged": true}: '
       "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"),
      ("FieldValueInvalid", "spec.containers[0].securityContext",
       'Invalid value: {"allowPrivilegeEscalation": false, "capabilities": {"add": ["CAP_SYS_ADMIN"]}, "privileged": true}: '
       "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")]),
]


@pytest.mark.parametrize("name,spec,causes", CASES, ids=[c[0] for c in CASES])
def test_pod_spec_causes(name, spec, causes):
    errs = Errors()
    validate_pod_spec(spec, "spec", errs)
    assert [(c["reason"], c["field"], c["message"]) for c in errs.causes] == causes


CM = ("", "v1", "ConfigMap")
_LIMIT = 1024 * 1024


def _cm(data: dict[str, str], binary: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}
    if binary is not None:
        obj["binaryData"] = binary
    return obj


def _size(obj: dict[str, Any]) -> int:
    return len(json.dumps(obj.get("data") or {})) + len(json.dumps(obj.get("binaryData") or {}))


def _filler(n: int, ch: str = "a") -> str:
    return ch * n


SIZE_CASES = [
    ("small", _cm({"k": "v" * 1000})),
    ("exactly at the limit", _cm({"k": _filler(_LIMIT - len('{"k": ""}') - 2)})),
    ("one over the limit", _cm({"k": _filler(_LIMIT - len('{"k": ""}') - 1)})),
    ("escapes push it over", _cm({"k": _filler(_LIMIT // 6 + 10, "\u00e9")})),
    ("escapes stay under", _cm({"k": _filler(_LIMIT // 6 - 10, "\u00e9")})),
    ("astral characters", _cm({"k": _filler(_LIMIT // 12 + 1, "\U0001F600")})),
    ("binary data counts too", _cm({"k": "v"}, {"b": "aGVs" * (_LIMIT // 8)}),),
    ("binary data counts too over", _cm({"k": "v" * (_LIMIT // 2)}, {"b": "aGVs" * (_LIMIT // 8)})),
]


@pytest.mark.parametrize("name,obj", SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_configmap_size_limit_is_on_the_json_encoding(name, obj):
    too_long = _size(obj) > _LIMIT
    try:
        validate(obj, CM, strict=True)
        assert not too_long
    except ApiError as exc:
        assert too_long
        assert exc.code == 422
        assert exc.details["causes"] == [{"reason": "FieldValueTooLong", "field": "",
                                          "message": "Too long: must have at most 1048576 bytes"}]
