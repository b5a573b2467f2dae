"""Validation of built-in kinds: decode errors (400), strict unknown fields, 422 causes."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from controlplane.apiserver.admission.defaulttolerationseconds import add_default_tolerations

from controlplane.apiserver.encoding.body import MAX_BODY, check_size
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.validation.objects import validate
from tests.unit.apiserver_kinds import apply_defaults

POD = ("", "v1", "Pod")
DEPLOY = ("apps", "v1", "Deployment")


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}


def deploy() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def f(obj: dict) -> None:
        *parents, last = path.split(".")
        cur: Any = obj
        for p in parents:
            cur = cur[int(p)] if p.isdigit() else cur[p]
        if value is _DEL:
            del cur[int(last) if last.isdigit() else last]
        elif last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value
    return f


_DEL = object()


@pytest.mark.parametrize("make,gvk", [(pod, POD), (deploy, DEPLOY)], ids=["pod", "deployment"])
def test_valid_objects_pass_with_and_without_defaults(make, gvk):
    assert validate(make(), gvk, strict=True) == []
    assert validate(apply_defaults(make(), gvk), gvk, strict=True) == []


@pytest.mark.parametrize("make,gvk,mutate,field,reason", [
    (pod, POD, _set("spec.containers.0.image", _DEL), "spec.containers[0].image", "FieldValueRequired"),
    (pod, POD, _set("spec.containers.0.name", _DEL), "spec.containers[0].name", "FieldValueRequired"),
    (pod, POD, _set("spec.containers", []), "spec.containers", "FieldValueRequired"),
    (pod, POD, _set("metadata.name", "Bad_Name"), "metadata.name", "FieldValueInvalid"),
    (pod, POD, _set("metadata.name", "a" * 254), "metadata.name", "FieldValueInvalid"),
    (pod, POD, _set("metadata.name", _DEL), "metadata.name", "FieldValueRequired"),
    (pod, POD, _set("metadata.labels", {"bad key!": "v"}), "metadata.labels", "FieldValueInvalid"),
    (pod, POD, _set("metadata.labels", {"k": "bad value!"}), "metadata.labels", "FieldValueInvalid"),
    (pod, POD, _set("metadata.annotations", {"-bad": "v"}), "metadata.annotations", "FieldValueInvalid"),
    (pod, POD, _set("spec.restartPolicy", "Sometimes"), "spec.restartPolicy", "FieldValueNotSupported"),
    (pod, POD, _set("spec.containers.0.ports.0.containerPort", 70000),
     "spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
    (pod, POD, _set("spec.containers.0.imagePullPolicy", "Sometimes"),
     "spec.containers[0].imagePullPolicy", "FieldValueNotSupported"),
    (pod, POD, _set("spec.containers.0.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     "spec.containers[0].resources.requests", "FieldValueInvalid"),
    (pod, POD, _set("spec.containers.0.resources", {"requests": {"cpu": "lots"}}),
     "spec.containers[0].resources.requests[cpu]", "FieldValueInvalid"),
    (pod, POD, _set("spec.containers.0.volumeMounts", [{"name": "v", "mountPath": "/x"}]),
     "spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
    (deploy, DEPLOY, _set("spec.selector", _DEL), "spec.selector", "FieldValueRequired"),
    (deploy, DEPLOY, _set("spec.template.metadata.labels", {"app": "b"}),
     "spec.template.metadata.labels", "FieldValueInvalid"),
    (deploy, DEPLOY, _set("spec.replicas", -1), "spec.replicas", "FieldValueInvalid"),
    (deploy, DEPLOY, _set("spec.template.spec.restartPolicy", "Never"),
     "spec.template.spec.restartPolicy", "FieldValueNotSupported"),
    (deploy, DEPLOY, _set("spec.template.spec.containers.0.image", ""),
     "spec.template.spec.containers[0].image", "FieldValueRequired"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_invalid_objects_get_422_with_field(make, gvk, mutate, field, reason):
    obj = make()
    mutate(obj)
    with pytest.raises(ApiError) as exc:
        validate(obj, gvk, strict=True)
    assert exc.value.code == 422 and exc.value.reason == "Invalid"
    causes = exc.value.details["causes"]
    assert any(c["field"] == field and c["reason"] == reason for c in causes), causes
    assert field in exc.value.message


def test_duplicate_container_names():
    p = pod()
    p["spec"]["containers"].append({"name": "c", "image": "busybox"})
    with pytest.raises(ApiError) as exc:
        validate(p, POD, strict=True)
    assert exc.value.details["causes"][0] == {"reason": "FieldValueDuplicate",
                                              "message": 'Duplicate value: "c"',
                                              "field": "spec.containers[1].name"}


@pytest.mark.parametrize("path,unknown", [
    ("spec.foo", "spec.foo"), ("spec.containers.0.imagee", "spec.containers[0].imagee"),
    ("metadata.labelz", "metadata.labelz"), ("top", "top"),
])
def test_unknown_fields_strict_400_or_warning(path, unknown):
    p = pod()
    _set(path, "x")(p)
    with pytest.raises(ApiError) as exc:
        validate(p, POD, strict=True)
    assert exc.value.code == 400 and exc.value.reason == "BadRequest"
    assert f'strict decoding error: unknown field "{unknown}"' in exc.value.message
    assert validate(p, POD, strict=False) == [f'unknown field "{unknown}"']


@pytest.mark.parametrize("path,value", [
    ("spec.containers.0.image", 5), ("spec.containers", {"a": 1}),
    ("spec.terminationGracePeriodSeconds", "30"), ("spec.hostNetwork", "yes"),
    ("metadata.labels", ["a"]), ("spec.containers.0.ports.0.containerPort", 8.5),
])
def test_wrong_types_are_400_cannot_unmarshal(path, value):
    p = pod()
    _set(path, value)(p)
    with pytest.raises(ApiError) as exc:
        validate(p, POD, strict=False)
    assert exc.value.code == 400
    assert 'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal' in exc.value.message


@pytest.mark.parametrize("kind,obj,ok", [
    ("ConfigMap", {"metadata": {"name": "c"}, "data": {"a.b": "1", "K_2": "x"}}, True),
    ("ConfigMap", {"metadata": {"name": "c"}, "data": {"bad/key": "1"}}, False),
    ("Secret", {"metadata": {"name": "s"}, "data": {"k": "aGVsbG8="}}, True),
    ("Namespace", {"metadata": {"name": "my.ns"}}, False),  # labels, not subdomains
    ("Namespace", {"metadata": {"name": "team-a"}}, True),
    ("Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}, True),
    ("Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}, {"port": 81}]}}, False),
    ("Service", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 0}]}}, False),
    ("Service", {"metadata": {"name": "s"}, "spec": {"type": "Weird", "ports": [{"port": 1}]}}, False),
    ("Pod", {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}, True),
])
def test_core_kinds(kind, obj, ok):
    gvk = ("", "v1", kind)
    if ok:
        validate(obj, gvk, strict=True)
    else:
        with pytest.raises(ApiError) as exc:
            validate(obj, gvk, strict=True)
        assert exc.value.code == 422


def test_bad_base64_in_secret_is_400():
    with pytest.raises(ApiError) as exc:
        validate({"metadata": {"name": "s"}, "data": {"k": "not base64!"}}, ("", "v1", "Secret"), strict=True)
    assert exc.value.code == 400 and "illegal base64 data at input byte 3" in exc.value.message


def _upd(make, gvk, mutate):
    old = apply_defaults(make(), gvk)
    if gvk == POD:  # as stored: the admission chain added the default tolerations
        add_default_tolerations(old["spec"])
    new = copy.deepcopy(old)
    mutate(new)
    return new, old


@pytest.mark.parametrize("make,gvk,mutate,ok", [
    (pod, POD, _set("spec.containers.0.image", "nginx:2"), True),
    (pod, POD, _set("spec.activeDeadlineSeconds", 100), True),
    (pod, POD, _set("spec.containers.0.ports.0.containerPort", 81), False),
    (pod, POD, _set("spec.restartPolicy", "Never"), False),
    (pod, POD, _set("spec.nodeName", "node-1"), True),  # first binding
    (pod, POD, _set("metadata.labels", {"x": "y"}), True),
    (pod, POD, _set("spec.tolerations", [{"key": "k", "operator": "Exists"}]), False),  # removed defaults
    (pod, POD, _set("spec.tolerations.0.tolerationSeconds", 10), True),
    (deploy, DEPLOY, _set("spec.replicas", 5), True),
    (deploy, DEPLOY, _set("spec.selector", {"matchLabels": {"app": "a", "x": "y"}}), False),
], ids=["image", "deadline", "port", "restart", "bind", "labels", "tolerations-removed",
        "toleration-seconds", "replicas", "selector"])
def test_immutable_fields_on_update(make, gvk, mutate, ok):
    new, old = _upd(make, gvk, mutate)
    if ok:
        validate(new, gvk, strict=True, is_update=True, old=old)
    else:
        with pytest.raises(ApiError) as exc:
            validate(new, gvk, strict=True, is_update=True, old=old)
        assert exc.value.code == 422


def test_immutable_configmap():
    old = {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True}
    new = {**old, "data": {"a": "2"}}
    with pytest.raises(ApiError) as exc:
        validate(new, ("", "v1", "ConfigMap"), strict=True, is_update=True, old=old)
    assert exc.value.details["causes"][0]["field"] == "data"


def test_crd_validation():
    crd = {"metadata": {"name": "crontabs.stable.example.com"},
           "spec": {"group": "stable.example.com", "scope": "Namespaced",
                    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {"x": {"type": "string"}}}}}}}]}}
    gvk = ("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    validate(crd, gvk, strict=True)
    bad = copy.deepcopy(crd)
    bad["metadata"]["name"] = "wrong.example.com"
    bad["spec"]["versions"][0]["storage"] = False
    with pytest.raises(ApiError) as exc:
        validate(bad, gvk, strict=True)
    fields = {c["field"] for c in exc.value.details["causes"]}
    assert {"metadata.name", "spec.versions"} <= fields


def test_body_size_limit():
    check_size(b"x" * MAX_BODY)
    with pytest.raises(ApiError) as exc:
        check_size(b"x" * (MAX_BODY + 1))
    assert exc.value.code == 413


def test_custom_kinds_get_metadata_checks_only():
    validate({"metadata": {"name": "x"}, "spec": {"anything": 1}}, ("example.com", "v1", "Foo"), strict=True)
    with pytest.raises(ApiError):
        validate({"metadata": {"name": "X"}}, ("example.com", "v1", "Foo"), strict=True)


def _b64(s: str) -> str:
    import base64
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize("stype,data,extra,causes", [
    ("kubernetes.io/basic-auth", {"foo": _b64("x")}, {},
     [("data[username]", "Required value"), ("data[password]", "Required value")]),
    ("kubernetes.io/basic-auth", {"password": ""}, {}, []),  # present, even empty, is enough
    ("kubernetes.io/ssh-auth", {"foo": _b64("x")}, {}, [("data[ssh-privatekey]", "Required value")]),
    ("kubernetes.io/ssh-auth", {"ssh-privatekey": _b64("k")}, {}, []),
    ("kubernetes.io/dockerconfigjson", {"foo": _b64("x")}, {}, [("data[.dockerconfigjson]", "Required value")]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64("notjson")}, {},
     [("data[.dockerconfigjson]", 'Invalid value: "<secret contents redacted>": '
       "invalid character 'o' in literal null (expecting 'u')")]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64("[1]")}, {},
     [("data[.dockerconfigjson]", 'Invalid value: "<secret contents redacted>": '
       "json: cannot unmarshal array into Go value of type map[string]interface {}")]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64('{"auths"')}, {},
     [("data[.dockerconfigjson]", 'Invalid value: "<secret contents redacted>": unexpected end of JSON input')]),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": _b64('{"auths": {}}')}, {}, []),
    ("kubernetes.io/dockercfg", {".dockercfg": _b64("x")}, {},
     [("data[.dockercfg]", 'Invalid value: "<secret contents redacted>": '
       "invalid character 'x' looking for beginning of value")]),
    ("kubernetes.io/tls", {"tls.crt": _b64("c")}, {}, [("data[tls.key]", "Required value")]),
    ("kubernetes.io/service-account-token", {}, {},
     [("metadata.annotations[kubernetes.io/service-account.name]", "Required value")]),
    ("kubernetes.io/service-account-token", {}, {"annotations": {"kubernetes.io/service-account.name": "default"}}, []),
], ids=["basic-none", "basic-empty-pw", "ssh-none", "ssh-ok", "djson-none", "djson-literal", "djson-array",
        "djson-eof", "djson-ok", "dockercfg-bad", "tls-key", "sa-token-none", "sa-token-ok"])
def test_secret_type_rules(stype, data, extra, causes):
    obj = {"metadata": {"name": "s", **extra}, "type": stype, "data": data}
    if not causes:
        validate(obj, ("", "v1", "Secret"), strict=True)
        return
    with pytest.raises(ApiError) as exc:
        validate(obj, ("", "v1", "Secret"), strict=True)
    assert exc.value.code == 422
    got = [(c["field"], c["message"]) for c in exc.value.details["causes"]]
    assert got == list(causes)


@pytest.mark.parametrize("key,messages", [
    ("ok.key-1", []),
    (".", ["must not be '.'"]),
    ("..", ["must not be '..'"]),
    ("..data", ["must not start with '..'"]),
    ("a/b", ["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
             "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
])
def test_config_keys(key, messages):
    obj = {"metadata": {"name": "c"}, "data": {key: "1"}}
    if not messages:
        validate(obj, ("", "v1", "ConfigMap"), strict=True)
        return
    with pytest.raises(ApiError) as exc:
        validate(obj, ("", "v1", "ConfigMap"), strict=True)
    assert [c["message"] for c in exc.value.details["causes"]] == [f'Invalid value: "{key}": {m}' for m in messages]

DS = ("apps", "v1", "DaemonSet")
STS = ("apps", "v1", "StatefulSet")


def daemonset() -> dict[str, Any]:
    d = deploy()
    d["kind"], d["metadata"]["name"] = "DaemonSet", "ds"
    return d


def statefulset() -> dict[str, Any]:
    d = deploy()
    d["kind"], d["metadata"]["name"] = "StatefulSet", "ss"
    d["spec"]["serviceName"] = "ss"
    return d


IS = 'intstr.IntOrString{Type:%d, IntVal:%d, StrVal:"%s"}'


@pytest.mark.parametrize("make,gvk,patch,field,message", [
    (deploy, DEPLOY, {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
     "spec.strategy.rollingUpdate.maxUnavailable", f"Invalid value: {IS % (0, 0, '')}: may not be 0 when `maxSurge` is 0"),
    (deploy, DEPLOY, {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "101%"}}},
     "spec.strategy.rollingUpdate.maxUnavailable", f"Invalid value: {IS % (1, 0, '101%')}: must not be greater than 100%"),
    (deploy, DEPLOY, {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": 1}}},
     "spec.strategy.rollingUpdate.maxSurge",
     f"Invalid value: {IS % (1, 0, 'x')}: a valid percent string must be a numeric string followed by an ending '%' "
     "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
    (deploy, DEPLOY, {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1, "maxUnavailable": 1}}},
     "spec.strategy.rollingUpdate.maxSurge", "Invalid value: -1: must be greater than or equal to 0"),
    (deploy, DEPLOY, {"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
     "spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    (deploy, DEPLOY, {"minReadySeconds": 10, "progressDeadlineSeconds": 10},
     "spec.progressDeadlineSeconds", "Invalid value: 10: must be greater than minReadySeconds"),
    (daemonset, DS, {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
     "spec.updateStrategy.rollingUpdate.maxSurge",
     f"Invalid value: {IS % (0, 1, '')}: may not be set when maxUnavailable is non-zero"),
    (daemonset, DS, {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0"),
    (daemonset, DS, {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "200%", "maxUnavailable": 0}}},
     "spec.updateStrategy.rollingUpdate.maxSurge", f"Invalid value: {IS % (1, 0, '200%')}: must not be greater than 100%"),
    (daemonset, DS, {"minReadySeconds": -1}, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
    (statefulset, STS, {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "Invalid value: -1: must be greater than or equal to 0"),
    (statefulset, STS, {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     "spec.updateStrategy.rollingUpdate",
     "Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: "
     "only allowed for updateStrategy 'RollingUpdate'"),
    (statefulset, STS, {"updateStrategy": {"type": "Sometimes"}}, "spec.updateStrategy",
     'Invalid value: apps.StatefulSetUpdateStrategy{Type:"Sometimes", '
     "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be 'RollingUpdate' or 'OnDelete'"),
    (deploy, DEPLOY, {"strategy": {"type": "Sometimes"}}, "spec.strategy",
     'Unsupported value: apps.DeploymentStrategy{Type:"Sometimes", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: '
     'supported values: "Recreate", "RollingUpdate"'),
    (deploy, DEPLOY, {"strategy": {"type": "Sometimes", "rollingUpdate": {"maxSurge": 1}}}, "spec.strategy",
     'Unsupported value: apps.DeploymentStrategy{Type:"Sometimes", '
     'RollingUpdate:(*apps.RollingUpdateDeployment)(0xc000000000)}: supported values: "Recreate", "RollingUpdate"'),
    (daemonset, DS, {"updateStrategy": {"type": "Sometimes"}}, "spec.updateStrategy",
     'Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: '
     'supported values: "RollingUpdate", "OnDelete"'),
    (statefulset, STS, {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Foo"}},
     "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
     'Unsupported value: "Foo": supported values: "Delete", "Retain"'),
], ids=["deploy-both-zero", "deploy-unavailable-over-100", "deploy-bad-percent", "deploy-negative-surge",
        "deploy-recreate-with-rollingupdate", "deploy-deadline-not-above-minready", "ds-both-set", "ds-both-zero",
        "ds-surge-over-100", "ds-minready", "sts-negative-partition", "sts-ondelete-with-rollingupdate",
        "sts-unknown-type", "deploy-unknown-type", "deploy-unknown-type-with-rollingupdate", "ds-unknown-type",
        "sts-retention-policy"])
def test_workload_strategy_422s(make, gvk, patch, field, message):
    """The update strategy rules of ``pkg/apis/apps/validation`` with kube-apiserver's wording."""
    obj = apply_defaults({**make(), "spec": {**make()["spec"], **patch}}, gvk)
    with pytest.raises(ApiError) as exc:
        validate(obj, gvk, strict=True)
    causes = exc.value.details["causes"]
    assert {"field": field, "message": message} in [{"field": c["field"], "message": c["message"]} for c in causes], causes


