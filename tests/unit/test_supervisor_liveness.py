"""``Supervisor`` liveness probing: a component whose ``live`` check fails
``failure_threshold`` times in a row is SIGKILLed and restarted (cause ``liveness probe
failed``); failures that are not consecutive never kill it. The component is a real ``sleep``
process, so the kill and the restart are real."""

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from controlplane.machinery.backoff import RestartBackoff
from controlplane.procutil import PidFiles
from controlplane.supervisor.supervisor import LIVENESS_CAUSE, RESTARTS, LivenessProbe, Supervisor


class _Sleeper:
    """A ``sleep`` child; ``live`` answers from a script (then True)."""

    def __init__(self, name: str, script: list[bool]) -> None:
        self.name = name
        self.script = list(script)
        self.procs: list[asyncio.subprocess.Process] = []
        self.probes = 0

    async def start(self, ctx, wait_ready: bool = True) -> None:  # noqa: ANN001
        self.procs.append(await asyncio.create_subprocess_exec("sleep", "60"))

    async def wait(self) -> int:
        return await self.procs[-1].wait()

    async def stop(self) -> None:
        p = self.procs[-1]
        if p.returncode is None:
            p.terminate()
            await p.wait()

    def pid(self) -> int | None:
        p = self.procs[-1] if self.procs else None
        return p.pid if p is not None and p.returncode is None else None

    def live(self, ctx, timeout: float) -> bool:  # noqa: ANN001
        self.probes += 1
        return self.script.pop(0) if self.script else True


def _restarts(name: str, cause: str) -> float:
    return RESTARTS.labels(name, cause)._value.get()


@pytest.mark.parametrize("name,script,threshold,killed", [
    ("live-a", [False, False, False], 3, True),           # three in a row: killed
    ("live-b", [False, False, True, False, False], 3, False),  # never three in a row
    ("live-c", [True, True, False], 1, True),             # threshold 1: the first failure
    ("live-d", [], 3, False),                             # always live
])
async def test_probe_kills_after_consecutive_failures(tmp_path: Path, name, script, threshold, killed):
    sup = Supervisor(SimpleNamespace(data_dir=tmp_path), PidFiles(tmp_path / "run"),
                     backoff=lambda: RestartBackoff(initial=0.01),
                     liveness=LivenessProbe(period=0.02, timeout=1.0, failure_threshold=threshold, initial_delay=0.0))
    comp = _Sleeper(name, script)
    before = _restarts(name, LIVENESS_CAUSE)
    try:
        await sup.start(comp)
        first = comp.pid()
        for _ in range(300):  # until the script is used up and a few probes after it
            if comp.probes >= len(script) + 3 and (not killed or len(comp.procs) == 2 and comp.pid()):
                break
            await asyncio.sleep(0.01)
        if killed:
            assert comp.procs[0].returncode == -9 and len(comp.procs) == 2 and comp.pid() not in (None, first)
            assert _restarts(name, LIVENESS_CAUSE) == before + 1
        else:
            assert comp.pid() == first and len(comp.procs) == 1
            assert _restarts(name, LIVENESS_CAUSE) == before
    finally:
        await sup.stop_all()
    assert all(p.returncode is not None for p in comp.procs)


async def test_no_probing_when_disabled(tmp_path: Path):
    sup = Supervisor(SimpleNamespace(data_dir=tmp_path), PidFiles(tmp_path / "run"), liveness=None)
    comp = _Sleeper("live-e", [False] * 10)
    try:
        await sup.start(comp)
        await asyncio.sleep(0.1)
        assert comp.probes == 0 and len(comp.procs) == 1
    finally:
        await sup.stop_all()
