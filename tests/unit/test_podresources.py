"""Effective pod requests and limits with sidecar (restartable init) containers, as Kubernetes'
``resourcehelper`` computes them (the table follows KEP-753's worked examples), and the callers
that use them: the scheduler's fit and non-zero scoring requests, ResourceQuota usage and the
LimitRanger's pod totals."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from controlplane.apiserver.admission.limitranger import _pod_totals
from controlplane.machinery.podresources import aggregate
from controlplane.machinery.quota import pod_resources
from schedulers.framework.podinfo import DEFAULT_MILLI_CPU, _nonzero, effective_requests, quantity_value


def c(name: str, cpu: str | None = None, mem: str | None = None, sidecar: bool = False,
      limits: bool = False) -> dict[str, Any]:
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    out: dict[str, Any] = {"name": name, "image": "busybox",
                           "resources": {"limits" if limits else "requests": req}}
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def spec(containers: list[dict], init: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    return {"containers": containers, "initContainers": init or [], **extra}


# (id, spec, expected milli-CPU, expected memory bytes)
CASES = [
    ("containers only", spec([c("a", "100m", "64Mi"), c("b", "200m", "64Mi")]), 300, 128 << 20),
    ("a big regular init container wins", spec([c("a", "100m")], [c("i", "1")]), 1000, None),
    ("a small regular init container does not", spec([c("a", "500m")], [c("i", "100m")]), 500, None),
    ("a sidecar adds to the containers", spec([c("a", "100m")], [c("s", "50m", sidecar=True)]), 150, None),
    ("an init container after a sidecar runs next to it",
     spec([c("a", "100m")], [c("s", "300m", sidecar=True), c("i", "500m")]), 800, None),
    ("an init container before a sidecar does not",
     spec([c("a", "100m")], [c("i", "500m"), c("s", "300m", sidecar=True)]), 500, None),
    ("sidecars accumulate for later init containers",
     spec([c("a", "100m")], [c("s1", "100m", sidecar=True), c("s2", "200m", sidecar=True), c("i", "400m")]), 700, None),
    ("containers plus all sidecars beat the init phase",
     spec([c("a", "1")], [c("s1", "100m", sidecar=True), c("i", "200m"), c("s2", "300m", sidecar=True)]), 1400, None),
    ("memory counted per resource",
     spec([c("a", "100m", "100Mi")], [c("s", None, "50Mi", sidecar=True), c("i", "1", "10Mi")]), 1000, 150 << 20),
    ("overhead added", spec([c("a", "100m")], [c("s", "100m", sidecar=True)], overhead={"cpu": "50m"}), 250, None),
]


@pytest.mark.parametrize("pod_spec,cpu,mem", [x[1:] for x in CASES], ids=[x[0] for x in CASES])
def test_scheduler_effective_requests(pod_spec: dict, cpu: int, mem: int | None) -> None:
    req = effective_requests(pod_spec)
    assert req.get("cpu") == cpu
    assert req.get("memory") == mem


@pytest.mark.parametrize("pod_spec,cpu,mem", [x[1:] for x in CASES], ids=[x[0] for x in CASES])
def test_quota_pod_requests_agree(pod_spec: dict, cpu: int, mem: int | None) -> None:
    req = pod_resources({"spec": pod_spec}, "requests")
    assert req.get("cpu") == Fraction(cpu, 1000)
    assert req.get("memory") == (Fraction(mem) if mem is not None else None)


@pytest.mark.parametrize("pod_spec,cpu,mem", [x[1:] for x in CASES if "overhead" not in x[1]],
                         ids=[x[0] for x in CASES if "overhead" not in x[1]])
def test_limits_aggregate_the_same_way(pod_spec: dict, cpu: int, mem: int | None) -> None:
    as_limits = {k: [dict(x, resources={"limits": x["resources"]["requests"]}) for x in v]
                 for k, v in pod_spec.items() if k in ("containers", "initContainers")}
    got = pod_resources({"spec": as_limits}, "limits")
    assert got.get("cpu") == Fraction(cpu, 1000)
    assert aggregate(as_limits, "requests", quantity_value) == {}


@pytest.mark.parametrize("pod_spec,expected", [
    ("no requests at all", DEFAULT_MILLI_CPU),
    ("one sidecar without requests", 2 * DEFAULT_MILLI_CPU),
    ("an unrequested init container after a requested sidecar", DEFAULT_MILLI_CPU + 300),
    ("explicit zero kept", 0),
], ids=lambda x: x if isinstance(x, str) else "")
def test_nonzero_defaults_fill_every_container(pod_spec: str, expected: int) -> None:
    specs = {
        "no requests at all": spec([{"name": "a", "image": "i"}]),
        "one sidecar without requests": spec([{"name": "a", "image": "i"}],
                                             [{"name": "s", "image": "i", "restartPolicy": "Always"}]),
        "an unrequested init container after a requested sidecar":
            spec([c("a", "50m")], [c("s", "300m", sidecar=True), {"name": "i", "image": "i"}]),
        "explicit zero kept": spec([c("a", "0")]),
    }
    assert _nonzero(specs[pod_spec], "cpu", DEFAULT_MILLI_CPU) == expected


def test_limitranger_totals_keep_the_first_format() -> None:
    s = spec([c("a", "100m", "1Gi")], [c("s", "200m", "512Mi", sidecar=True), c("i", "1", "2Gi")])
    assert _pod_totals({"spec": s}, "requests") == {"cpu": "1200m", "memory": "2560Mi"}
