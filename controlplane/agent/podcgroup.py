"""A pod's cgroup settings, as the kubelet's ``ResourceConfigForPod``
(``pkg/kubelet/cm/helpers_linux.go``) computes them from the pod spec.

CPU shares come from the pod's effective CPU requests (KEP-753's formula, sidecars included,
plus ``spec.overhead``: ``resource.PodRequests``); the CFS quota and period only when every
container declares a CPU limit, the memory limit only when every container declares a memory
limit, both from the effective limits plus the overhead of the resources limited
(``resource.PodLimits``). "Every container" is upstream's ``ContainerFn`` check: a regular
container on its own limits, an init container on its own plus the sidecars before it. A
BestEffort pod gets 2 shares and nothing else; a Guaranteed one everything.

Neighbours: ``controlplane/machinery/podresources.py`` (the formula), ``lifecycle.qos_class``,
``pod_worker._sandbox_spec`` (puts the result in the ``SandboxSpec``) and
``controlplane/runtime/cgroups.py`` (``PodResourceConfig``, the unit conversions, the writes).
Pure logic, unit-tested in ``tests/unit/test_podcgroup.py``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping

from controlplane.agent.lifecycle import qos_class
from controlplane.machinery.podresources import aggregate
from controlplane.machinery.quantity import parse_quantity
from controlplane.runtime.cgroups import (
    MIN_SHARES, QUOTA_PERIOD_US, PodResourceConfig, milli_cpu_to_quota, milli_cpu_to_shares,
)

COMPUTE = ("cpu", "memory")


def _parse(resource: str, quantity: Any) -> Fraction:
    """Exact quantities (upstream sums ``resource.Quantity`` values and rounds at the end);
    only cpu and memory are read."""
    return parse_quantity(str(quantity)) if resource in COMPUTE else Fraction(0)


def resource_config_for_pod(spec: Mapping[str, Any], cpu_period_us: int = QUOTA_PERIOD_US,
                            enforce_cpu_limits: bool = True, pids_limit: int | None = None) -> PodResourceConfig:
    """The pod cgroup's settings (``ResourceConfigForPod`` with ``enforceMemoryQoS`` off), with
    the node's ``pids_limit`` (``--pod-max-pids``: ``podContainerManager.EnsureExists`` adds
    the kubelet's podPidsLimit to every pod, whatever its QoS class)."""
    pids = pids_limit if pids_limit is not None and pids_limit > 0 else None
    overhead = {k: _parse(k, v) for k, v in ((spec.get("overhead") or {}).items()) if k in COMPUTE}
    requests = aggregate(spec, "requests", _parse)
    for k, v in overhead.items():  # PodRequests adds the overhead to every resource
        requests[k] = requests.get(k, Fraction(0)) + v

    declared = {"cpu": True, "memory": True}

    def each(values: Mapping[str, Fraction]) -> None:
        for r in COMPUTE:
            if not values.get(r):
                declared[r] = False

    limits = aggregate(spec, "limits", _parse, container_fn=each)
    for k, v in overhead.items():  # PodLimits adds it only where a limit is set
        if k in limits:
            limits[k] += v

    qos = qos_class(dict(spec))
    if qos == "BestEffort":
        return PodResourceConfig(cpu_shares=MIN_SHARES, pids_limit=pids)
    shares = milli_cpu_to_shares(math.ceil(requests.get("cpu", Fraction(0)) * 1000))  # MilliValue
    quota = milli_cpu_to_quota(math.ceil(limits.get("cpu", Fraction(0)) * 1000), cpu_period_us) \
        if enforce_cpu_limits else -1
    memory = math.ceil(limits.get("memory", Fraction(0)))  # Value
    guaranteed = qos == "Guaranteed"
    with_cpu = guaranteed or declared["cpu"]
    with_memory = guaranteed or declared["memory"]
    return PodResourceConfig(cpu_shares=shares,
                             cpu_quota_us=quota if with_cpu else None,
                             cpu_period_us=cpu_period_us if with_cpu else None,
                             memory_limit_bytes=memory if with_memory else None, pids_limit=pids)
