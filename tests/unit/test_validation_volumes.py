"""Pod volume sources as ``validateVolumeSource`` judges them (``validation/volumes.py``):
field paths, messages and their order, on the whole Pod through ``validate``."""

from __future__ import annotations

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.validation.objects import validate
from tests.unit.apiserver_kinds import apply_defaults

POD = ("", "v1", "Pod")


def _pod(*volumes: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": list(volumes)}}


def _causes(obj: dict) -> list[tuple[str, str]]:
    try:
        validate(apply_defaults(obj, POD), POD, strict=True)
    except ApiError as e:
        assert e.code == 422
        return [(c["field"], c["message"]) for c in e.details["causes"]]
    return []


V = "spec.volumes[0]"


@pytest.mark.parametrize("volume,causes", [
    ({"name": "a", "configMap": {"name": "c", "defaultMode": 0o644,
                                 "items": [{"key": "k", "path": "d/k", "mode": 0o400}]}}, []),
    ({"name": "a", "configMap": {"name": "c", "defaultMode": 0o1000}},
     [(f"{V}.configMap.defaultMode", "Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive")]),
    ({"name": "a", "secret": {"secretName": "s", "items": [{"key": "", "path": "../x", "mode": -1}]}},
     [(f"{V}.secret.items[0].key", "Required value"),
      (f"{V}.secret.items[0].path", "Invalid value: \"../x\": must not contain '..'"),
      (f"{V}.secret.items[0].mode", "Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive")]),
    ({"name": "a", "secret": {"items": [{"key": "k", "path": "..x"}]}},
     [(f"{V}.secret.secretName", "Required value"),
      (f"{V}.secret.items[0].path", "Invalid value: \"..x\": must not start with '..'")]),
    ({"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "/abs"}]}},
     [(f"{V}.configMap.items[0].path", 'Invalid value: "/abs": must be a relative path')]),
    ({"name": "a", "hostPath": {"path": "/tmp/x", "type": "Bogus"}},
     [(f"{V}.hostPath.type", 'Unsupported value: "Bogus": supported values: "", "BlockDevice", "CharDevice", '
                             '"Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"')]),
    ({"name": "a", "hostPath": {"path": "/a/../b"}},
     [(f"{V}.hostPath.path", "Invalid value: \"/a/../b\": must not contain '..'")]),
    ({"name": "a", "emptyDir": {"sizeLimit": "-1Mi"}},
     [(f"{V}.emptyDir.sizeLimit", "Forbidden: SizeLimit field must be a valid resource quantity")]),
    ({"name": "a", "persistentVolumeClaim": {"claimName": ""}},
     [(f"{V}.persistentVolumeClaim.claimName", "Required value")]),
    ({"name": "a", "downwardAPI": {"items": [
        {"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}},
        {"path": "l", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "c", "resourceFieldRef": {"resource": "limits.cpu"}},
        {"path": "m", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "3"}},
        {"path": "x"}]}},
     [(f"{V}.downwardAPI.items[0].fieldRef.fieldPath",
       'Unsupported value: "spec.nodeName": supported values: "metadata.annotations", "metadata.labels", '
       '"metadata.name", "metadata.namespace", "metadata.uid"'),
      (f"{V}.downwardAPI.items[2].resourceFieldRef.containerName", "Required value"),
      (f"{V}.downwardAPI.items[3].resourceFieldRef.divisor",
       'Invalid value: "limits.memory": only divisor\'s values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, '
       "1Ei are supported with the memory resource"),
      (f"{V}.downwardAPI.items[4]", "Required value: one of fieldRef and resourceFieldRef is required")]),
    ({"name": "a", "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": 60, "path": "t"}},
        {"downwardAPI": {"items": [{"path": "../x", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"configMap": {"name": "c", "items": [{"key": "k", "path": "t"}]}},
        {"serviceAccountToken": {"audience": "a"}}]}},
     [(f"{V}.projected.sources[0].serviceAccountToken.expirationSeconds",
       "Invalid value: 60: may not specify a duration less than 10 minutes"),
      (f"{V}.projected.sources[1].downwardAPI.path", "Invalid value: \"../x\": must not contain '..'"),
      (f"{V}.projected", 'Invalid value: "c": conflicting duplicate paths'),
      (f"{V}.projected.path", "Required value")]),
    ({"name": "a", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}, []),  # 3600 by default
], ids=["cm-ok", "cm-mode", "secret-items", "secret-name", "absolute", "hostpath-type", "hostpath-backstep",
        "emptydir-size", "pvc", "downward", "projected", "projected-default-expiration"])
def test_volume_sources(volume, causes):
    assert _causes(_pod(volume)) == causes


def test_source_errors_come_before_the_name():
    assert _causes(_pod({"name": "Bad_Name", "configMap": {}}))[:2] == [
        (f"{V}.configMap.name", "Required value"),
        (f"{V}.name", "Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric "
                      "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
                      "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")]


E = "spec.containers[0].env[0].valueFrom"


@pytest.mark.parametrize("value_from,causes", [
    ({"fieldRef": {"fieldPath": "status.podIP"}}, []),
    ({"fieldRef": {"fieldPath": "metadata.labels['app']"}}, []),
    ({"fieldRef": {"fieldPath": "status.bogus"}},
     [(f"{E}.fieldRef.fieldPath",
       'Invalid value: "status.bogus": error converting fieldPath: field label not supported: status.bogus')]),
    ({"fieldRef": {"fieldPath": "metadata.labels"}},
     [(f"{E}.fieldRef.fieldPath", 'Unsupported value: "metadata.labels": supported values: "metadata.name", '
                                  '"metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", '
                                  '"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"')]),
    ({"fieldRef": {"fieldPath": "spec.nodeName['x']"}},
     [(f"{E}.fieldRef.fieldPath", "Invalid value: \"spec.nodeName['x']\": error converting fieldPath: "
                                  "field label does not support subscript: spec.nodeName['x']")]),
    ({"resourceFieldRef": {"resource": "limits.gpu"}},
     [(f"{E}.resourceFieldRef.resource", 'Unsupported value: "limits.gpu": supported values: "limits.cpu", '
                                         '"limits.ephemeral-storage", "limits.memory", "requests.cpu", '
                                         '"requests.ephemeral-storage", "requests.memory"')]),
    ({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}},
     [(f"{E}.resourceFieldRef.divisor",
       'Invalid value: "limits.cpu": only divisor\'s values 1m and 1 are supported with the cpu resource')]),
    ({"configMapKeyRef": {"name": "x"}}, [(f"{E}.configMapKeyRef.key", "Required value")]),
    ({"secretKeyRef": {"key": "a/b"}},
     [(f"{E}.secretKeyRef.name", "Required value"),
      (f"{E}.secretKeyRef.key", "Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, "
                                "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                                "validation is '[-._a-zA-Z0-9]+')")]),
    ({}, [(E, 'Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or '
              '`secretKeyRef`')]),
    ({"configMapKeyRef": {"name": "x", "key": "k"}, "secretKeyRef": {"name": "y", "key": "k"}},
     [(E, 'Invalid value: "": may not have more than one field specified at a time')]),
], ids=["pod-ip", "label", "unknown", "not-for-env", "subscript", "resource", "divisor", "cm-key", "secret",
        "none", "two"])
def test_env_value_from(value_from, causes):
    pod = _pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "X", "valueFrom": value_from}]
    assert _causes(pod) == causes


