"""Git through the real ``git`` CLI (apt's git): resolve a reference with ``ls-remote`` and
fetch exactly one commit shallowly (``fetch --depth 1``) into a throw-away repository, then
``git archive`` its tree.

Why the CLI and not a library: it speaks every transport the issue lists (``git://``,
``http(s)://`` with basic auth or a token, ``ssh://`` with a key and known_hosts, local paths)
with the server's own protocol v2, and is what Git hosts test against. Credentials never appear
on a command line: HTTP headers go through ``GIT_CONFIG_*`` environment variables, SSH keys and
known_hosts through files (mode 0600) in a private temp dir removed afterwards. Every command
runs with a timeout and no terminal prompt. Neighbours: ``source.py`` (the GitRepository
reconcile), ``artifact.py`` (packing the archive).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import semantic_version

from controlplane.log import get_logger

log = get_logger(__name__)

GIT = shutil.which("git") or "/usr/bin/git"


@dataclass
class Credentials:
    """What a GitRepository's ``secretRef`` Secret holds (Flux's keys)."""

    username: str = ""
    password: str = ""
    bearer_token: str = ""
    identity: bytes = b""  # SSH private key
    known_hosts: str = ""

    @classmethod
    def from_secret(cls, data: dict[str, str]) -> "Credentials":
        def dec(k: str) -> bytes:
            v = data.get(k)
            return base64.b64decode(v) if v else b""
        return cls(username=dec("username").decode(), password=dec("password").decode(),
                   bearer_token=dec("bearerToken").decode(), identity=dec("identity"),
                   known_hosts=dec("known_hosts").decode())


class GitError(Exception):
    """A failed git operation; ``reason`` is a condition reason (``AuthenticationFailed`` or
    ``GitOperationFailed``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


_AUTH_PATTERNS = re.compile(
    r"Authentication failed|could not read Username|could not read Password|HTTP 401|HTTP 403|"
    r"returned error: 40[13]|Permission denied \(publickey|Host key verification failed|"
    r"No RSA host key is known|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I)


@dataclass
class Resolved:
    """A reference resolved on the remote: ``name`` (``refs/heads/main``, ``refs/tags/v1`` or
    empty for a bare commit) and the commit ``sha``."""

    name: str
    sha: str

    @property
    def revision(self) -> str:
        """Flux's revision format: ``main@sha1:<sha>``, ``v1.0.0@sha1:<sha>`` or ``sha1:<sha>``."""
        short = self.name.removeprefix("refs/heads/").removeprefix("refs/tags/")
        return f"{short}@sha1:{self.sha}" if short else f"sha1:{self.sha}"


class GitClient:
    """One URL with its credentials; ``async with GitClient(...) as g`` (the temp dir holding
    key files lives as long as the context)."""

    def __init__(self, url: str, creds: Credentials | None = None, timeout: float = 60.0) -> None:
        self.url = url
        self.creds = creds or Credentials()
        self.timeout = timeout
        self._tmp: Path | None = None
        self._env: dict[str, str] = {}

    async def __aenter__(self) -> "GitClient":
        self._tmp = Path(tempfile.mkdtemp(prefix="gitops-git-"))
        self._env = self._make_env(self._tmp)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _make_env(self, tmp: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.pop("SSH_ASKPASS", None)
        env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp), LC_ALL="C")
        config: list[tuple[str, str]] = [("protocol.version", "2"), ("init.defaultBranch", "main")]
        c = self.creds
        if c.bearer_token:
            config.append(("http.extraHeader", f"Authorization: Bearer {c.bearer_token}"))
        elif c.username or c.password:
            raw = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
            config.append(("http.extraHeader", f"Authorization: Basic {raw}"))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (k, v) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = k
            env[f"GIT_CONFIG_VALUE_{i}"] = v
        ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               "-o", "StrictHostKeyChecking=yes"]
        kh = tmp / "known_hosts"
        kh.write_text(c.known_hosts)
        ssh += ["-o", f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if c.identity:
            key = tmp / "identity"
            key.write_bytes(c.identity if c.identity.endswith(b"\n") else c.identity + b"\n")
            os.chmod(key, 0o600)
            ssh += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = " ".join(ssh)
        return env

    async def _git(self, *args: str, cwd: Path | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            GIT, *args, cwd=str(cwd) if cwd else None, env=self._env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError("GitOperationFailed", f"git {args[0]} timed out after {self.timeout:g}s") from None
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            msg = self._redact(err.decode(errors="replace").strip() or f"git {args[0]} exited {proc.returncode}")
            reason = "AuthenticationFailed" if _AUTH_PATTERNS.search(msg) else "GitOperationFailed"
            if "could not read Username" in msg or "could not read Password" in msg:
                msg = f"authentication failed: the server rejected the credentials or asked for some (HTTP 401): {msg}"
            raise GitError(reason, msg)
        return out.decode(errors="replace")

    def _redact(self, msg: str) -> str:
        for secret in (self.creds.password, self.creds.bearer_token):
            if secret:
                msg = msg.replace(secret, "***")
        return "\n".join(line for line in msg.splitlines() if line.strip())[-1000:]

    async def ls_remote(self) -> tuple[dict[str, str], str]:
        """(ref name → commit sha with tags peeled, the branch HEAD points to or "")."""
        out = await self._git("ls-remote", "--symref", self.url)
        refs: dict[str, str] = {}
        head = ""
        for line in out.splitlines():
            if line.startswith("ref: "):
                target, name = line[5:].split("\t", 1)
                if name == "HEAD":
                    head = target
                continue
            sha, _, name = line.partition("\t")
            if name.endswith("^{}"):
                refs[name[:-3]] = sha  # the peeled commit of an annotated tag wins
            elif name not in refs:
                refs[name] = sha
        return refs, head

    async def resolve(self, ref: dict) -> Resolved:
        """The commit a GitRepository ``ref`` names (Flux's precedence: commit, name, semver,
        tag, branch; none: the remote's HEAD)."""
        commit = ref.get("commit") or ""
        if commit and not ref.get("branch") and len(commit) == 40:
            return Resolved("", commit)
        refs, head = await self.ls_remote()
        if commit:
            branch = f"refs/heads/{ref['branch']}" if ref.get("branch") else head
            if len(commit) == 40:
                return Resolved(branch if branch in refs else "", commit)
            for name, sha in refs.items():
                if sha.startswith(commit):
                    return Resolved(name, sha)
            raise GitError("GitOperationFailed", f"commit {commit!r} is not the tip of any reference; use its full sha")
        if ref.get("name"):
            name = ref["name"]
            if name not in refs:
                raise GitError("GitOperationFailed", f"reference {name!r} not found on the remote")
            return Resolved(name, refs[name])
        if ref.get("semver"):
            return self._semver(refs, ref["semver"])
        if ref.get("tag"):
            name = f"refs/tags/{ref['tag']}"
            if name not in refs:
                raise GitError("GitOperationFailed", f"tag {ref['tag']!r} not found on the remote")
            return Resolved(name, refs[name])
        if ref.get("branch"):
            name = f"refs/heads/{ref['branch']}"
            if name not in refs:
                raise GitError("GitOperationFailed", f"branch {ref['branch']!r} not found on the remote")
            return Resolved(name, refs[name])
        if head and head in refs:
            return Resolved(head, refs[head])
        if "HEAD" in refs:
            return Resolved("", refs["HEAD"])
        raise GitError("GitOperationFailed", "the remote has no HEAD; set spec.ref")

    @staticmethod
    def _semver(refs: dict[str, str], expr: str) -> Resolved:
        spec = semver_spec(expr)
        best: tuple[semantic_version.Version, str] | None = None
        for name in refs:
            if not name.startswith("refs/tags/"):
                continue
            v = parse_version(name.removeprefix("refs/tags/"))
            if v is not None and v in spec and (best is None or v > best[0]):
                best = (v, name)
        if best is None:
            raise GitError("GitOperationFailed", f"no tag matches the semver range {expr!r}")
        return Resolved(best[1], refs[best[1]])

    async def archive(self, resolved: Resolved, dest_tar: Path, *, branch_hint: str = "") -> None:
        """Fetch ``resolved.sha`` with depth 1 into a fresh repository and write its tree as
        a tar file to ``dest_tar``. Servers that refuse fetching a bare sha get a full fetch
        of the branch instead."""
        assert self._tmp is not None, "use GitClient as an async context manager"
        repo = self._tmp / "repo"
        if repo.exists():
            shutil.rmtree(repo)
        await self._git("init", "-q", "--bare", str(repo))
        try:
            await self._git("fetch", "-q", "--depth", "1", "--no-tags", self.url, resolved.sha, cwd=repo)
        except GitError as e:
            if e.reason == "AuthenticationFailed" or not (resolved.name or branch_hint):
                raise
            await self._git("fetch", "-q", "--no-tags", self.url, resolved.name or branch_hint, cwd=repo)
        await self._git("archive", "--format=tar", "-o", str(dest_tar), resolved.sha, cwd=repo)


_VERSION_PREFIX = re.compile(r"^v(?=\d)")


def parse_version(tag: str) -> semantic_version.Version | None:
    """A tag as a semantic version (a leading ``v`` allowed; ``1.2`` read as ``1.2.0``)."""
    try:
        return semantic_version.Version.coerce(_VERSION_PREFIX.sub("", tag)) if re.match(r"^v?\d", tag) else None
    except ValueError:
        return None


def semver_spec(expr: str) -> semantic_version.NpmSpec:
    """Masterminds/npm-style ranges as Flux accepts them: ``>=1.0.0 <2.0.0``, ``^1.2``,
    ``~1.2.3``, ``1.x``, ``>=1.0, <2.0`` (commas read as spaces)."""
    try:
        return semantic_version.NpmSpec(re.sub(r"\s*,\s*|\s+", " ", expr.strip()))
    except ValueError as e:
        raise GitError("GitOperationFailed", f"invalid semver range {expr!r}: {e}") from e
