"""A leader elector's task ends when it is cancelled, whenever the cancellation lands: also in
the instant its own Lease request completes (Python 3.11's ``asyncio.wait_for`` returned the
inner result then and dropped the cancellation: the elector led on forever, and a test that
cancelled it to simulate a crash hung until its timeout)."""

import asyncio

import pytest

from controlplane.client.leaderelection import LeaderElectionConfig, LeaderElector


class _Leases:
    """Just enough of ``RestClient`` for one Lease; ``on_update`` runs inside each update."""

    def __init__(self) -> None:
        self.lease: dict | None = None
        self.rv = 0
        self.updates = 0
        self.on_update = lambda n: None

    async def get(self, res, name, ns):  # noqa: ANN001
        from controlplane.client.rest import ApiStatusError
        if self.lease is None:
            raise ApiStatusError(404, "NotFound", "not found")
        return {**self.lease, "spec": dict(self.lease["spec"])}

    async def create(self, res, body, ns):  # noqa: ANN001
        self.rv += 1
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.rv)}}
        return self.lease

    async def update(self, res, body):  # noqa: ANN001
        self.updates += 1
        self.rv += 1
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.rv)}}
        self.on_update(self.updates)  # no await after this: the request completes in this step
        return self.lease


@pytest.mark.parametrize("cancel_at_update", [1, 2, 3])
async def test_cancel_during_a_renewal_ends_the_elector(cancel_at_update):
    leases = _Leases()
    cfg = LeaderElectionConfig(name="x", namespace="default", identity="me", lease_duration=2.0,
                               renew_deadline=1.5, retry_period=0.05, release_on_cancel=False)
    elector = LeaderElector(leases, cfg)  # type: ignore[arg-type]
    lost = []

    async def lead(ev: asyncio.Event) -> None:
        await ev.wait()
        lost.append(True)

    task = asyncio.get_running_loop().create_task(elector.run(asyncio.Event(), lead))
    leases.on_update = lambda n: task.cancel() if n == cancel_at_update else None
    done, _ = await asyncio.wait([task], timeout=3)
    if not done:
        task.cancel()
        await asyncio.wait([task], timeout=3)
    assert done, f"the elector kept running after its cancellation ({leases.updates} renewals)"
    assert task.cancelled() and lost == [True]
