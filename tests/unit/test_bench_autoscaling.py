"""``bench autoscaling``'s CPU accounting inside the HPA waves: the cores each process used
during given windows, interpolated between the 0.1 s samples (pure; fabricated samples)."""

from __future__ import annotations

import pytest

from controlplane.bench.autoscaling import _CpuSampler


def _sampler(samples: list[tuple[float, dict[str, float]]]) -> _CpuSampler:
    s = _CpuSampler({})
    s.samples = samples
    return s


# cumulative CPU seconds: "a" uses 1 core throughout, "b" half a core until t=10, then none
SAMPLES = [(float(t), {"a": float(t), "b": min(t, 10) / 2}) for t in range(0, 21)]


@pytest.mark.parametrize(("windows", "expected"), [
    ([(2.0, 4.0)], {"a": 1.0, "b": 0.5}),
    ([(2.5, 3.25)], {"a": 1.0, "b": 0.5}),  # between samples: interpolated
    ([(12.0, 14.0)], {"a": 1.0, "b": 0.0}),
    ([(8.0, 12.0)], {"a": 1.0, "b": 0.25}),
    ([(2.0, 4.0), (12.0, 14.0)], {"a": 1.0, "b": 0.25}),  # weighted by each window's length
    ([(19.0, 25.0)], {}),  # not covered by the samples: left out
    ([(4.0, 4.0)], {}),  # empty
    ([], {}),
])
def test_cores_during_windows(windows: list[tuple[float, float]], expected: dict[str, float]) -> None:
    assert _sampler(SAMPLES).during(windows) == expected


def test_sampler_thread_samples_this_process() -> None:
    import os
    import time
    s = _CpuSampler({"me": os.getpid()}, interval=0.01)
    s.start()
    deadline = time.monotonic() + 10
    while len(s.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # the sampler thread needs the GIL: wait without holding it
    s.stop()
    assert not s._thread.is_alive()
    assert len(s.samples) >= 3
    assert s.samples[-1][1]["me"] >= s.samples[0][1]["me"]
    assert {"me", "machine", "machine_stolen"} <= set(s.samples[0][1])
