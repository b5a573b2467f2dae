"""CRI log format: line formatting/parsing, RFC3339 times, rotation, tail/since/timestamps."""

from __future__ import annotations

import asyncio
import os

import pytest

from controlplane.runtime import logs


@pytest.mark.parametrize("text,ts", [
    ("2024-01-02T03:04:05.123456789Z", 1704164645.123456789),
    ("2024-01-02T03:04:05Z", 1704164645.0),
    ("2024-01-02T04:04:05+01:00", 1704164645.0),
    ("2024-01-02T03:04:05.5+00:00", 1704164645.5),
    ("2024-01-02T03:04:05.840922813+00:00", 1704164645.840922813),  # conmon's k8s-file lines
])
def test_parse_time(text, ts):
    assert logs.parse_time(text) == pytest.approx(ts, abs=1e-6)


@pytest.mark.parametrize("stream,text,partial", [("stdout", b"hello", False), ("stderr", b"", False), ("stdout", b"a b c", True)])
def test_line_roundtrip(stream, text, partial):
    line = logs.format_line(stream, text, partial, t=1704164645.25)
    assert line.startswith(b"2024-01-02T03:04:05.250000000Z ")
    t, s, p, body = logs.parse_line(line)
    assert (s, p, body) == (stream, partial, text) and t == pytest.approx(1704164645.25)


def write(path, entries):
    with open(path, "ab") as f:
        for t, text in entries:
            f.write(logs.format_line("stdout", text, False, t=t))


@pytest.mark.parametrize("tail,since,expect", [
    (None, None, b"a\nb\nc\n"),
    (2, None, b"b\nc\n"),
    (0, None, b""),
    (None, 1700000001.5, b"c\n"),
    (1, 1700000000.5, b"c\n"),
])
def test_read_log_filters(tmp_path, tail, since, expect):
    p = tmp_path / "0.log"
    write(p, [(1700000000, b"a"), (1700000001, b"b"), (1700000002, b"c")])
    out, _ = logs.read_log(p, tail=tail, since=since)
    assert out == expect


def test_timestamps_prefix(tmp_path):
    p = tmp_path / "0.log"
    write(p, [(1700000000, b"a")])
    out, _ = logs.read_log(p, timestamps=True)
    assert out == b"2023-11-14T22:13:20.000000000Z a\n"


def test_rotation_keeps_order_and_drops_the_oldest(tmp_path):
    p = tmp_path / "c" / "0.log"
    p.parent.mkdir()
    for i in range(5):  # five generations of two lines each; rotate after each but the last
        write(p, [(1700000000 + 2 * i, b"line-%02d" % (2 * i)), (1700000001 + 2 * i, b"line-%02d" % (2 * i + 1))])
        if i < 4:
            logs.rotate_files(p, max_files=3)
    files = logs.log_files(p)
    assert [f.name for f in files] == ["0.log.2", "0.log.1", "0.log"]
    out, _ = logs.read_log(p)
    assert out.decode().splitlines() == [f"line-{i:02d}" for i in range(4, 10)]


async def test_follow_sees_new_lines(tmp_path):
    p = tmp_path / "0.log"
    write(p, [(1700000000, b"a")])
    _, off = logs.read_log(p)
    done = asyncio.Event()

    async def later():
        await asyncio.sleep(0.1)
        write(p, [(1700000001, b"b")])
        await asyncio.sleep(0.3)
        done.set()

    t = asyncio.create_task(later())
    got = b"".join([chunk async for chunk in logs.follow_log(p, off, False, done.is_set, poll=0.05)])
    await t
    assert got == b"b\n"
