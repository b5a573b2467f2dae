"""Node lifecycle rules (pure): eviction times (toleration matching itself:
``test_machinery_scheduling.py``), heartbeat markers,
health from the controller's own clock (fake)."""

from __future__ import annotations

import pytest

from controlplane.controllers import nodelifecycle as nl
from controlplane.machinery.timestamps import parse_time

UNREACH = {"key": nl.UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}
T0 = parse_time("2024-01-01T00:00:00Z")


@pytest.mark.parametrize("tols,due", [
    ([], T0 + 1000),  # evicted now
    ([{"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], T0 + 5),
    ([{"operator": "Exists"}], None),
    ([{"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
      {"operator": "Exists", "tolerationSeconds": 5}], T0 + 300),  # the first matching toleration counts
    ([{"key": nl.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1}], T0),
], ids=["untolerated", "5s", "forever", "first-match", "non-positive"])
def test_eviction_time(tols, due):
    pod = {"spec": {"tolerations": tols}}
    assert nl.eviction_time(pod, [UNREACH, {"key": nl.UNREACHABLE, "effect": "NoSchedule"}], now=T0 + 1000) == due


def test_heartbeat_monitor_with_fake_clock():
    now = [1000.0]
    m = nl.HeartbeatMonitor(grace=40, clock=lambda: now[0])
    node = {"status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "a"}]}}
    lease = {"spec": {"renewTime": "r1"}}
    assert m.healthy("n", node, lease)
    now[0] += 39
    assert m.healthy("n", node, lease)
    now[0] += 2
    assert not m.healthy("n", node, lease)
    lease = {"spec": {"renewTime": "r2"}}  # renewed: healthy again, grace counted from now
    assert m.healthy("n", node, lease)
    now[0] += 30
    assert m.healthy("n", node, lease)
    node["status"]["conditions"][0]["lastHeartbeatTime"] = "b"  # a status heartbeat counts too
    now[0] += 30
    assert m.healthy("n", node, lease)
