"""Several apiserver processes on one port: the supervisor, its link to each worker, and the
SO_REUSEPORT listening socket.

``controlplane apiserver --workers N`` (N > 1) runs ``supervise`` over N children, each a complete
apiserver (``app.serve`` with its own ApiServer, EtcdBackend and watch caches) listening on the
same host:port through its own SO_REUSEPORT socket, so the kernel spreads connections over them
and the server uses N cores (kube-apiserver gets there with goroutines). Everything shared goes
through etcd; metrics through prometheus_client's multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``, a fresh temp dir the supervisor removes on exit).

Preload: the first N workers are forked (``prefork``) from the supervisor after it set the
metrics directory and imported the worker's code, before its event loop exists (no loop,
thread or socket but the links is inherited): a (re)started apiserver imports the API server
once, not once per worker. A worker restarted later is a new process
(``python -m controlplane <same argv minus --workers> --worker i,N,FD``): the supervisor runs
its event loop by then, which a fork must not inherit.

Ready gate: each worker gets one end of a socketpair (``FD``). Once it listens it writes
``ready``; when all N did, the supervisor answers ``go`` to every worker, and only then do the
workers' /readyz say 200. So a caller polling /readyz (``controlplane up``, fixtures) sees ready
only when every worker serves. A worker whose link reaches EOF (supervisor gone, even by
SIGKILL) stops by itself: no orphans. Its clean stop is bounded (``ORPHAN_EXIT_S``, then
``os._exit`` from a timer thread): with the supervisor killed, etcd usually went with it, and
closing watches and etcd connections may wait on peers that are gone.

Stop semantics: SIGTERM/SIGINT to the supervisor are forwarded to the workers and it exits 0
once they all exited cleanly. A worker dying during start-up makes it stop the others and exit
1 (``controlplane up`` restarts the apiserver); a worker dying later is restarted in its slot
(same index: worker 0 keeps the once-only jobs) at once, then on ``RestartBackoff`` (1 s
doubling to 30 s, reset after 60 s up), while the others keep serving. The cause is logged and
the new worker counts it in ``controlplane_component_restarts_total{component="apiserver-worker"}``
(the multiprocess metrics keep the count across workers); the dead worker's live gauges are
dropped (``mark_process_dead``).
Neighbours: ``controlplane/cmd/apiserver.py`` (argument parsing, picks supervisor or worker),
``app.serve`` (takes the socket and the gate), ``metrics.render`` (multiprocess collection).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.multiprocess import mark_process_dead

from controlplane.log import get_logger
from controlplane.machinery.backoff import RestartBackoff

log = get_logger(__name__)

STOP_GRACE_S = 20.0  # how long workers get to stop before SIGKILL
READY_TIMEOUT_S = 120.0  # a restarted worker must listen within this
RESTART_CAUSE_ENV = "CONTROLPLANE_WORKER_RESTART_CAUSE"  # set for a restarted worker: it counts the restart


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket with SO_REUSEPORT, for ``create_server(sock=)``
    (Sanic 25's ``create_server`` has no ``reuse_port`` argument of its own)."""
    family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                       flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def parse_worker_spec(spec: str) -> tuple[int, int, int]:
    """``"i,n,fd"`` -> (index, count, link fd)."""
    index, count, fd = (int(x) for x in spec.split(","))
    return index, count, fd


