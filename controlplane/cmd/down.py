"""``controlplane down --data-dir DIR``: stop an instance and remove everything it made on the
host, then check that nothing is left (exit 1 and a list when something is).

Steps: stop the ``up`` that holds ``DIR/up.lock`` (SIGTERM, then SIGKILL after ``--timeout``),
stop what ``DIR/run/*.pid`` still records (``procutil.PidFiles``), then run every cleanup
registered in ``controlplane.hostcleanup`` by the modules that create host objects, in order:
processes, containers (runc + conmon), the pod network (namespaces, links, routes, nftables
tables), mounts under DIR, the instance's
cgroup tree, runtime files; finally every cleanup's check. Prints one JSON report
(``removed``, ``errors``, ``leftovers``). The data (etcd, images, kubeconfig) stays: the next
``up`` on DIR has every object back and recreates the pods' containers.

Host-level names come from ``DIR/instance.json`` (written by ``up``), so ``down`` only ever
touches this instance's objects.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path

from controlplane import hostcleanup
from controlplane.cmd import bootstrap
from controlplane.cmd.up import instance
from controlplane.log import get_logger
from controlplane.procutil import PidFiles
from controlplane.network import node as _network  # noqa: F401 - registers the network's cleanup
from controlplane.runtime import cgroups, runc  # noqa: F401 - they register their cleanups
from controlplane.supervisor.supervisor import run_dir

log = get_logger(__name__)

COMPONENT = bootstrap.Component("down", metrics_port=False, uvloop=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("down", help="stop an instance and remove its containers, mounts, namespaces and cgroups")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds `up` gets to stop before SIGKILL")
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


def _up_running(data_dir: Path) -> bool:
    """Whether an ``up`` holds ``DIR/up.lock``."""
    path = data_dir / "up.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


async def stop_up(data_dir: Path, timeout: float) -> int | None:
    """SIGTERM the ``up`` holding the lock and wait for it to let go (SIGKILL after ``timeout``)."""
    if not _up_running(data_dir):
        return None
    try:
        pid = int((data_dir / "up.pid").read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid is None:
        return None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _up_running(data_dir):
                return pid
            await asyncio.sleep(0.1)
    return pid




async def _remove_processes(inst: hostcleanup.Instance) -> None:
    PidFiles(run_dir(inst.data_dir)).reclaim()
    for pid in hostcleanup.processes_mentioning(inst.data_dir, hostcleanup.own_pids()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while hostcleanup.processes_mentioning(inst.data_dir, hostcleanup.own_pids()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


hostcleanup.register(
    "processes", _remove_processes,
    lambda inst: [f"process {p}: {c}" for p, c in
                  hostcleanup.processes_mentioning(inst.data_dir, hostcleanup.own_pids()).items()],
    order=10)


async def _main(ctx: bootstrap.Context) -> int:
    data_dir = ctx.args.data_dir.resolve()
    if not data_dir.is_dir():
        sys.stderr.write(f"no instance at {data_dir}\n")
        return 1
    stopped = await stop_up(data_dir, ctx.args.timeout)
    inst = instance(data_dir)
    rep = await hostcleanup.run_all(inst)
    out = {"dataDir": str(data_dir), "hostID": inst.host_id, "stoppedUp": stopped,
           "checked": [c.name for c in hostcleanup.cleanups()], "removed": rep.removed, "errors": rep.errors,
           "leftovers": {k: v for k, v in rep.leftovers.items() if v}}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0 if rep.clean and not rep.errors else 1
