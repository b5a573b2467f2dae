"""``controlplane.gitops.git`` against real repositories on disk (local paths and file://):
resolving branches, tags, semver ranges and commit pins with ``git ls-remote``, shallow
fetches of one commit, and the errors it reports. No server, no cluster."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import pytest

from controlplane.gitops.git import GitClient, GitError
from tests.fixtures.gitops import git

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    bare, work = tmp_path / "r.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    shas = []
    for i, tag in enumerate(["v1.0.0", "v1.1.0", None]):
        (work / "f.txt").write_text(f"{i}\n")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", str(i), cwd=work)
        if tag:
            git("tag", "-a", tag, "-m", tag, cwd=work)
        shas.append(git("rev-parse", "HEAD", cwd=work))
    git("push", "-q", str(bare), "HEAD:refs/heads/main", "--tags", cwd=work)
    git("push", "-q", str(bare), f"{shas[0]}:refs/heads/old", cwd=work)
    return bare, shas


async def _resolve_and_read(url: str, ref: dict, tmp: Path) -> tuple[str, str]:
    async with GitClient(url, timeout=30) as g:
        r = await g.resolve(ref)
        await g.archive(r, tmp / "out.tar", branch_hint=ref.get("branch", ""))
    with tarfile.open(tmp / "out.tar") as tf:
        return r.revision, tf.extractfile("f.txt").read().decode().strip()


@pytest.mark.parametrize("scheme", ["path", "file"])
@pytest.mark.parametrize("ref,index,name", [
    ({}, 2, "main"), ({"branch": "old"}, 0, "old"), ({"tag": "v1.0.0"}, 0, "v1.0.0"),
    ({"semver": "^1.0.0"}, 1, "v1.1.0"), ({"name": "refs/heads/main"}, 2, "main"),
    ({"commit": "SHA1", "branch": "main"}, 1, "main"), ({"commit": "SHA0"}, 0, "")],
    ids=["head", "branch", "annotated tag", "semver", "name", "commit on a branch", "bare commit"])
def test_resolve_and_fetch(repo, tmp_path, scheme, ref, index, name):
    bare, shas = repo
    ref = {k: (shas[int(v[3:])] if isinstance(v, str) and v.startswith("SHA") else v) for k, v in ref.items()}
    url = str(bare) if scheme == "path" else bare.as_uri()
    revision, content = asyncio.run(_resolve_and_read(url, ref, tmp_path))
    assert content == str(index)
    assert revision == (f"{name}@sha1:{shas[index]}" if name else f"sha1:{shas[index]}")


@pytest.mark.parametrize("ref,message", [
    ({"branch": "nope"}, "branch 'nope' not found"), ({"tag": "v9"}, "tag 'v9' not found"),
    ({"semver": ">=5"}, "no tag matches"), ({"commit": "abcdef1"}, "not the tip of any reference")])
def test_resolve_errors(repo, ref, message):
    bare, _ = repo

    async def go() -> None:
        async with GitClient(str(bare), timeout=30) as g:
            await g.resolve(ref)
    with pytest.raises(GitError, match=message):
        asyncio.run(go())


def test_missing_repository_is_a_git_error(tmp_path):
    async def go() -> None:
        async with GitClient(str(tmp_path / "nothing.git"), timeout=30) as g:
            await g.resolve({})
    with pytest.raises(GitError) as e:
        asyncio.run(go())
    assert e.value.reason == "GitOperationFailed" and "nothing.git" in e.value.message
