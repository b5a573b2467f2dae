"""A running container's standard streams, for ``kubectl attach``: a client of the attach
socket and control fifo of the container's ``conmon`` (as CRI-O attaches).

``conmon`` holds the container's stdio: with ``--stdin`` the container's stdin is a pipe it
keeps open (``--leave-stdin-open`` unless the pod says ``stdinOnce``), with ``--terminal`` the
container runs on a terminal whose master conmon holds (runc hands it over through
``--console-socket``). It serves a ``SOCK_SEQPACKET`` socket ``attach`` in the bundle: every
message it sends is one chunk of output, its first byte the pipe (2 stdout, 3 stderr; a
terminal's output is stdout); what a client sends goes to the container's stdin, and a
client closing its sending side closes the container's stdin unless it is to be left open.
``ctl`` (a fifo in the bundle) takes ``1 <height> <width>`` to resize the terminal (and ``2 0
0`` to reopen the log, which ``runc.py`` uses). The socket path goes through
``/proc/self/fd`` of the bundle directory, as CRI-O's ``DialLongSocket`` does: unix socket
paths are limited to 108 bytes, bundle paths are not. Owned by ``runc.py``
(``RuncRuntime.attach``); used by the agent's ``/attach`` endpoint.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import struct
import termios
import time
from pathlib import Path

PIPES = {2: "stdout", 3: "stderr"}
_CHUNK = 8192  # conmon's STDIO_BUF_SIZE: what it reads from one message


class AttachSession:
    """One attach connection to conmon: ``read`` output, ``write`` stdin, ``close_stdin``,
    ``resize``, ``close``."""

    def __init__(self, sock: socket.socket, ctl: Path, tty: bool, stdin: bool) -> None:
        self.sock = sock
        self.ctl = ctl
        self.tty = tty
        self.stdin = stdin

    @classmethod
    async def open(cls, bundle: Path, tty: bool, stdin: bool) -> AttachSession:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        dfd = os.open(bundle, os.O_PATH | os.O_DIRECTORY)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dfd}/attach")
        except OSError:
            sock.close()
            raise
        finally:
            os.close(dfd)
        return cls(sock, bundle / "ctl", tty, stdin)

    async def read(self) -> tuple[str, bytes] | None:
        """The next chunk of output, ``None`` when conmon closed (the container ended)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = await loop.sock_recv(self.sock, _CHUNK + 2)
            except OSError:
                return None
            if not msg:
                return None
            stream = PIPES.get(msg[0])
            if stream is not None and len(msg) > 1:
                return stream, msg[1:]

    async def write(self, data: bytes) -> None:
        if not self.stdin:
            return
        loop = asyncio.get_running_loop()
        for i in range(0, len(data), _CHUNK):
            try:
                await loop.sock_sendall(self.sock, data[i:i + _CHUNK])
            except OSError:  # conmon or the container's stdin is gone
                return

    def close_stdin(self) -> None:
        """The client's stdin ended: conmon closes the container's (unless left open)."""
        if self.stdin:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.stdin = False

    async def resize(self, rows: int, cols: int) -> None:
        if self.tty:
            await asyncio.to_thread(_ctl, self.ctl, f"1 {max(1, rows)} {max(1, cols)}\n")

    def close(self) -> None:
        self.sock.close()


def _ctl(path: Path, message: str, drain_timeout: float = 1.0) -> None:
    """Write one message to conmon's ``ctl`` fifo and wait (briefly) until conmon read it:
    conmon parses one message per read, so two written back to back (kubectl sends a resize
    to size+1 and then the size, to make programs redraw) would lose the second."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # conmon is gone
    try:
        os.write(fd, message.encode())
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            pending = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
            if pending == 0:
                return
            time.sleep(0.002)
    except OSError:
        pass
    finally:
        os.close(fd)
