"""kube-aggregator's availability metric: ``aggregator_unavailable_apiservice{name}`` follows
each APIService's Available condition and goes with the APIService."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from controlplane.apiserver.aggregation import available as av
from controlplane.apiserver.aggregation.resolve import ResolveError


class _Resolver:
    registry = SimpleNamespace(get=lambda *a: None)
    caches = None

    def __init__(self) -> None:
        self.missing: set[str] = set()

    def url(self, a: dict) -> str:
        raise ResolveError("ServiceNotFound", f'service/{a["spec"]["service"]["name"]} in "default" is not present')


def _apiservice(name: str, service: str | None, cond: tuple[str, str] | None = None) -> dict:
    a: dict = {"metadata": {"name": name, "resourceVersion": "1"}, "spec": {}}
    if service:
        a["spec"]["service"] = {"namespace": "default", "name": service, "port": 443}
    if cond:
        a["status"] = {"conditions": [{"type": "Available", "status": cond[0], "reason": cond[1],
                                       "message": f'service/{service} in "default" is not present'}]}
    return a


def _gauge(name: str) -> float | None:
    for m in av.UNAVAILABLE.collect():
        for s in m.samples:
            if s.labels.get("name") == name:
                return s.value
    return None


@pytest.mark.parametrize("name,service,before,gauge,writes", [
    ("v1.test-local.example.com", None, None, 0.0, 1),  # local: always available
    ("v1.test-broken.example.com", "nothing", None, 1.0, 1),  # newly unavailable
    ("v1.test-still-broken.example.com", "nothing", ("False", "ServiceNotFound"), 1.0, 0),  # unchanged: not written again
    ("v1.test-recovered.example.com", None, ("False", "ServiceNotFound"), 0.0, 1),  # available again
])
def test_the_gauge_follows_the_condition(name, service, before, gauge, writes):
    apis = [_apiservice(name, service, before)]
    written: list = []

    async def write(n, cond):
        written.append((n, cond))
    ctl = av.AvailabilityController(SimpleNamespace(all=lambda: apis), _Resolver(), write)
    assert asyncio.run(ctl.run_once(now=0.0)) == 1
    assert _gauge(name) == gauge
    assert len(written) == writes, written
    apis.clear()  # the APIService is deleted: its series goes
    asyncio.run(ctl.run_once(now=1.0))
    assert _gauge(name) is None