def worker_argv(argv: list[str]) -> list[str]:
    """The command line minus ``--workers N`` / ``--workers=N``."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            out.append(a)
    return out


ORPHAN_EXIT_S = 5.0  # a worker whose supervisor went away exits within this, cleanly or not


def _exit_after(seconds: float) -> None:
    """End this process after ``seconds`` even if its event loop is stuck (a daemon timer
    thread; a clean exit earlier makes it moot)."""
    import threading

    def _exit() -> None:
        sys.stderr.write(f"apiserver worker: supervisor gone, not stopped within {seconds:g}s; exiting\n")
        sys.stderr.flush()
        os._exit(1)

    t = threading.Timer(seconds, _exit)
    t.daemon = True
    t.start()


class WorkerLink:
    """A worker's end of its socketpair with the supervisor: ``run`` reads it for the whole
    life of the worker (``go``, then EOF when the supervisor goes away)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._go = asyncio.Event()
        self._gone = False

    async def open(self) -> None:
        sock = socket.socket(fileno=self._fd)
        sock.setblocking(False)
        self._reader, self._writer = await asyncio.open_connection(sock=sock)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the supervisor; set ``stop`` when its end closes (it exited or was killed)."""
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                if line == b"go\n":
                    self._go.set()
        except OSError:
            pass
        self._gone = True
        self._go.set()
        if not stop.is_set():
            log.warning("apiserver supervisor went away; stopping", exit_within_s=ORPHAN_EXIT_S)
            stop.set()
            _exit_after(ORPHAN_EXIT_S)

    async def ready_gate(self) -> None:
        """Tell the supervisor this worker listens; return when every worker does."""
        assert self._writer is not None
        self._writer.write(b"ready\n")
        await self._writer.drain()
        await self._go.wait()
        if self._gone:
            raise RuntimeError("apiserver supervisor went away during start-up")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class ForkedProcess:
    """A worker forked from the preloaded supervisor (``prefork``), with the part of
    ``asyncio.subprocess.Process`` that ``supervise`` uses: its exit is seen through a pidfd
    (the event loop's child watcher only reaps the processes it started itself)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited: asyncio.Future | None = None

    async def wait(self) -> int:
        if self._exited is None:
            self._exited = asyncio.ensure_future(self._reap())
        return await asyncio.shield(self._exited)

    async def _reap(self) -> int:
        loop = asyncio.get_running_loop()
        fd = os.pidfd_open(self.pid)
        readable = loop.create_future()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@dataclass
class Preforked:
    """A worker ``prefork`` started: its pid and the supervisor's end of its link."""
    index: int
    pid: int
    link: socket.socket


def prefork(count: int, child: Callable[[int, int, int], int]) -> list[Preforked]:
    """Fork ``count`` workers from this (preloaded, single-threaded, loop-less) process; each
    child runs ``child(index, count, link_fd)`` and leaves with its result through ``os._exit``
    (never back into the caller). Called before the supervisor's event loop exists."""
    out: list[Preforked] = []
    for index in range(count):
        parent, child_end = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            rc = 1
            try:
                parent.close()
                for other in out:  # else a sibling keeps another worker's link open past the supervisor
                    other.link.close()
                rc = child(index, count, child_end.detach())
            except BaseException:  # noqa: BLE001 - reported, then the child leaves
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        child_end.close()
        out.append(Preforked(index, pid, parent))
    return out


@dataclass
class _Worker:
    index: int
    proc: asyncio.subprocess.Process | ForkedProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


async def _spawn(index: int, count: int, argv: list[str], env: dict[str, str]) -> _Worker:
    parent, child = socket.socketpair()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controlplane", *argv, "--worker", f"{index},{count},{child.fileno()}",
            pass_fds=(child.fileno(),), env=env, start_new_session=False)
    finally:
        child.close()
    parent.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=parent)
    return _Worker(index, proc, reader, writer)


async def _first(*aws: asyncio.Future | asyncio.Task) -> None:
    await asyncio.wait(set(aws), return_when=asyncio.FIRST_COMPLETED)


