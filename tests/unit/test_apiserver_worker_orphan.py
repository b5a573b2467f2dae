"""An apiserver worker whose supervisor is gone (its link at EOF) stops, and exits within
``ORPHAN_EXIT_S`` even when its clean stop hangs (CI: a worker of a SIGKILLed ``up`` still ran
15 s later, its shutdown waiting on an etcd that had died with ``up``)."""

import socket
import subprocess
import sys
import time

CHILD = r"""
import asyncio, sys
from controlplane.apiserver.server import workers
workers.ORPHAN_EXIT_S = float(sys.argv[2])

async def main():
    link = workers.WorkerLink(int(sys.argv[1]))
    await link.open()
    stop = asyncio.Event()
    asyncio.ensure_future(link.run(stop))
    print("up", flush=True)
    await stop.wait()
    print("stopping", flush=True)
    if sys.argv[3] == "hang":
        await asyncio.sleep(3600)  # a clean stop that never ends
    return 0

sys.exit(asyncio.run(main()))
"""


def _run(mode: str) -> tuple[int, str, float]:
    parent, child = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(child.fileno()), "0.5", mode],
                            pass_fds=(child.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.close()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        t0 = time.monotonic()
        parent.close()  # the supervisor is gone
        rc = proc.wait(timeout=30)
        return rc, proc.stdout.read() + proc.stderr.read(), time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_hung_stop_is_cut_by_the_exit_timer():
    rc, out, took = _run("hang")
    assert "stopping" in out and "not stopped within 0.5s" in out
    assert rc == 1 and took < 10


def test_a_clean_stop_exits_at_once():
    rc, out, took = _run("clean")
    assert "stopping" in out and "not stopped" not in out
    assert rc == 0 and took < 10
