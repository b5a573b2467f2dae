"""The kubelet's file layout of API data volumes (``podconfig.write_atomic``: ``..data`` and the
timestamped directory, per-item modes), downwardAPI files with ``resourceFieldRef``, the
hostPath type checks, and the envFrom keys the kubelet skips with a Warning."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from controlplane.agent.podconfig import ConfigError, PodConfig, host_path_type_error, write_atomic

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
       "spec": {"nodeName": "n1", "containers": [
           {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}}]},
       "status": {}}
T0 = datetime(2026, 12, 7, 19, 25, 5, tzinfo=timezone.utc)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_layout_links_and_modes(tmp_path):
    v = tmp_path / "v"
    assert write_atomic(v, {"a.txt": (b"hello", 0o644), "dir/b": (b"x", 0o400)}, 0o777, now=T0)
    ts = os.readlink(v / "..data")
    assert re.fullmatch(r"\.\.2026_12_07_19_25_05\.[0-9]+", ts) and mode(v / ts) == 0o755 and mode(v) == 0o777
    assert os.readlink(v / "a.txt") == "..data/a.txt" and os.readlink(v / "dir") == "..data/dir"
    assert (v / "a.txt").read_bytes() == b"hello" and mode(v / ts / "a.txt") == 0o644
    assert mode(v / ts / "dir" / "b") == 0o400
    assert sorted(os.listdir(v)) == sorted(["..data", ts, "a.txt", "dir"])


def test_unchanged_payload_is_not_rewritten_and_an_update_swaps_the_directory(tmp_path):
    v = tmp_path / "v"
    write_atomic(v, {"a": (b"1", 0o644), "b": (b"2", 0o644)})
    first = os.readlink(v / "..data")
    inode = (v / first / "a").stat().st_ino
    assert not write_atomic(v, {"a": (b"1", 0o644), "b": (b"2", 0o644)})
    assert os.readlink(v / "..data") == first
    assert write_atomic(v, {"a": (b"1", 0o600)})  # a mode change is a change; b goes
    second = os.readlink(v / "..data")
    assert second != first and not (v / first).exists() and not os.path.lexists(v / "b")
    assert (v / "a").stat().st_ino != inode and mode(v / second / "a") == 0o600


def test_older_in_place_files_are_replaced_by_links(tmp_path):
    v = tmp_path / "v"
    (v / "sub").mkdir(parents=True)
    (v / "a").write_text("old")
    (v / "sub" / "x").write_text("old")
    (v / "..2020_01_01_00_00_00.1").mkdir()  # an interrupted write
    write_atomic(v, {"a": (b"new", 0o644)})
    assert sorted(os.listdir(v)) == sorted(["..data", os.readlink(v / "..data"), "a"])
    assert (v / "a").is_symlink() and (v / "a").read_text() == "new"


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "..data", "a/../../x"])
def test_paths_may_not_escape(tmp_path, rel):
    with pytest.raises(ConfigError, match="escapes the volume"):
        write_atomic(tmp_path / "v", {rel: (b"x", 0o644)})


@pytest.mark.parametrize("items,default,want", [
    (None, 0o644, {"k1": 0o644, "k2": 0o644}),
    (None, 0o400, {"k1": 0o400, "k2": 0o400}),
    ([{"key": "k1", "path": "d/one"}, {"key": "k2", "path": "two", "mode": 0o600}], 0o440,
     {"d/one": 0o440, "two": 0o600}),
])
def test_item_modes(items, default, want):
    got = PodConfig._select({"k1": b"1", "k2": b"2"}, items, default)
    assert {k: m for k, (_, m) in got.items()} == want


def test_downward_files_with_resource_field_refs():
    pc = PodConfig(None, POD, "n1", "10.0.0.5")  # type: ignore[arg-type]
    got = pc._downward([
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"},
         "mode": 0o400},
        {"path": "req", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu"}},
    ], 0o644)
    assert got == {"labels": (b'app="x"', 0o644), "cpu": (b"500", 0o644), "mem": (b"128", 0o400), "req": (b"1", 0o644)}
    with pytest.raises(ConfigError, match="container nope not found"):
        pc._downward([{"path": "x", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}], 0o644)


def _kinds(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "s"))
    s.close()
    return {"dir": tmp_path / "d", "file": tmp_path / "f", "sock": tmp_path / "s", "none": tmp_path / "missing"}


@pytest.mark.parametrize("what,kind,error", [
    ("dir", "Directory", None), ("file", "Directory", "is not a directory"), ("none", "Directory", "is not a directory"),
    ("file", "File", None), ("dir", "File", "is not a file"), ("none", "File", "is not a file"),
    ("sock", "Socket", None), ("file", "Socket", "is not a socket file"),
    ("file", "CharDevice", "is not a character device"), ("file", "BlockDevice", "is not a block device"),
    ("none", "", None), ("dir", "DirectoryOrCreate", None),
])
def test_host_path_type_checks(tmp_path, what, kind, error):
    assert host_path_type_error(_kinds(tmp_path)[what], kind) == error


def test_host_path_error_words(tmp_path):
    pc = PodConfig(None, POD, "n1", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=f"hostPath type check failed: {tmp_path}/nope is not a file$"):
        pc._host_path({"path": str(tmp_path / "nope"), "type": "File"}, tmp_path)
    made = pc._host_path({"path": str(tmp_path / "new" / "dir"), "type": "DirectoryOrCreate"}, tmp_path)
    assert made.is_dir()


@pytest.mark.parametrize("prefix,skipped", [
    ("", "Keys [1bad, a b] from the EnvFrom configMap ns/cm were skipped since they are considered "
         "invalid environment variable names."),
    ("P_", "Keys [P_a b] from the EnvFrom configMap ns/cm were skipped since they are considered "
           "invalid environment variable names."),
])
def test_env_from_invalid_keys_are_skipped_with_a_warning(prefix, skipped):
    pc = PodConfig(None, POD, "n1", None)  # type: ignore[arg-type]
    pc._cache[("configmap", "cm")] = {"data": {"1bad": "x", "good-key.1": "y", "a b": "z"}}
    env = asyncio.run(pc.env({"envFrom": [{"configMapRef": {"name": "cm"}, "prefix": prefix}]}))
    names = {e.split("=", 1)[0] for e in env}
    assert f"{prefix}good-key.1" in names and f"{prefix}a b" not in names
    assert (f"{prefix}1bad" in names) == bool(prefix)
    assert pc.warnings == [("InvalidEnvironmentVariableNames", skipped)]


@pytest.mark.parametrize("ref,want", [
    ({"resource": "limits.cpu"}, "2"),  # no limit: the node's allocatable
    ({"resource": "limits.cpu", "divisor": "1m"}, "2000"),
    ({"resource": "limits.memory", "divisor": "1Mi"}, "1024"),
    ({"resource": "requests.cpu", "divisor": "1m"}, "0"),  # no request: 0
    ({"resource": "limits.ephemeral-storage", "divisor": "1Gi"}, "10"),
])
def test_unset_limits_are_the_node_allocatable(ref, want):
    from controlplane.agent.podconfig import resource_ref
    alloc = {"cpu": "2", "memory": "1Gi", "ephemeral-storage": "10Gi"}
    assert resource_ref({"name": "c"}, ref, alloc) == want


def test_host_ip_is_the_node_address():
    from controlplane.agent.podconfig import field_ref
    assert field_ref(POD, "status.hostIP", "n1", "10.0.0.5", "192.0.2.7") == "192.0.2.7"
    assert field_ref(POD, "status.podIPs", "n1", "10.0.0.5", "192.0.2.7") == "10.0.0.5"


@pytest.mark.parametrize("kind,optional,error", [
    ("configmap", False, "configmap references non-existent config key: nokey"),
    ("secret", False, "references non-existent secret key: nokey"),
    ("configmap", True, None),
])
def test_items_naming_a_missing_key(kind, optional, error):
    items = [{"key": "k1", "path": "one"}, {"key": "nokey", "path": "x"}]
    if error:
        with pytest.raises(ConfigError, match=f"^{error}$"):
            PodConfig._select({"k1": b"1"}, items, 0o644, kind, optional)
    else:
        assert PodConfig._select({"k1": b"1"}, items, 0o644, kind, optional) == {"one": (b"1", 0o644)}
