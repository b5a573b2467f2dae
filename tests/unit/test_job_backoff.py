"""The Job controller's pod failure back-off, pure (``jobutil``, a port of
``pkg/controller/job/backoff_utils.go``): the delay per failure count, the remaining wait from
the last failure, the record of failures since the last success (``newBackoffRecord``, fed by
the pods each sync sees finish), the per-index variant, and the choice of indexes to create
under ``backoffLimitPerIndex``."""

from __future__ import annotations

import pytest

from controlplane.controllers import job as jobc
from controlplane.controllers import jobutil as ju
from controlplane.machinery.timestamps import rfc3339

T0 = 1_800_000_000.0


def at(offset: float) -> str:
    return rfc3339(T0 + offset)


def pod(name: str, phase: str, finished: float | None = None, *, ready_false: float | None = None,
        index: int | None = None, failures: int | None = None, ignored: int | None = None) -> dict:
    """A finished pod: ``finished`` the container's finishedAt (seconds after T0),
    ``ready_false`` when its Ready condition turned False."""
    ann = {}
    if index is not None:
        ann[ju.INDEX_KEY] = str(index)
    if failures is not None:
        ann[ju.FAILURE_COUNT_KEY] = str(failures)
    if ignored is not None:
        ann[ju.IGNORED_FAILURE_COUNT_KEY] = str(ignored)
    st: dict = {"phase": phase}
    if finished is not None:
        st["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": 1, "finishedAt": at(finished)}}}]
    if ready_false is not None:
        st["conditions"] = [{"type": "Ready", "status": "False", "lastTransitionTime": at(ready_false)}]
    return {"metadata": {"name": name, "namespace": "ns", "uid": name, "annotations": ann,
                         "creationTimestamp": at(-100)}, "status": st}


@pytest.mark.parametrize("failures,base,cap,expected", [
    (0, 10, 360, 0),
    (1, 10, 360, 10),
    (2, 10, 360, 20),
    (3, 10, 360, 40),
    (6, 10, 360, 320),
    (7, 10, 360, 360),     # 640 capped
    (50, 10, 360, 360),    # no overflow past the cap
    (1, 1, 8, 1),
    (4, 1, 8, 8),          # reaching the cap exactly
    (5, 1, 8, 8),
    (1, 20, 5, 20),        # Kubernetes applies the cap only from the first doubling on
], ids=lambda v: str(v))
def test_backoff_delay(failures, base, cap, expected):
    assert ju.backoff_delay(failures, base, cap) == expected


@pytest.mark.parametrize("failures,last,now,expected", [
    (0, 0.0, 5.0, 0),          # no failure: no wait
    (1, None, 5.0, 0),         # no known failure time
    (1, 0.0, 0.0, 10),         # just failed: the whole delay
    (1, 0.0, 4.0, 6),
    (1, 0.0, 10.0, 0),         # expired exactly
    (1, 0.0, 11.0, 0),
    (3, 0.0, 15.0, 25),        # 40 s after the third failure
    (9, 0.0, 100.0, 260),      # capped at 6 min
], ids=["none", "no-time", "just-failed", "partly", "expired", "past", "third", "capped"])
def test_remaining_backoff(failures, last, now, expected):
    last_t = None if last is None else T0 + last
    assert ju.remaining_backoff(failures, last_t, T0 + now) == pytest.approx(expected)


@pytest.mark.parametrize("prev,new_s,new_f,expected", [
    ((0, None), [], [], (0, None)),
    ((2, 9.0), [], [], (2, 9)),                                                  # nothing new: kept
    ((0, None), [], [pod("a", "Failed", 5)], (1, 5)),
    ((0, None), [], [pod("a", "Failed", 9), pod("b", "Failed", 5)], (2, 9)),     # the latest finish
    ((2, 9.0), [], [pod("c", "Failed", 12)], (3, 12)),                           # added to the record
    ((3, 12.0), [pod("s", "Succeeded", 20)], [], (0, None)),                     # a success resets it
    # only the new failures after the new success count
    ((3, 12.0), [pod("s", "Succeeded", 3)], [pod("a", "Failed", 1), pod("b", "Failed", 7)], (1, 7)),
    ((1, 0.0), [pod("s", "Succeeded", 3)], [pod("a", "Failed", 1), pod("b", "Failed", 2)], (0, None)),
    # no container finish time: when Ready turned False, else creation
    ((0, None), [], [pod("a", "Failed", ready_false=4)], (1, 4)),
    ((0, None), [], [pod("a", "Failed")], (1, -100)),
], ids=["empty", "nothing-new", "one", "two", "added", "success-resets", "after-success", "all-before-success",
        "ready-false", "creation"])
def test_next_backoff_record(prev, new_s, new_f, expected):
    prev = (prev[0], None if prev[1] is None else T0 + prev[1])
    failures, last = ju.next_backoff_record(prev, new_s, new_f)
    assert (failures, None if last is None else last - T0) == expected


@pytest.mark.parametrize("last_failed,now,expected", [
    (None, 0.0, 0),
    (pod("a", "Failed", 0, index=0), 3.0, 7),                           # first failure: 10 s
    (pod("a", "Failed", 0, index=0, failures=1), 3.0, 17),              # second: 20 s
    (pod("a", "Failed", 0, index=0, failures=1, ignored=1), 3.0, 37),   # ignored ones count too
    (pod("a", "Failed", 0, index=0, failures=2), 50.0, 0),
], ids=["none", "first", "second", "with-ignored", "expired"])
def test_remaining_backoff_per_index(last_failed, now, expected):
    assert ju.remaining_backoff_per_index(last_failed, T0 + now) == pytest.approx(expected)


@pytest.mark.parametrize("create,last_failed,expected", [
    ([0, 1], {}, ([0, 1], None)),
    ([0, 1], {0: pod("a", "Failed", 0, index=0)}, ([1], None)),          # index 1 need not wait
    ([0], {0: pod("a", "Failed", 0, index=0)}, ([], 8.0)),
    ([0, 2], {0: pod("a", "Failed", 0, index=0, failures=1),
              2: pod("b", "Failed", 0, index=2)}, ([], 8.0)),            # the shortest wait
    ([0], {0: pod("a", "Failed", -20, index=0)}, ([0], None)),           # expired
], ids=["no-failures", "one-waits", "all-wait", "shortest", "expired"])
def test_per_index_backoff(create, last_failed, expected):
    got, wait = jobc.per_index_backoff(create, last_failed, T0 + 2.0, 10.0, 360.0)
    assert (got, None if wait is None else pytest.approx(wait)) == (expected[0], expected[1])