def _refs(spec: dict) -> list:
    from controlplane.apiserver.validation.volumes import resource_field_refs
    return [r.get("divisor") for r in resource_field_refs(spec)]


@pytest.mark.parametrize("divisor,want", [
    (None, "0"), ("0", "0"), ("0Mi", "0"), ("0m", "0"), ("0.0", "0"), (0, "0"),
    ("1Mi", "1Mi"),
], ids=["unset", "zero", "zero-binary", "zero-milli", "zero-decimal", "number", "one-mi"])
def test_divisors_read_back_as_kube_apiserver_prints_them(divisor, want):
    """``ResourceFieldSelector.divisor`` is a ``resource.Quantity`` struct, which ``omitempty``
    does not drop: unset (or any zero) it is printed ``"0"``, everywhere a pod spec has one."""
    ref = {"resource": "limits.memory", **({"divisor": divisor} if divisor is not None else {})}
    pod = _pod({"name": "d", "downwardAPI": {"items": [{"path": "m", "resourceFieldRef": {**ref, "containerName": "c"}}]}},
               {"name": "p", "projected": {"sources": [{"downwardAPI": {"items": [
                   {"path": "m", "resourceFieldRef": {**ref, "containerName": "c"}}]}}]}})
    pod["spec"]["containers"][0]["env"] = [{"name": "M", "valueFrom": {"resourceFieldRef": dict(ref)}}]
    pod["spec"]["initContainers"] = [{"name": "i", "image": "busybox", "env": [
        {"name": "M", "valueFrom": {"resourceFieldRef": dict(ref)}}]}]
    out = apply_defaults(pod, POD)
    assert _refs(out["spec"]) == [want] * 4
    assert _causes(pod) == []


def test_a_pod_stored_without_divisors_may_still_be_updated():
    """A pod written before the default (its refs lack ``divisor``) compares as the same pod."""
    old = _pod()
    old["metadata"].update(namespace="default", resourceVersion="1", uid="u")
    old["spec"]["containers"][0]["env"] = [{"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]
    old = apply_defaults(old, POD)
    old["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"].pop("divisor")
    new = apply_defaults({**old, "metadata": {**old["metadata"], "labels": {"a": "b"}}}, POD)
    validate(new, POD, strict=True, is_update=True, old=old)
    new["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"] = "1m"
    with pytest.raises(ApiError, match="pod updates may not change fields"):
        validate(new, POD, strict=True, is_update=True, old=old)
