"""Memory-backed volumes as the kubelet sizes and accounts them.

The kubelet keeps secret, downwardAPI and projected volumes (their wrapped emptyDir has
``medium: Memory``) and every ``emptyDir`` with ``medium: Memory`` on a tmpfs. Its size is
``calculateEmptyDirMemorySize`` (``pkg/volume/emptydir``, SizeMemoryBackedVolumes, GA in 1.32):
the node's allocatable memory, lowered to the pod's memory limit (the pod cgroup's, from
``ResourceConfigForPod``: set only when every container declares one, plus the overhead) when
that is positive and not larger, lowered again to the emptyDir's ``sizeLimit`` under the same
rule. A tmpfs's pages are charged to the memory cgroup of whoever wrote them, so its bytes are
memory, not ephemeral storage: ``IsLocalEphemeralVolume`` (gitRepo, a disk emptyDir, configMap)
decides which volumes the pod's ``ephemeral-storage`` statistics and its limit eviction count.

Pure logic; neighbours: ``podconfig._prepare_volume`` (mounts the tmpfs with this size),
``podcgroup.resource_config_for_pod`` (the pod's memory limit), ``stats._pod`` and
``pressure.PressureMonitor`` (the accounting). Unit-tested in
``tests/unit/test_agent_memory_volumes.py``.
"""

from __future__ import annotations

from typing import Any, Mapping

from controlplane.agent.podcgroup import resource_config_for_pod
from controlplane.machinery.quantity import bytes_

# the API data volumes whose wrapped emptyDir the kubelet gives medium Memory
MEMORY_BACKED_API_DATA = ("secret", "downwardAPI", "projected")


def is_memory_backed(volume: Mapping[str, Any]) -> bool:
    """Does the kubelet put this pod volume on a tmpfs?"""
    ed = volume.get("emptyDir")
    if isinstance(ed, dict) and ed.get("medium") == "Memory":
        return True
    return any(k in volume for k in MEMORY_BACKED_API_DATA)


def is_local_ephemeral(volume: Mapping[str, Any]) -> bool:
    """``IsLocalEphemeralVolume``: the volumes whose bytes are the pod's ephemeral storage."""
    ed = volume.get("emptyDir")
    return "gitRepo" in volume or "configMap" in volume or \
        (isinstance(ed, dict) and not ed.get("medium")) or ("emptyDir" in volume and ed is None)


def _bytes(q: Any) -> int | None:
    try:
        return bytes_(str(q))
    except (ValueError, ZeroDivisionError):
        return None


def memory_backed_size(spec: Mapping[str, Any], allocatable_memory: Any, size_limit: Any = None) -> int | None:
    """``calculateEmptyDirMemorySize``: the tmpfs size in bytes of a memory-backed volume of a
    pod with this spec, on a node with this allocatable memory (a quantity; None when unknown),
    with the emptyDir's ``sizeLimit`` (None for the API data volumes). None: no size option
    (the kernel's default), as the kubelet mounts a tmpfs whose computed size is not positive."""
    size = _bytes(allocatable_memory) if allocatable_memory is not None else None
    pod_limit = resource_config_for_pod(spec).memory_limit_bytes
    if pod_limit is not None and pod_limit > 0 and (size is None or pod_limit <= size):
        size = pod_limit
    volume_limit = _bytes(size_limit) if size_limit is not None else None
    if volume_limit is not None and volume_limit > 0 and (size is None or volume_limit <= size):
        size = volume_limit
    return size if size is not None and size > 0 else None
