"""Pure pieces of the gitops controller: durations, conditions, inventory ids and stale
objects, apply order, substitution and YAML parsing, webhook verification and matching,
semver ranges, reproducible artifacts, impersonation headers."""

from __future__ import annotations

import hashlib
import hmac
import io
import tarfile
from pathlib import Path

import pytest

from controlplane.gitops import api, artifact, render
from controlplane.gitops.context import impersonation_headers
from controlplane.gitops.git import GitClient, GitError, Resolved, parse_version
from controlplane.gitops.inventory import ObjRef, entries, stale
from controlplane.gitops.manifests_dir import object_name
from controlplane.gitops.ordering import is_stage_one, kind_rank
from controlplane.gitops.receiver import ref_matches, repo_path, same_repo, verify


@pytest.mark.parametrize("s,want", [("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5s", 1.5), (None, 7)])
def test_parse_duration(s, want):
    assert api.parse_duration(s, 7) == want


@pytest.mark.parametrize("bad", ["1x", "m", "1m 2s", "-1s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        api.parse_duration(bad, 1)


def test_conditions_keep_transition_time_while_status_stays():
    c1 = api.ready_conditions([], "failed", "A", "first", 1)
    c1[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    c2 = api.ready_conditions(c1, "failed", "B", "second", 2)
    assert c2[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z" and c2[0]["reason"] == "B"
    c3 = api.ready_conditions(c2, "ready", "OK", "done", 2)
    assert [c["type"] for c in c3] == ["Ready"] and c3[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    stalled = api.ready_conditions(c3, "stalled", "ValidationFailed", "bad", 2)
    assert {c["type"]: c["status"] for c in stalled} == {"Ready": "False", "Stalled": "True"}
    prog = api.ready_conditions(stalled, "progressing", "Progressing", "wait", 2)
    assert {c["type"]: c["status"] for c in prog} == {"Ready": "Unknown", "Reconciling": "True"}
    assert api.same_conditions(c2, api.ready_conditions(c2, "failed", "B", "second", 2))


def test_inventory_ids_and_stale_order():
    objs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}},
            {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t", "namespace": "ns"}},
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "things.x.io"}}]
    refs = [ObjRef.of(o) for o in objs]
    assert refs[0].id == "ns_web_apps_Deployment" and refs[1].id == "_ns__Namespace"
    assert [ObjRef.from_entry(e) for e in entries(refs)] == sorted(refs)
    gone = stale(refs, [refs[0]])
    # reverse apply order: custom resources first, cluster definitions last
    assert [r.kind for r in gone] == ["Thing", "Namespace", "CustomResourceDefinition"]
    moved = ObjRef("ns", "web", "apps", "Deployment", "v2")
    assert stale(refs[:1], [moved]) == []  # a version change is not a removal


def test_kind_order():
    order = ["CustomResourceDefinition", "Namespace", "ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment"]
    groups = {"CustomResourceDefinition": "apiextensions.k8s.io", "Deployment": "apps"}
    ranks = [kind_rank(groups.get(k, ""), k) for k in order]
    assert ranks == sorted(ranks)
    assert kind_rank("x.io", "Deployment") > kind_rank("apps", "Ingress")  # custom resources last
    assert is_stage_one("", "Namespace") and is_stage_one("apiextensions.k8s.io", "CustomResourceDefinition")
    assert not is_stage_one("", "ConfigMap")


@pytest.mark.parametrize("text,want", [
    ("${A}", "1"), ("${MISSING}", ""), ("${MISSING:-d}", "d"), ("${MISSING:=d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY}", ""), ("$${A}", "${A}"), ("$A stays", "$A stays"), ("x${A}y${B}z", "x1y2z"), ("${A:-d}", "1")])
def test_substitution(text, want):
    assert render.substitute_text(text, {"A": "1", "B": "2", "EMPTY": ""}) == want


def test_substitution_is_typed_and_can_be_disabled():
    objs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "${R}"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "annotations": {api.ANN_SUBSTITUTE: "disabled"}},
             "data": {"x": "${R}"}}]
    out = render.substitute(objs, {"R": "3"})
    assert out[0]["spec"]["replicas"] == 3 and out[1]["data"]["x"] == "${R}"


def test_parse_docs():
    text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: List\nitems:\n" \
           "- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n"
    assert [o["kind"] for o in render.parse_docs(text, "f")] == ["ConfigMap", "Secret"]
    with pytest.raises(render.BuildError, match="not a Kubernetes object"):
        render.parse_docs("a: b\n", "f.yaml")
    with pytest.raises(render.BuildError, match="invalid YAML"):
        render.parse_docs("a: [\n", "f.yaml")


def test_safe_join_refuses_leaving_the_source(tmp_path: Path):
    assert render.safe_join(tmp_path, "./a/b") == (tmp_path / "a/b").resolve()
    with pytest.raises(render.BuildError):
        render.safe_join(tmp_path, "../etc")


SIG_BODY = b'{"ref":"refs/heads/main"}'


