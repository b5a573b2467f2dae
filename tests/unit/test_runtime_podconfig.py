"""Pod spec → runtime inputs (pure parts): $(VAR) expansion, command/args vs image
entrypoint, downward API fields, hostPath confinement, cgroup limits from resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.agent.podconfig import ConfigError, PodConfig, expand, field_ref, limits, resource_ref

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa"}, "status": {}}


@pytest.mark.parametrize("s,env,out", [
    ("$(A)-x", {"A": "1"}, "1-x"),
    ("$(MISSING)", {}, "$(MISSING)"),
    ("$$(A)", {"A": "1"}, "$(A)"),
    ("a $(A) $(B)", {"A": "1", "B": "2"}, "a 1 2"),
])
def test_expand(s, env, out):
    assert expand(s, env) == out


@pytest.mark.parametrize("path,value", [
    ("metadata.name", "p"), ("metadata.namespace", "ns"), ("metadata.uid", "u1"), ("spec.nodeName", "n1"),
    ("spec.serviceAccountName", "sa"), ("status.podIP", "10.0.0.5"), ("metadata.labels['app']", "x"),
])
def test_field_ref(path, value):
    assert field_ref(POD, path, "n1", "10.0.0.5") == value


def test_field_ref_unknown():
    with pytest.raises(ConfigError):
        field_ref(POD, "spec.bogus", "n1", None)


@pytest.mark.parametrize("container,image,argv", [
    ({"command": ["sh"], "args": ["-c", "echo $(X)"]}, {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["sh", "-c", "echo 1"]),
    ({}, {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["/e", "c"]),
    ({"args": ["a"]}, {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["/e", "a"]),
    ({"command": ["x"]}, {"Entrypoint": ["/e"], "Cmd": ["c"]}, ["x"]),
], ids=["both", "image", "args-only", "command-only"])
def test_command(container, image, argv):
    assert PodConfig.command(container, image, ["X=1"]) == argv


def test_no_command_is_an_error():
    with pytest.raises(ConfigError):
        PodConfig.command({}, {}, [])


@pytest.mark.parametrize("path,ok", [("/allowed/data", True), ("/allowed", True), ("/etc", False),
                                     ("/allowed/../etc", False), ("/allowedx", False)])
def test_host_path_confined(path, ok, tmp_path):
    pc = PodConfig(None, POD, "n1", None)  # type: ignore[arg-type]
    root = Path("/allowed")
    if ok:
        assert pc._host_path({"path": path}, root) == Path(path)
    else:
        with pytest.raises(ConfigError, match="outside the allowed root"):
            pc._host_path({"path": path}, root)


def test_limits_and_resource_ref():
    c = {"resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}}
    assert limits(c) == {"memory_limit": 64 << 20, "cpu_limit_milli": 500, "cpu_request_milli": 250}
    assert resource_ref(c, {"resource": "limits.memory", "divisor": "1Mi"}) == "64"
    assert resource_ref(c, {"resource": "limits.cpu", "divisor": "1m"}) == "500"
    assert resource_ref(c, {"resource": "limits.cpu"}) == "1"


@pytest.mark.parametrize("mount,env,sub,error", [
    ({"subPath": "a/b"}, [], "a/b", None),
    ({"subPathExpr": "$(POD_NAME)/logs"}, ["POD_NAME=web-0"], "web-0/logs", None),
    ({"subPathExpr": "$(POD_NAME)-$(NS)"}, ["POD_NAME=web-0"], None, "missing value for NS"),
    ({"subPathExpr": "$(EMPTY)"}, ["EMPTY="], None, "missing value for EMPTY"),
    ({"subPathExpr": "$(P)"}, ["P=/etc"], None, "error SubPath `/etc` must not be an absolute path"),
    ({"subPathExpr": "$(P)/x"}, ["P=.."], None, "unable to provision SubPath `../x`: must not contain '..'"),
], ids=["subpath", "expr", "expr-missing", "expr-empty", "expr-absolute", "expr-backstep"])
def test_sub_path_expr(mount, env, sub, error, tmp_path):
    pc = PodConfig(None, POD, "n1", None)  # type: ignore[arg-type]  # mounts() reads no API object
    c = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/m", **mount}]}
    if error:
        with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")):
            pc.mounts(c, {"v": tmp_path}, env)
        return
    (m,) = pc.mounts(c, {"v": tmp_path}, env)
    assert m.destination == "/m" and m.source == str(tmp_path / sub) and (tmp_path / sub).is_dir()
