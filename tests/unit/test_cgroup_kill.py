"""The runtime's last resort against a container that outlives ``runc kill``: every process
of its cgroup SIGKILLed (``cgroups.kill_all``), on a cgroup tree laid out as v1 and v2 under
a temporary root, with a real child process of this test as the container's process."""

from __future__ import annotations

import subprocess
import time

import pytest

from controlplane.runtime import cgroups

CG = "/controlplane/node-x/podu1/c1"


def layout(root, version: int, procs: dict[str, list[int]]) -> None:
    """``procs``: cgroup path (relative to the container's) -> pids listed in it."""
    if version == 2:
        (root / "cgroup.controllers").write_text("cpu memory pids\n")
        base = root / CG.strip("/")
    else:
        (root / "memory").mkdir()
        (root / "memory" / "memory.stat").write_text("")
        base = root / "pids" / CG.strip("/")
    for rel, pids in procs.items():
        d = base / rel if rel else base
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("where", ["", "child"])
def test_kill_all_ends_every_process_of_the_cgroup(tmp_path, version, where):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        layout(tmp_path, version, {"": [], where: [proc.pid]} if where else {"": [proc.pid]})
        assert cgroups.pids(CG, tmp_path) == [proc.pid]
        state, comm = cgroups.proc_state(proc.pid).split(" ", 1)
        assert comm == "(sleep)" and state in "RSD", (state, comm)  # any state a live process shows
        assert cgroups.kill_all(CG, tmp_path) == [proc.pid]
        assert proc.wait(timeout=10) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_nothing_to_kill_and_gone_processes(tmp_path):
    assert cgroups.pids(CG, tmp_path) == [] and cgroups.kill_all(CG, tmp_path) == []
    proc = subprocess.Popen(["true"])
    proc.wait()
    time.sleep(0.01)
    assert cgroups.proc_state(proc.pid) == "gone"