@pytest.mark.parametrize("kind,headers,ok", [
    ("github", {"X-Hub-Signature-256": "sha256=" + hmac.new(b"tok", SIG_BODY, hashlib.sha256).hexdigest()}, True),
    ("github", {"X-Hub-Signature-256": "sha256=" + hmac.new(b"bad", SIG_BODY, hashlib.sha256).hexdigest()}, False),
    ("github", {}, False),
    ("github", {"X-Hub-Signature-256": "sha1=abc"}, False),
    ("gitlab", {"X-Gitlab-Token": "tok"}, True),
    ("gitlab", {"X-Gitlab-Token": "nope"}, False),
    ("gitlab", {}, False),
    ("generic", {"X-Signature": "sha256=" + hmac.new(b"tok", SIG_BODY, hashlib.sha256).hexdigest()}, True),
    ("generic", {"X-Signature": "sha256=00"}, False),
], ids=["github ok", "github wrong key", "github missing", "github sha1", "gitlab ok", "gitlab wrong", "gitlab missing",
        "generic ok", "generic wrong"])
def test_webhook_verification(kind, headers, ok):
    assert verify(kind, b"tok", headers, SIG_BODY) is ok


@pytest.mark.parametrize("url,path", [
    ("https://github.com/owner/repo.git", "owner/repo"), ("git@github.com:owner/repo.git", "owner/repo"),
    ("ssh://git@host:22/owner/repo", "owner/repo"), ("git://127.0.0.1:9418/repo.git", "repo"), ("/srv/git/repo.git", "srv/git/repo")])
def test_repo_path(url, path):
    assert repo_path(url) == path


def test_repo_and_ref_matching():
    assert same_repo("ssh://git@h/owner/repo.git", ["owner/repo"])
    assert same_repo("git://127.0.0.1:1/x/owner/repo.git", ["https://github.com/owner/repo"])
    assert not same_repo("ssh://git@h/owner/other.git", ["owner/repo"])
    assert ref_matches({"branch": "main"}, "refs/heads/main") and not ref_matches({"branch": "dev"}, "refs/heads/main")
    assert ref_matches({}, "refs/heads/anything") and ref_matches({"branch": "x"}, None)
    assert ref_matches({"semver": ">=1"}, "refs/tags/v1.2.0") and not ref_matches({"semver": ">=1"}, "refs/heads/main")
    assert ref_matches({"name": "refs/tags/v1"}, "refs/tags/v1") and not ref_matches({"tag": "v1"}, "refs/heads/main")


REFS = {"refs/heads/main": "a" * 40, "refs/tags/v1.0.0": "b" * 40, "refs/tags/v1.2.0": "c" * 40,
        "refs/tags/v2.0.0": "d" * 40, "refs/tags/latest": "e" * 40, "refs/tags/v1.3.0-rc.1": "f" * 40}


@pytest.mark.parametrize("expr,tag", [(">=1.0.0 <2.0.0", "v1.2.0"), ("^1.0", "v1.2.0"), ("~1.0.0", "v1.0.0"),
                                      ("*", "v2.0.0"), (">=1.0.0, <2.0.0", "v1.2.0")])
def test_semver(expr, tag):
    assert GitClient._semver(REFS, expr).name == f"refs/tags/{tag}"


def test_semver_errors_and_revisions():
    with pytest.raises(GitError, match="no tag matches"):
        GitClient._semver(REFS, ">=3")
    assert parse_version("latest") is None and str(parse_version("v1.2")) == "1.2.0"
    assert Resolved("refs/heads/main", "a" * 40).revision == "main@sha1:" + "a" * 40
    assert Resolved("", "a" * 40).revision == "sha1:" + "a" * 40


def _raw_tar(path: Path, files: dict[str, bytes], mtime: int) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tf.addfile(info, io.BytesIO(data))


def test_artifacts_are_reproducible_and_filtered(tmp_path: Path):
    files = {"deploy/a.yaml": b"a: 1\n", "docs/readme.md": b"# x\n", ".github/ci.yml": b"x\n", "b.yaml": b"b\n"}
    _raw_tar(tmp_path / "1.tar", files, 1)
    _raw_tar(tmp_path / "2.tar", dict(reversed(list(files.items()))), 999)
    d1 = artifact.pack(tmp_path / "1.tar", tmp_path / "1.tgz", ignore="docs/\n")
    d2 = artifact.pack(tmp_path / "2.tar", tmp_path / "2.tgz", ignore="docs/\n")
    assert d1 == d2 and d1[0].startswith("sha256:")
    root = artifact.unpack(tmp_path / "1.tgz", d1[0], tmp_path / "work")
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".complete") == \
        ["b.yaml", "deploy/a.yaml"]
    d3 = artifact.pack(tmp_path / "1.tar", tmp_path / "3.tgz", include=["deploy/"])
    assert d3[0] != d1[0]
    with pytest.raises(ValueError, match="does not match"):
        artifact.unpack(tmp_path / "3.tgz", d1[0], tmp_path / "work2")


@pytest.mark.parametrize("file,name", [("app.yaml", "app"), ("My_App.yaml", None), ("app.yml", None), ("a.b.yaml", "a.b")])
def test_manifest_object_names(file, name):
    got = object_name(Path(file))
    if name is not None:
        assert got == name
    else:
        assert got != Path(file).stem and got.replace("-", "").replace(".", "").isalnum() and got.islower()


def test_impersonation_headers():
    assert impersonation_headers("team", "deployer") == {
        "Impersonate-User": "system:serviceaccount:team:deployer", "Impersonate-Group": "system:serviceaccounts"}
