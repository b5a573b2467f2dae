"""``controlplane etcd-snapshot save|ls|prune|restore``: snapshots of the embedded etcd, as k3s's
``k3s etcd-snapshot`` and ``--cluster-reset --cluster-reset-restore-path``.

- ``save --data-dir DIR [--name on-demand]``: etcd's snapshot API (``Maintenance.Snapshot``,
  streamed by ``storage.etcd_admin.save_snapshot``) from this server's member into
  ``DIR/server/db/snapshots/<name>-<host id>-<unix time>`` (k3s's layout and naming).
- ``ls``: the snapshots there (name, size, time); ``prune --snapshot-retention N``: keep the N
  newest scheduled ones (``etcd-snapshot-*``), as k3s prunes.
- ``restore --data-dir DIR PATH`` (``up`` must be stopped): ``etcdctl snapshot restore``
  (checks the snapshot's integrity hash) into a new single-member cluster of this server's
  member name and peer URL; the old ``DIR/etcd`` is kept as ``DIR/etcd-old-<unix time>``.
  ``up --cluster-reset [--cluster-reset-restore-path PATH]`` does the same from ``up`` (without
  a path: etcd's ``--force-new-cluster`` on the current data) and exits; start ``up`` again
  without the flag. Other servers of the old cluster must be wiped and joined again (k3s: the
  same).

Scheduled snapshots (``up``): ``--etcd-snapshot-schedule-cron`` (default ``0 */12 * * *``),
``--etcd-snapshot-retention`` (5), ``--etcd-snapshot-dir``, ``--etcd-disable-snapshots``:
``scheduled`` saves ``etcd-snapshot-<host id>-<unix time>`` at each cron time and prunes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from croniter import croniter

from controlplane.cmd import bootstrap
from controlplane.etcd_process import EtcdProcess, EtcdTLS
from controlplane.log import get_logger
from controlplane.storage import etcd_admin

log = get_logger(__name__)
COMPONENT = bootstrap.Component("etcd-snapshot", metrics_port=False, uvloop=False)
SCHEDULED_PREFIX = "etcd-snapshot"


def add_schedule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--etcd-snapshot-schedule-cron", default="0 */12 * * *", help="scheduled snapshots (cron)")
    p.add_argument("--etcd-snapshot-retention", type=int, default=5, help="scheduled snapshots kept")
    p.add_argument("--etcd-snapshot-dir", type=Path, default=None,
                   help="where snapshots go (default DATA_DIR/server/db/snapshots)")
    p.add_argument("--etcd-disable-snapshots", action="store_true", help="no scheduled snapshots")


def snapshot_dir(data_dir: Path, given: Path | None = None) -> Path:
    return Path(given) if given else Path(data_dir) / "server" / "db" / "snapshots"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("etcd-snapshot", help="save, list, prune or restore snapshots of the embedded etcd")
    p.add_argument("action", choices=["save", "ls", "prune", "restore"])
    p.add_argument("path", nargs="?", help="restore: the snapshot file")
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--dir", type=Path, default=None, help="snapshot directory (default DATA_DIR/server/db/snapshots)")
    p.add_argument("--name", default="on-demand", help="save: the snapshot's name prefix")
    p.add_argument("--snapshot-retention", type=int, default=5, help="prune: scheduled snapshots kept")
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


def member_of(data_dir: Path) -> EtcdProcess:
    """This data dir's etcd member as ``up`` runs it (``server/etcd.json``, the PKI's etcd TLS)."""
    data_dir = Path(data_dir).resolve()
    settings_path = data_dir / "server" / "etcd.json"
    if not settings_path.exists():
        raise SystemExit(f"no embedded etcd member in {data_dir} (server/etcd.json missing)")
    d = json.loads(settings_path.read_text())
    pki = data_dir / "pki"
    tls = EtcdTLS.from_pki(pki) if (pki / "etcd" / "ca.crt").exists() else None
    return EtcdProcess(data_dir=data_dir / "etcd", client_port=int(d["clientPort"]), peer_port=int(d["peerPort"]),
                       name=d["name"], tls=tls, host=d.get("host", "127.0.0.1"))


def _tls(proc: EtcdProcess) -> etcd_admin.TLS:
    t = proc.tls
    return (str(t.ca), str(t.client_cert), str(t.client_key)) if t is not None else None


async def save(proc: EtcdProcess, directory: Path, name: str, host_id: str) -> Path:
    path = Path(directory) / f"{name}-{host_id}-{int(time.time())}"
    size = await etcd_admin.save_snapshot(proc.local_endpoint, _tls(proc), path)
    log.info("etcd snapshot saved", path=str(path), bytes=size)
    return path


def listing(directory: Path) -> list[dict]:
    d = Path(directory)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.iterdir(), key=lambda p: p.stat().st_mtime):
        if p.is_file() and not p.name.endswith(".part"):
            st = p.stat()
            out.append({"name": p.name, "path": str(p), "size": st.st_size,
                        "created": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat()})
    return out


def prune(directory: Path, retention: int, prefix: str = SCHEDULED_PREFIX) -> list[str]:
    """Delete all but the ``retention`` newest snapshots named ``<prefix>-…``."""
    snaps = [s for s in listing(directory) if s["name"].startswith(prefix + "-")]
    gone = [s["path"] for s in snaps[:max(0, len(snaps) - retention)]]
    for path in gone:
        Path(path).unlink(missing_ok=True)
    return gone


def restore(proc: EtcdProcess, snapshot: Path) -> Path:
    """``etcdctl snapshot restore`` into a single-member cluster of ``proc``'s name and peer
    URL, swapped in place of ``proc.data_dir`` (the old one kept beside it); the kept path."""
    snapshot = Path(snapshot).resolve()
    if not snapshot.is_file():
        raise SystemExit(f"no snapshot at {snapshot}")
    new = proc.data_dir.with_name(proc.data_dir.name + ".restoring")
    shutil.rmtree(new, ignore_errors=True)
    out = subprocess.run(["etcdctl", "snapshot", "restore", str(snapshot), "--name", proc.name,
                          "--initial-cluster", f"{proc.name}={proc.peer_url}",
                          "--initial-advertise-peer-urls", proc.peer_url, "--data-dir", str(new)],
                         capture_output=True, text=True, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        shutil.rmtree(new, ignore_errors=True)
        raise RuntimeError(f"etcdctl snapshot restore failed: {out.stderr.strip() or out.stdout.strip()}")
    old = proc.data_dir.with_name(f"{proc.data_dir.name}-old-{int(time.time())}")
    if proc.data_dir.exists():
        proc.data_dir.rename(old)
    new.rename(proc.data_dir)
    _forget_peers(proc)
    log.info("etcd restored from snapshot", snapshot=str(snapshot), data_dir=str(proc.data_dir), old=str(old))
    return old


async def force_new_cluster(proc: EtcdProcess) -> None:
    """k3s's ``--cluster-reset`` without a snapshot: start the member once with etcd's
    ``--force-new-cluster`` (membership reset to itself, data kept), wait for health, stop."""
    proc.extra_args = ["--force-new-cluster"]
    try:
        await proc.start(60.0)
    finally:
        proc.extra_args = []
        await asyncio.to_thread(proc.stop)
    _forget_peers(proc)
    log.info("etcd membership reset to this member", name=proc.name)


def _forget_peers(proc: EtcdProcess) -> None:
    """A single-member cluster now: the other members ``up`` recorded are gone."""
    (proc.data_dir.parent / "server" / "etcd-peers.json").unlink(missing_ok=True)


async def scheduled(proc: EtcdProcess, directory: Path, host_id: str, cron: str, retention: int,
                    stop: asyncio.Event) -> None:
    """Save ``etcd-snapshot-<host id>-<time>`` at each time of ``cron`` and prune to ``retention``."""
    it = croniter(cron, _dt.datetime.now(_dt.timezone.utc))
    while not stop.is_set():
        due = it.get_next(_dt.datetime)
        wait = (due - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, wait))
            return
        except asyncio.TimeoutError:
            pass
        try:
            await save(proc, directory, SCHEDULED_PREFIX, host_id)
            gone = prune(directory, retention)
            if gone:
                log.info("etcd snapshots pruned", removed=gone)
        except Exception as e:  # noqa: BLE001 - a failed snapshot (etcd restarting) waits for the next time
            log.warning("scheduled etcd snapshot failed", error=str(e))


def _up_running(data_dir: Path) -> bool:
    """Whether an ``up`` holds ``DIR/up.lock`` (the lock is the only truth of a running up)."""
    path = Path(data_dir) / "up.lock"
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


def _host_id(data_dir: Path) -> str:
    try:
        return json.loads((Path(data_dir) / "instance.json").read_text())["hostID"]
    except (OSError, ValueError, KeyError):
        return "controlplane"


async def _main(ctx: bootstrap.Context) -> int:
    a = ctx.args
    data_dir = a.data_dir.resolve()
    directory = snapshot_dir(data_dir, a.dir)
    if a.action == "ls":
        sys.stdout.write(json.dumps(listing(directory), indent=1) + "\n")
        return 0
    if a.action == "prune":
        sys.stdout.write(json.dumps({"removed": prune(directory, a.snapshot_retention)}) + "\n")
        return 0
    proc = member_of(data_dir)
    if a.action == "save":
        path = await save(proc, directory, a.name, _host_id(data_dir))
        sys.stdout.write(json.dumps({"path": str(path), "size": path.stat().st_size}) + "\n")
        return 0
    if not a.path:
        raise SystemExit("restore needs the snapshot's path")
    if _up_running(data_dir):
        sys.stderr.write(f"controlplane up runs on {data_dir}: stop it first\n")
        return 1
    old = await asyncio.to_thread(restore, proc, Path(a.path))
    sys.stdout.write(json.dumps({"restored": str(a.path), "dataDir": str(proc.data_dir), "old": str(old)}) + "\n")
    return 0
