"""``Supervisor.start``: a component killed by a signal before it was ready (a crash) is
started again, at most ``START_ATTEMPTS`` times; one that exits with a status (it refused:
bad flags, a port taken) fails ``up`` at once."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from controlplane.machinery.backoff import RestartBackoff
from controlplane.procutil import PidFiles
from controlplane.supervisor.process import StartupExit
from controlplane.supervisor.supervisor import START_ATTEMPTS, Supervisor


class _Component:
    """Fails its first starts with the given return codes, then serves until stopped."""

    def __init__(self, failures: list[int]) -> None:
        self.name = "apiserver"
        self.failures = list(failures)
        self.starts = 0
        self._exit: asyncio.Future | None = None

    async def start(self, ctx, wait_ready: bool = True) -> None:  # noqa: ANN001
        self.starts += 1
        if self.failures:
            rc = self.failures.pop(0)
            raise StartupExit(rc, f"apiserver exited with {rc}")
        self._exit = asyncio.get_running_loop().create_future()

    async def wait(self) -> int:
        assert self._exit is not None
        return await self._exit

    async def stop(self) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(0)

    def pid(self) -> int | None:
        return None


@pytest.mark.parametrize("failures,ok,starts", [
    ([], True, 1),
    ([-6], True, 2),  # SIGABRT once: started again
    ([-6, -11], True, 3),  # two crashes: the third start serves
    ([-6] * START_ATTEMPTS, False, START_ATTEMPTS),  # crashes every time: up fails
    ([1], False, 1),  # an exit status: no second start
    ([-6, 2], False, 2),  # a crash, then a refusal
])
async def test_start_retries_crashes_only(tmp_path: Path, failures, ok, starts):
    sup = Supervisor(SimpleNamespace(data_dir=tmp_path), PidFiles(tmp_path / "run"),
                     backoff=lambda: RestartBackoff(initial=0.01))
    comp = _Component(failures)
    try:
        if ok:
            await sup.start(comp)
            assert sup.running("apiserver")
        else:
            with pytest.raises(StartupExit):
                await sup.start(comp)
        assert comp.starts == starts
    finally:
        await sup.stop_all()
