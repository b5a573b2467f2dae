"""Registering an aggregated API's objects (``metrics.register.apply_objects``, used by the
metrics-server and the metrics adapter): an object already there is updated from a fresh read,
and an update that meets a newer version (409 Conflict: another server wrote the APIService's
status in between) is read and tried again, a bounded number of times."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.metrics import register as reg


class _Client:
    def __init__(self, update_errors: list[ApiStatusError | None]) -> None:
        self.update_errors = list(update_errors)
        self.rv = 10
        self.updates: list[str] = []

    async def create(self, res, obj, ns):
        raise ApiStatusError(409, "AlreadyExists", "exists")

    async def get(self, res, name, ns):
        self.rv += 1  # someone else wrote it meanwhile
        return {"metadata": {"name": name, "resourceVersion": str(self.rv)}, "spec": {"clusterIP": "10.43.0.9"}}

    async def update(self, res, obj):
        self.updates.append(obj["metadata"]["resourceVersion"])
        err = self.update_errors.pop(0) if self.update_errors else None
        if err is not None:
            raise err


CONFLICT = ApiStatusError(409, "Conflict", "the object has been modified")


@pytest.mark.parametrize("errors,updates,raises", [
    ([None], ["11"], None),
    ([CONFLICT, None], ["11", "12"], None),  # read again, written with the newer version
    ([CONFLICT] * 4 + [None], ["11", "12", "13", "14", "15"], None),
    ([CONFLICT] * 5, ["11", "12", "13", "14", "15"], "Conflict"),  # bounded
    ([ApiStatusError(403, "Forbidden", "no")], ["11"], "Forbidden"),  # not retried
])
def test_updates_retry_on_conflict(errors, updates, raises):
    client = _Client(errors)
    svc = {"metadata": {"name": "m", "namespace": "kube-system"}, "spec": {"ports": [{"port": 443}]}}
    run = reg.apply_objects(client, [(R.SERVICES, svc)])  # type: ignore[arg-type]
    if raises:
        with pytest.raises(ApiStatusError, match=raises):
            asyncio.run(run)
    else:
        asyncio.run(run)
    assert client.updates == updates
