"""The probe loop's thresholds and its failure modes: a check that errors or hangs is a failed
probe, never a dead loop (a liveness probe that stopped running would never restart its
container)."""

import asyncio

import pytest

from controlplane.agent.probes import probe_loop


def _boom() -> None:
    raise KeyError("unexpected")


async def _hang() -> tuple[bool, str]:
    await asyncio.sleep(3600)
    return True, ""


@pytest.mark.parametrize("kind,probe,outcomes,expect", [
    # failureThreshold 1: the first failure decides
    ("liveness", {"periodSeconds": 0.01, "failureThreshold": 1}, [False], [False]),
    # failureThreshold 2: two failures in a row, a success in between resets the count
    ("liveness", {"periodSeconds": 0.01, "failureThreshold": 2}, [False, True, False, False], [True, False]),
    # an exception from the check is a failure and the loop goes on (a second result comes)
    ("liveness", {"periodSeconds": 0.01, "failureThreshold": 1}, ["raise", "raise"], [False, False]),
    # readiness reports changes only: success, success, failure
    ("readiness", {"periodSeconds": 0.01}, [True, True, False, False, False], [True, False]),
])
async def test_probe_loop_results(kind, probe, outcomes, expect):
    results: list[bool] = []
    it = iter(outcomes)

    async def check() -> tuple[bool, str]:
        o = next(it, None)
        if o is None:
            await asyncio.sleep(3600)
        if o == "raise":
            _boom()
        return bool(o), "msg"

    task = asyncio.get_running_loop().create_task(
        probe_loop(kind, probe, check, lambda k, ok, msg: results.append(ok)))
    try:
        for _ in range(200):
            if len(results) >= len(expect):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert results == expect


async def test_a_hung_check_times_out_as_a_failure():
    results: list[tuple[bool, str]] = []
    task = asyncio.get_running_loop().create_task(probe_loop(
        "liveness", {"periodSeconds": 0.01, "timeoutSeconds": 0.01, "failureThreshold": 1}, _hang,
        lambda k, ok, msg: results.append((ok, msg))))
    try:
        for _ in range(300):
            if results:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert results and results[0][0] is False and "timed out" in results[0][1]
