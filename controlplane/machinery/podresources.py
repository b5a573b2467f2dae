"""A pod's effective requests or limits, as Kubernetes' ``resourcehelper.AggregateContainerRequests``
/ ``AggregateContainerLimits`` compute them (1.29+, with sidecar containers).

Regular containers are summed. Init containers run one at a time, each next to the restartable
("sidecar", ``restartPolicy: Always``) init containers defined before it, which keep running:
``InitContainerUse(i) = sum(sidecars before i) + init container i`` (for a sidecar: the sum of
the sidecars up to and including it). The pod needs the larger of ``max_i InitContainerUse(i)``
and ``sum(containers) + sum(sidecars)``, per resource (KEP-753 "Exposing Pod Resource
Requirements"). Overhead is the callers' to add (requests always, limits only where set). ``container_fn``
sees each container's share as upstream's ``ContainerFn`` does (the kubelet's pod cgroup,
``agent/podcgroup.py``, learns from it whether every container declares a limit).

``host_ports(spec)`` gives the hostPorts of the regular containers and the sidecars (plain init
containers expose none): the agent's sandbox port mappings, the scheduler's NodePorts and the
proxy's host listeners read it.

One function, generic over the number type, serves every caller: the scheduler's fit and
scoring (integers, milli-CPU: ``schedulers/framework/podinfo.py``), ResourceQuota usage
(``quota.py``, Fractions) and the LimitRanger's pod totals (``apiserver/admission/
limitranger.py``). Pure logic, unit-tested with a table (``tests/unit/test_podresources.py``).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar("T", int, Fraction)


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """A restartable init container (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def long_running_containers(spec: Mapping[str, Any]) -> list[dict]:
    """The containers that run for the pod's life: the regular containers, then the sidecars in
    their order (plain init containers left out). Their ``ports`` are the pod's: the kubelet maps
    their hostPorts into the sandbox and the scheduler's NodePorts plugin counts them
    (``NodeInfo.updateUsedPorts``/``getContainerPorts``, 1.30+)."""
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)] + \
        [c for c in spec.get("initContainers") or [] if isinstance(c, dict) and is_sidecar(c)]


def host_ports(spec: Mapping[str, Any]) -> list[dict]:
    """The ``ports`` entries with a hostPort of ``long_running_containers(spec)``, in order."""
    return [p for c in long_running_containers(spec) for p in c.get("ports") or []
            if isinstance(p, dict) and p.get("hostPort")]


def aggregate(spec: Mapping[str, Any], field: str, parse: Callable[[str, Any], T],
              non_missing: Mapping[str, T] | None = None,
              seen: Callable[[str, Any], None] | None = None,
              container_fn: Callable[[Mapping[str, T]], None] | None = None) -> dict[str, T]:
    """Per resource, the pod's ``field`` (``requests`` or ``limits``) without overhead.

    ``parse(resource, quantity)`` turns one quantity into a number; ``non_missing`` gives a
    value for each resource a container does not name (the scheduler's non-zero defaults,
    ``NonMissingContainerRequests``); ``seen(resource, quantity)`` is called for every quantity
    read, in order (the LimitRanger keeps the first one's format); ``container_fn(values)`` is
    called once per container with what it adds to the formula: a regular container its own
    values, a sidecar the sum of the sidecars up to it, another init container its own plus the
    sidecars before it (upstream's ``ContainerFn``)."""

    def of(c: Any) -> dict[str, T]:
        out: dict[str, T] = {}
        if not isinstance(c, dict):
            return out
        for k, v in (((c.get("resources") or {}).get(field)) or {}).items():
            if seen is not None:
                seen(k, v)
            out[k] = parse(k, v)
        for k, v in (non_missing or {}).items():
            out.setdefault(k, v)
        return out

    def add(into: dict[str, T], more: Mapping[str, T]) -> None:
        for k, v in more.items():
            into[k] = into[k] + v if k in into else v

    def maximum(into: dict[str, T], other: Mapping[str, T]) -> None:
        for k, v in other.items():
            if k not in into or v > into[k]:
                into[k] = v

    total: dict[str, T] = {}
    for c in spec.get("containers") or []:
        own = of(c)
        if container_fn is not None:
            container_fn(own)
        add(total, own)
    sidecars: dict[str, T] = {}
    init_use: dict[str, T] = {}
    for c in spec.get("initContainers") or []:
        own = of(c)
        if isinstance(c, dict) and is_sidecar(c):
            add(total, own)
            add(sidecars, own)
            use = dict(sidecars)
        else:
            use = dict(own)
            add(use, sidecars)
        if container_fn is not None:
            container_fn(use)
        maximum(init_use, use)
    maximum(total, init_use)
    return total
