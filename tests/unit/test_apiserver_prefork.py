"""``workers.prefork`` / ``ForkedProcess``: preforked apiserver workers leave with their status,
keep only their own link (a worker sees EOF when the supervisor's end closes, whatever its
siblings hold), and their exit (status or signal) is seen as a subprocess's."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from controlplane.apiserver.server.workers import ForkedProcess, prefork


def _child(index: int, count: int, fd: int) -> int:
    link = socket.socket(fileno=fd)
    link.sendall(f"{index}/{count}\n".encode())
    link.recv(1)  # waits for the supervisor's end to close (EOF), as a worker does
    return 3 + 4 * index


@pytest.mark.parametrize("kill", [False, True])
def test_prefork_children_exit_with_their_status_or_signal(kill: bool) -> None:
    workers = prefork(2, _child)
    assert [w.index for w in workers] == [0, 1]
    assert [w.link.recv(16) for w in workers] == [b"0/2\n", b"1/2\n"]

    async def reap() -> list[int]:
        procs = [ForkedProcess(w.pid) for w in workers]
        if kill:
            procs[0].kill()
        else:
            workers[0].link.close()  # worker 1 (still running) must not hold a copy of this end
        first = await asyncio.wait_for(procs[0].wait(), 10)
        assert procs[0].returncode == first and procs[1].returncode is None
        workers[1].link.close()
        return await asyncio.wait_for(asyncio.gather(procs[0].wait(), procs[1].wait(), procs[1].wait()), 10)

    try:
        codes = asyncio.run(reap())
    finally:
        for w in workers:
            w.link.close()
            try:
                os.kill(w.pid, signal.SIGKILL)
                os.waitpid(w.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    assert codes == [-signal.SIGKILL if kill else 3, 7, 7]
