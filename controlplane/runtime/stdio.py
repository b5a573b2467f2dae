"""A running container's standard streams as the runtime keeps them, for ``kubectl attach``.

A container started with ``stdin: true`` gets a pipe as its stdin whose write end the runtime
keeps; one with ``tty: true`` runs on a terminal (runc ``terminal: true``: runc hands the
terminal's master to us over ``--console-socket``), whose master we keep for input and resize
while ``logs.LogWriter`` reads its output into the container log (everything on a terminal
is ``stdout``, as containerd logs it). ``ContainerIO`` is what an attach session uses:
``subscribe`` to the output as it is produced, ``write`` stdin, ``resize`` the terminal, and
``session_ended`` (with ``stdinOnce`` the container's stdin closes after the first attach
that used it, as in Kubernetes). Owned by ``runc.py`` (one per container); used by the agent's
``/attach`` endpoint.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios

from controlplane.runtime.logs import LogWriter


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """Set a terminal's size (on its master: the container sees SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(1, rows), max(1, cols), 0, 0))


async def write_all(fd: int, data: bytes) -> None:
    """Write everything to a non-blocking fd, waiting for room without blocking the loop."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await ready
            finally:
                loop.remove_writer(fd)


class ContainerIO:
    def __init__(self, writer: LogWriter | None, tty: bool = False, fd: int | None = None,
                 stdin: bool = False, stdin_once: bool = False) -> None:
        self.writer = writer
        self.tty = tty
        self._fd = fd  # the stdin pipe's write end, or (tty) our copy of the terminal master
        self.stdin = stdin and fd is not None
        self.stdin_once = stdin_once
        if fd is not None:
            os.set_blocking(fd, False)

    @property
    def stdin_open(self) -> bool:
        return self.stdin and self._fd is not None

    def subscribe(self) -> asyncio.Queue[tuple[str, bytes]]:
        """Output from now on: ``(stream, chunk)``; ``(stream, b"")`` when a stream ended."""
        if self.writer is None:
            q: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
            q.put_nowait(("stdout", b""))
            q.put_nowait(("stderr", b""))
            return q
        return self.writer.subscribe()

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if self.writer is not None:
            self.writer.unsubscribe(q)

    async def write(self, data: bytes) -> None:
        if not self.stdin_open or not data:
            return
        try:
            await write_all(self._fd, data)  # type: ignore[arg-type]
        except OSError:  # EPIPE/EIO: the container is gone or closed its stdin
            pass

    def resize(self, rows: int, cols: int) -> None:
        if self.tty and self._fd is not None:
            set_winsize(self._fd, rows, cols)

    def close_stdin(self) -> None:
        """The client's stdin ended: with ``stdinOnce`` the container's stdin closes (EOF);
        otherwise it stays open for the next attach, as in Kubernetes."""
        if self.stdin_once:
            self.stdin = False
            if not self.tty:
                self.close()

    def session_ended(self, used_stdin: bool) -> None:
        """An attach session is over; with ``stdinOnce`` the first one that used stdin closes it."""
        if used_stdin and self.stdin_once:
            self.close_stdin()

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
