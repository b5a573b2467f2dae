"""Size-based rotation of the log files ``up``'s children write (``DIR/logs/<component>.log``
and ``DIR/etcd.log``), so a control plane left running for weeks does not fill its disk.

Each child writes its stdout/stderr straight into its file (opened ``O_APPEND`` by
``process.ChildProcess`` and ``EtcdProcess``), so the file cannot be swapped under it; rotation is
logrotate's ``copytruncate``: when a file reaches ``max_bytes``, ``name.log.1`` ..
``name.log.<max_files-2>`` shift up by one (the oldest is removed), the file is copied to
``name.log.1`` and truncated to zero; the child's next append lands at the start. Lines
written between the copy and the truncation (microseconds) are lost, the price of not
interposing a pipe between every component and its file (a pipe would make the components
depend on ``up`` staying alive to write). ``max_files`` counts the live file, as the kubelet's
``--container-log-max-files``. ``scheduling.log`` is not touched: the scheduler rotates it itself
(``schedulers/framework/decisionlog.py``). Neighbours: ``cmd/up.py`` starts ``rotate_logs``
(``--log-max-size``, ``--log-max-files``), ``process.py`` opens the files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from controlplane.log import get_logger

log = get_logger(__name__)

SELF_ROTATING = {"scheduling.log"}


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate_if_needed(path: Path, max_bytes: int, max_files: int) -> bool:
    """Rotate ``path`` when it holds ``max_bytes`` or more (blocking: run it in a thread)."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    keep = max(1, max_files - 1)  # rotated copies kept next to the live file
    for n in range(keep, 0, -1):
        src = rotated(path, n)
        if not src.exists():
            continue
        if n >= keep:
            src.unlink(missing_ok=True)
        else:
            os.replace(src, rotated(path, n + 1))
    shutil.copyfile(path, rotated(path, 1))
    os.truncate(path, 0)
    return True


def log_files(data_dir: Path) -> list[Path]:
    """The files ``up``'s children write: ``DIR/logs/*.log`` (but the self-rotating ones) and etcd's."""
    out = [p for p in sorted((data_dir / "logs").glob("*.log")) if p.name not in SELF_ROTATING]
    etcd = data_dir / "etcd.log"
    if etcd.exists():
        out.append(etcd)
    return out


async def rotate_logs(data_dir: Path, max_bytes: int, max_files: int, stop: asyncio.Event,
                      interval: float = 30.0) -> None:
    """Check every ``interval`` seconds until ``stop``; never raises (a failure is logged)."""
    if max_bytes <= 0:
        return
    while not stop.is_set():
        for path in log_files(data_dir):
            try:
                if await asyncio.to_thread(rotate_if_needed, path, max_bytes, max_files):
                    log.info("log rotated", file=str(path), max_bytes=max_bytes, max_files=max_files)
            except OSError as e:
                log.warning("log rotation failed", file=str(path), error=str(e))
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass
