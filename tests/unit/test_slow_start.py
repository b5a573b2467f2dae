"""``controllerutil.slow_start_batch`` (kube-controller-manager's ``slowStartBatch``, used by the
ReplicaSet, Job and DaemonSet controllers for their pod creates): batch sizes 1, 2, 4, …,
each batch's calls concurrent, the rounds after the first failing batch skipped, and what a
controller lowers its expectations by."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu


@pytest.mark.parametrize("count,initial,sizes", [
    (0, 1, []),
    (1, 1, [1]),
    (2, 1, [1, 1]),
    (3, 1, [1, 2]),
    (7, 1, [1, 2, 4]),
    (10, 1, [1, 2, 4, 3]),
    (16, 1, [1, 2, 4, 8, 1]),
    (5, 2, [2, 3]),
    (3, 5, [3]),
], ids=lambda v: str(v))
def test_slow_start_sizes(count, initial, sizes):
    assert cu.slow_start_sizes(count, initial) == sizes
    assert sum(sizes) == count


def quota_error() -> ApiStatusError:
    return ApiStatusError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota: q')


@pytest.mark.parametrize("count,fail,calls,successes,errors,skipped", [
    # nothing fails: every call made
    (10, set(), 10, 10, 0, 0),
    # the first call fails: nothing else tried, 9 no longer expected
    (10, {0}, 1, 0, 1, 9),
    # the second batch (calls 1, 2) has one failure: batches 4 and 3 skipped
    (10, {2}, 3, 2, 1, 7),
    # the third batch (3..6) fails twice: the last batch of 3 skipped
    (10, {4, 6}, 7, 5, 2, 3),
    # a failure in the last batch skips nothing
    (10, {9}, 10, 9, 1, 0),
    # a quota allowing 4 pods: batches 1, 2 pass, the batch of 4 has 3 failures
    (8, {4, 5, 6}, 7, 4, 3, 1),
], ids=["all-pass", "first-fails", "second-batch", "third-batch-two", "last-batch", "quota-of-four"])
async def test_slow_start_stops_after_failing_batch(count, fail, calls, successes, errors, skipped):
    called: list[int] = []

    async def fn(i: int) -> None:
        called.append(i)
        await asyncio.sleep(0)
        if i in fail:
            raise quota_error()

    out = await cu.slow_start_batch(count, fn)
    assert sorted(called) == list(range(calls))
    assert (out.successes, len(out.errors), out.skipped) == (successes, errors, skipped)
    assert out.unobserved == count - successes  # what the controller lowers its expectations by


async def test_batch_calls_run_concurrently():
    """A batch's calls are all in flight together; the next batch starts after it ends."""
    in_flight, peak, seen = 0, [], []

    async def fn(i: int) -> None:
        nonlocal in_flight
        in_flight += 1
        seen.append(in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        peak.append(in_flight)
        in_flight -= 1

    out = await cu.slow_start_batch(7, fn)
    assert out.successes == 7
    assert max(seen) == 4 and seen[:3] == [1, 1, 2]


async def test_expectations_lowered_by_unobserved():
    """The pattern the controllers follow: expect ``n``, lower by the failed and skipped ones;
    the informer's ADDED events for the created ones satisfy the rest."""
    exp = cu.Expectations()
    exp.expect_creations("ns/ds", 6)

    async def fn(i: int) -> None:
        if i >= 2:
            raise quota_error()

    out = await cu.slow_start_batch(6, fn)
    exp.lower_expected_creations("ns/ds", out.unobserved)
    assert exp.pending("ns/ds") == (2, 0)
    exp.creation_observed("ns/ds")
    exp.creation_observed("ns/ds")
    assert exp.satisfied("ns/ds")


async def test_cancellation_is_not_a_failed_call():
    async def fn(i: int) -> None:
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        await cu.slow_start_batch(3, fn)


@pytest.mark.parametrize("err,expected", [
    (ApiStatusError(403, "Forbidden", 'unable to create new content in namespace x because it is being terminated',
                    {"details": {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]}}),
     True),
    (quota_error(), False),
    (RuntimeError("boom"), False),
], ids=["terminating", "quota", "other"])
def test_is_namespace_terminating(err, expected):
    assert cu.is_namespace_terminating(err) is expected


class _Client:
    def __init__(self) -> None:
        self.created: list[dict] = []

    async def create(self, resource, obj, namespace=None):
        obj = {**obj, "metadata": {**obj["metadata"], "name": f"p{len(self.created)}"}}
        self.created.append(obj)
        return obj


class _Recorder:
    def event(self, *args, **kwargs) -> None:
        pass


@pytest.mark.parametrize("n,indexes,created", [
    (3, None, 3),
    (700, None, 500),  # Go's MaxPodCreateDeletePerSync: the next sync creates the rest
    (600, list(range(600)), 500),
])
async def test_job_creates_at_most_500_pods_per_sync(n, indexes, created):
    from controlplane.controllers import job as jobctl
    c = object.__new__(jobctl.JobController)
    c.client, c.recorder, c.expectations = _Client(), _Recorder(), cu.Expectations()
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "d", "uid": "u"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                    **({"completionMode": "Indexed", "completions": n} if indexes else {})}}
    await c._create_pods(job, "d/j", n, indexes=indexes)
    assert len(c.client.created) == created
    assert c.expectations.pending("d/j") == (created, 0)
