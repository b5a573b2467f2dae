"""Component log rotation (``supervisor/logrotate.py``): copytruncate under a writer that keeps
its ``O_APPEND`` descriptor, numbered copies shifted and capped, self-rotating files left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from controlplane.supervisor import logrotate


@pytest.mark.parametrize("size,max_bytes,rotated", [
    (99, 100, False), (100, 100, True), (5000, 100, True), (0, 100, False),
], ids=["below", "at the limit", "above", "empty"])
def test_rotates_at_the_limit(tmp_path, size, max_bytes, rotated):
    p = tmp_path / "c.log"
    p.write_bytes(b"x" * size)
    assert logrotate.rotate_if_needed(p, max_bytes, 5) is rotated
    assert p.stat().st_size == (0 if rotated else size)
    assert logrotate.rotated(p, 1).exists() is rotated


@pytest.mark.parametrize("max_files,kept", [(1, [1]), (2, [1]), (3, [1, 2]), (5, [1, 2, 3, 4])])
def test_copies_shift_and_are_capped(tmp_path, max_files, kept):
    p = tmp_path / "c.log"
    for gen in range(1, 7):
        p.write_text(f"gen{gen}\n")
        assert logrotate.rotate_if_needed(p, 1, max_files)
    present = sorted(int(f.name.rsplit(".", 1)[1]) for f in tmp_path.glob("c.log.*"))
    assert present == kept
    # the newest copy is .1, older ones count up
    assert [logrotate.rotated(p, n).read_text() for n in kept] == [f"gen{6 - i}\n" for i in range(len(kept))]


def test_a_writer_with_o_append_continues_at_the_start(tmp_path):
    """A real child process holding its file open (as `up`'s components do) keeps writing after
    the truncation, from offset 0 (no hole of zeros), and nothing before the copy is lost."""
    p = tmp_path / "apiserver.log"
    script = ("import sys,time\n"
              "for i in range(40):\n"
              "    sys.stdout.write(f'line {i}\\n'); sys.stdout.flush(); time.sleep(0.01)\n")
    with open(p, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=out)
    while p.stat().st_size < 60:
        pass
    assert logrotate.rotate_if_needed(p, 50, 3)
    proc.wait(timeout=30)
    first, live = logrotate.rotated(p, 1).read_text(), p.read_text()
    assert not live.startswith("\0") and "\0" not in live
    lines = first.splitlines() + live.splitlines()
    assert lines[0] == "line 0" and lines[-1] == "line 39"
    assert len(lines) >= 39  # at most the line written between copy and truncate is lost


def test_log_files_skips_the_self_rotating_scheduling_log(tmp_path):
    (tmp_path / "logs").mkdir()
    for name in ("apiserver.log", "scheduling.log", "agent.log", "apiserver.log.1"):
        (tmp_path / "logs" / name).write_text("x")
    (tmp_path / "etcd.log").write_text("x")
    assert [p.name for p in logrotate.log_files(tmp_path)] == ["agent.log", "apiserver.log", "etcd.log"]


def test_the_loop_rotates_and_stops(tmp_path):
    (tmp_path / "logs").mkdir()
    p = tmp_path / "logs" / "scheduler.log"
    p.write_bytes(b"y" * 300)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(logrotate.rotate_logs(tmp_path, 100, 2, stop, interval=0.05))
        for _ in range(100):
            if logrotate.rotated(p, 1).exists():
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    assert p.stat().st_size == 0 and logrotate.rotated(p, 1).stat().st_size == 300
    assert os.path.exists(p)
