"""Termination messages (``agent/termination.py``) and fsGroup volume ownership
(``agent/volume_ownership.py``) on real files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from controlplane.agent import termination
from controlplane.agent.volume_ownership import requires_change, set_volume_ownership
from controlplane.runtime.logs import format_line


def _log(path: Path, lines: list[str]) -> Path:
    path.write_bytes(b"".join(format_line("stdout" if i % 2 else "stderr", s.encode(), False, 1.0 + i)
                              for i, s in enumerate(lines)))
    return path


@pytest.mark.parametrize("content,policy,code,expect", [
    ("bye", "File", 1, "bye"),
    ("", "File", 1, ""),
    ("", "FallbackToLogsOnError", 1, "LOG"),
    ("", "FallbackToLogsOnError", 0, ""),
    ("own words", "FallbackToLogsOnError", 2, "own words"),
    ("x" * 5000 + "END", "File", 0, "x" * 4093 + "END"),
    (None, "FallbackToLogsOnError", 3, "LOG"),
], ids=["file", "empty-file", "fallback", "fallback-exit-0", "file-wins", "last-4096", "no-file"])
def test_message(content, policy, code, expect, tmp_path):
    f = None
    if content is not None:
        f = tmp_path / "msg"
        f.write_text(content)
    log = _log(tmp_path / "0.log", [f"line {i}" for i in range(100)])
    got = termination.message(f, policy, code, log)
    if expect == "LOG":  # the last 80 lines
        assert got.splitlines() == [f"line {i}" for i in range(20, 100)]
    else:
        assert got == expect


def test_fallback_keeps_the_last_2048_bytes(tmp_path):
    log = _log(tmp_path / "0.log", ["y" * 100 + f"{i:03d}" for i in range(40)])
    got = termination.message(None, "FallbackToLogsOnError", 1, log)
    assert len(got.encode()) == 2048 and got.endswith("y039\n")


def test_new_file_is_world_writable(tmp_path):
    old = os.umask(0o077)
    try:
        f = termination.new_file(tmp_path / "c")
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o666 and f.read_bytes() == b""


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another group needs root")
@pytest.mark.parametrize("readonly,file_mode,dir_bits", [(False, 0o664, 0o2775), (True, 0o644, 0o2755)],
                         ids=["rw", "ro"])
def test_set_volume_ownership(readonly, file_mode, dir_bits, tmp_path):
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "sub", 0o755)
    (root / "sub" / "f").write_text("x")
    os.chmod(root / "sub" / "f", 0o644)
    os.symlink("sub/f", root / "link")
    assert set_volume_ownership(root, 2345, None, readonly)
    for p in (root, root / "sub", root / "sub" / "f"):
        assert p.stat().st_gid == 2345
    assert os.lstat(root / "link").st_gid == 2345
    assert stat.S_IMODE((root / "sub" / "f").stat().st_mode) == file_mode
    assert stat.S_IMODE((root / "sub").stat().st_mode) == dir_bits
    assert not requires_change(root, 2345, readonly)
    # OnRootMismatch: a matching root skips the walk (a new file keeps its mode) ...
    (root / "new").write_text("y")
    os.chmod(root / "new", 0o600)
    assert not set_volume_ownership(root, 2345, "OnRootMismatch", readonly)
    assert stat.S_IMODE((root / "new").stat().st_mode) == 0o600
    # ... a root of another group walks; Always walks whatever the root
    assert set_volume_ownership(root, 2345, "Always", readonly)
    assert stat.S_IMODE((root / "new").stat().st_mode) == 0o600 | (0o440 if readonly else 0o660)
    assert set_volume_ownership(root, 999, "OnRootMismatch", readonly) and (root / "new").stat().st_gid == 999
    assert not set_volume_ownership(root, None, None, readonly)