@pytest.mark.parametrize("make,gvk,patch", [
    (daemonset, DS, {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
    (daemonset, DS, {"updateStrategy": {"type": "OnDelete"}}),
    (deploy, DEPLOY, {"strategy": {"type": "Recreate"}}),
    (deploy, DEPLOY, {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}}),
    (statefulset, STS, {"updateStrategy": {"type": "OnDelete"}, "podManagementPolicy": "Parallel"}),
], ids=["ds-surge", "ds-ondelete", "deploy-recreate", "deploy-unavailable-only", "sts-ondelete"])
def test_workload_strategies_accepted(make, gvk, patch):
    obj = apply_defaults({**make(), "spec": {**make()["spec"], **patch}}, gvk)
    assert validate(obj, gvk, strict=True) == []


JOB = ("batch", "v1", "Job")


def job_obj(suspend=False, started=False) -> dict[str, Any]:
    j = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default", "uid": "u1"},
         "spec": {"suspend": suspend, "template": {"spec": {"restartPolicy": "Never",
                                                            "containers": [{"name": "c", "image": "busybox"}]}}}}
    j = apply_defaults(j, JOB)
    if started:
        j["status"] = {"startTime": "2026-12-07T00:00:00Z"}
    return j


@pytest.mark.parametrize("suspend,started,path,value,ok", [
    (False, True, "spec.template.spec.containers.0.image", "busybox:2", False),
    (True, False, "spec.template.spec.containers.0.image", "busybox:2", False),
    (True, False, "spec.template.spec.nodeSelector", {"disk": "ssd"}, True),
    (True, False, "spec.template.spec.tolerations", [{"key": "k", "operator": "Exists"}], True),
    (True, False, "spec.template.metadata", {"annotations": {"a": "b"}}, True),
    (True, True, "spec.template.spec.nodeSelector", {"disk": "ssd"}, False),
    (False, False, "spec.template.spec.nodeSelector", {"disk": "ssd"}, False),
    (False, True, "spec.parallelism", 3, True),
], ids=["image-running", "image-suspended", "node-selector-suspended", "tolerations-suspended",
        "annotations-suspended", "node-selector-suspended-after-start", "node-selector-not-suspended",
        "parallelism"])
def test_job_template_immutable(suspend, started, path, value, ok):
    """``validateJobTemplateUpdate``: only a suspended, never started Job's scheduling
    directives (and template labels/annotations) may change."""
    old = job_obj(suspend, started)
    new = copy.deepcopy(old)
    _set(path, value)(new)
    if ok:
        assert validate(new, JOB, strict=True, is_update=True, old=old) == []
        return
    with pytest.raises(ApiError) as exc:
        validate(new, JOB, strict=True, is_update=True, old=old)
    causes = exc.value.details["causes"]
    assert [c for c in causes if c["field"] == "spec.template" and c["message"].endswith(": field is immutable")], causes


def test_workload_unknown_strategy_type_is_one_cause():
    """An unknown Deployment ``strategy.type`` is reported once, at ``spec.strategy`` (the
    default case of ``ValidateDeploymentStrategy``), not also at ``spec.strategy.type``."""
    obj = apply_defaults({**deploy(), "spec": {**deploy()["spec"], "strategy": {"type": "Sometimes"}}}, DEPLOY)
    with pytest.raises(ApiError) as exc:
        validate(obj, DEPLOY, strict=True)
    assert [c["field"] for c in exc.value.details["causes"]] == ["spec.strategy"]
