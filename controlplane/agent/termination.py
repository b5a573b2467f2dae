"""Termination messages, as the kubelet handles ``terminationMessagePath`` and
``terminationMessagePolicy``: before each start a fresh, world-writable host file
(``<pod dir>/containers/<container>/<random id>``) is bind-mounted at the container's
``terminationMessagePath`` (default ``/dev/termination-log``); after the container exits its
last 4096 bytes become ``state.terminated.message``. With ``FallbackToLogsOnError``, an empty
file and a non-zero exit code take the last 80 lines of the log, at most its last 2048 bytes
(``readLastStringFromContainerLogs``). Neighbours: ``containers.py`` (start and exit),
``controlplane/runtime/logs.py`` (the CRI log reader).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from controlplane.runtime.logs import read_log

MAX_MESSAGE = 4096  # kubecontainer.MaxContainerTerminationMessageLength
MAX_LOG_LINES = 80  # MaxContainerTerminationMessageLogLines
MAX_LOG_BYTES = 2048  # MaxContainerTerminationMessageLogLength


def new_file(container_dir: Path) -> Path:
    """A new empty message file (mode 0666 whatever the umask, as the kubelet makes it)."""
    container_dir.mkdir(parents=True, exist_ok=True)
    path = container_dir / uuid.uuid4().hex[:16]
    path.touch()
    os.chmod(path, 0o666)
    return path


def _tail(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        return f.read()


def message(file: Path | None, policy: str, exit_code: int | None, log_path: Path | None) -> str:
    """The message for an exited container (``getTerminationMessage`` and the log fallback)."""
    fallback = policy == "FallbackToLogsOnError" and (exit_code or 0) != 0
    data = b""
    if file is not None:
        try:
            data = _tail(file, MAX_MESSAGE)
        except FileNotFoundError:
            data = b""
        except OSError as e:
            return f"Error on reading termination log {file}: {e}"
    if data or not fallback:
        return data.decode(errors="replace")
    if log_path is None:
        return ""
    try:
        logs, _ = read_log(log_path, tail=MAX_LOG_LINES)
    except OSError as e:
        return f"Error on reading termination message from logs: {e}"
    return logs[-MAX_LOG_BYTES:].decode(errors="replace")