def metrics_dir_for_workers() -> str:
    """A fresh multiprocess metrics directory, set in ``PROMETHEUS_MULTIPROC_DIR`` of this process
    (so of the workers it forks or starts). Metric values created from here on live in files
    there; the ones created earlier (none: only labelled metrics exist before the apiserver's
    modules are imported, and they create no value until used) would not."""
    from prometheus_client import values
    metrics_dir = tempfile.mkdtemp(prefix="controlplane-apiserver-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    values.ValueClass = values.get_value_class()
    return metrics_dir


async def supervise(argv: list[str], count: int, *, preforked: list[Preforked] | None = None,
                    metrics_dir: str | None = None) -> int:
    """Run ``count`` workers of ``controlplane <argv>`` until a signal, restarting any that dies.
    ``preforked``: the workers ``prefork`` already started (in ``metrics_dir``); a restarted
    worker is always a new ``controlplane`` process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics_dir = metrics_dir or tempfile.mkdtemp(prefix="controlplane-apiserver-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    workers: list[_Worker] = []
    rc = 0
    keepers: list[asyncio.Future] = []
    try:
        for pf in preforked or []:
            pf.link.setblocking(False)
            reader, writer = await asyncio.open_connection(sock=pf.link)
            workers.append(_Worker(pf.index, ForkedProcess(pf.pid), reader, writer))
        for i in range(len(workers), count):
            workers.append(await _spawn(i, count, argv, env))
        exits = {w.index: asyncio.ensure_future(w.proc.wait()) for w in workers}
        any_exit = asyncio.ensure_future(asyncio.wait(list(exits.values()), return_when=asyncio.FIRST_COMPLETED))
        stopped = asyncio.ensure_future(stop.wait())
        readies = asyncio.ensure_future(asyncio.gather(*(w.reader.readline() for w in workers),
                                                       return_exceptions=True))
        try:
            await _first(readies, any_exit, stopped)
            if readies.done() and not any_exit.done() and not stop.is_set():
                if all(line == b"ready\n" for line in readies.result()):
                    for w in workers:
                        w.writer.write(b"go\n")
                    log.info("apiserver workers serving", workers=count, pids=[w.proc.pid for w in workers])
                else:
                    log.error("an apiserver worker closed its link during start-up")
                    rc = 1
            elif any_exit.done() and not stop.is_set():
                log.error("apiserver worker exited during start-up; stopping the others",
                          exited={i: f.result() for i, f in exits.items() if f.done()})
                rc = 1
        finally:
            for f in (readies, any_exit, stopped, *exits.values()):
                f.cancel()
        if rc == 0 and not stop.is_set():
            keepers = [asyncio.ensure_future(_keep(workers, i, count, argv, env, metrics_dir, stop))
                       for i in range(count)]
            await stop.wait()
        for k in keepers:
            k.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        rc = max(rc, await _stop_all(workers))
    finally:
        for w in workers:
            if w.proc.returncode is None:
                w.proc.kill()
                await w.proc.wait()
            w.writer.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return rc


async def _keep(workers: list[_Worker], index: int, count: int, argv: list[str], env: dict[str, str],
                metrics_dir: str, stop: asyncio.Event) -> None:
    """Restart worker ``index`` whenever it exits (until ``stop``): at once the first time, then
    on ``RestartBackoff``; the new worker is let serve as soon as it listens (the others do)."""
    backoff = RestartBackoff()
    started = time.monotonic()
    while not stop.is_set():
        w = workers[index]
        rc = await w.proc.wait()
        if stop.is_set():
            return
        cause = describe_exit(rc)
        w.writer.close()
        mark_process_dead(w.proc.pid, metrics_dir)  # its live gauges leave /metrics
        delay = backoff.next_delay(time.monotonic() - started)
        log.error("apiserver worker exited; restarting it", worker=index, pid=w.proc.pid, cause=cause,
                  restart_in=delay)
        if delay:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
        new = await _spawn(index, count, argv, {**env, RESTART_CAUSE_ENV: cause})
        workers[index] = new
        started = time.monotonic()
        try:
            line = await asyncio.wait_for(new.reader.readline(), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            line = b""
        if line == b"ready\n":
            new.writer.write(b"go\n")
            log.info("apiserver worker restarted", worker=index, pid=new.proc.pid)
        elif new.proc.returncode is None:
            log.error("restarted apiserver worker did not get ready; killing it", worker=index)
            new.proc.kill()


def describe_exit(rc: int | None) -> str:
    """``exit status 1`` / ``signal SIGKILL``."""
    if rc is not None and rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


async def _stop_all(workers: list[_Worker]) -> int:
    """SIGTERM every live worker, wait (SIGKILL after the grace); 1 if any failed to exit 0."""
    for w in workers:
        if w.proc.returncode is None:
            w.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(w.proc.wait() for w in workers)), STOP_GRACE_S)
    except asyncio.TimeoutError:
        log.error("apiserver workers did not stop in time; killing them")
        for w in workers:
            if w.proc.returncode is None:
                w.proc.kill()
        await asyncio.gather(*(w.proc.wait() for w in workers))
        return 1
    codes = [w.proc.returncode for w in workers]
    return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1

