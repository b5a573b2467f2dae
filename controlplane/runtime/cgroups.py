"""cgroup helpers: paths, statistics, OOM events, cleanup, for cgroup v1 (with or without the
hybrid cgroup2 mount) and for a pure cgroup v2 machine.

runc creates a container's cgroup from ``cgroupsPath`` under every mounted hierarchy and
removes that leaf on ``runc delete``; the parents (``/controlplane/<node>/pod<uid>``) are ours
to remove. ``read(path)`` gives one cgroup's statistics the way cAdvisor reads them (CPU usage,
memory usage / working set / RSS / page faults, OOM kills, PIDs, limits) from whichever
hierarchy carries the controller: v1 when ``/sys/fs/cgroup/memory`` is a v1 hierarchy, else
the unified v2 tree. Read by ``runc.py`` (OOM check before delete, stats) and the agent's
stats provider (``controlplane/agent/stats.py``).

The pod cgroup itself is created by ``ensure_pod`` with the kubelet's pod resource config
(``PodResourceConfig``, computed by ``controlplane/agent/podcgroup.py`` as the kubelet's
``ResourceConfigForPod``) before the pod's first container: v1 ``cpu.shares`` /
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` and ``memory.limit_in_bytes``; v2 ``cpu.weight``
/ ``cpu.max`` / ``memory.max`` with the controllers enabled down from the root.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from controlplane import hostcleanup

CGROUP_ROOT = Path(os.environ.get("CONTROLPLANE_CGROUP_ROOT", "/sys/fs/cgroup"))
PREFIX = "controlplane"


def hierarchies() -> list[Path]:
    """Every mounted hierarchy root (v1 controllers, named ones, and the unified mount)."""
    out = []
    try:
        for p in sorted(CGROUP_ROOT.iterdir()):
            if p.is_dir() and (p / "cgroup.procs").exists():
                out.append(p)
    except OSError:
        pass
    return out


def node_path(node: str) -> str:
    return f"/{PREFIX}/{node}"


def pod_path(node: str, pod_uid: str) -> str:
    return f"{node_path(node)}/pod{pod_uid}"


def container_path(node: str, pod_uid: str, cid: str) -> str:
    return f"{pod_path(node, pod_uid)}/{cid}"


# --- the pod cgroup (the kubelet's pod container manager) ---------------------------------

MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
QUOTA_PERIOD_US = 100_000
MIN_QUOTA_PERIOD_US = 1000


@dataclass(frozen=True)
class PodResourceConfig:
    """The kubelet's ``cm.ResourceConfig`` for a pod cgroup; None leaves the kernel's default
    (no quota, no memory limit)."""

    cpu_shares: int = MIN_SHARES
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None  # pids.max (the kubelet's podPidsLimit); None: unlimited


def milli_cpu_to_shares(milli: int) -> int:
    """``MilliCPUToShares``: 1024 per CPU, clamped to [2, 262144] (0 gives the minimum)."""
    if milli <= 0:
        return MIN_SHARES
    return min(MAX_SHARES, max(MIN_SHARES, milli * SHARES_PER_CPU // 1000))


def milli_cpu_to_quota(milli: int, period_us: int = QUOTA_PERIOD_US) -> int:
    """``MilliCPUToQuota``: microseconds per period, at least 1 ms; 0 for no limit."""
    if milli <= 0:
        return 0
    return max(MIN_QUOTA_PERIOD_US, milli * period_us // 1000)


def shares_to_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` from v1 shares, the kubelet's ``getCPUWeight`` (runc's
    conversion): [2, 262144] maps onto [1, 10000]."""
    if shares >= MAX_SHARES:
        return 10000
    return 1 + (max(shares, MIN_SHARES) - MIN_SHARES) * 9999 // (MAX_SHARES - MIN_SHARES)


def v1_settings(cfg: PodResourceConfig) -> list[tuple[str, str, str]]:
    """(hierarchy, file, value) to write on cgroup v1, in order (period before quota)."""
    out = [("cpu", "cpu.shares", str(cfg.cpu_shares))]
    if cfg.cpu_period_us is not None:
        out.append(("cpu", "cpu.cfs_period_us", str(cfg.cpu_period_us)))
    if cfg.cpu_quota_us is not None:
        out.append(("cpu", "cpu.cfs_quota_us", str(cfg.cpu_quota_us)))
    if cfg.memory_limit_bytes is not None:
        out.append(("memory", "memory.limit_in_bytes", str(cfg.memory_limit_bytes)))
    if cfg.pids_limit is not None:
        out.append(("pids", "pids.max", str(cfg.pids_limit)))
    return out


def v2_settings(cfg: PodResourceConfig) -> list[tuple[str, str]]:
    """(file, value) to write on cgroup v2 (libcontainer's fs2 ``setCpu``/``setMemory``)."""
    out = [("cpu.weight", str(shares_to_weight(cfg.cpu_shares)))]
    if cfg.cpu_quota_us is not None or cfg.cpu_period_us is not None:
        quota = str(cfg.cpu_quota_us) if cfg.cpu_quota_us and cfg.cpu_quota_us > 0 else "max"
        out.append(("cpu.max", f"{quota} {cfg.cpu_period_us or QUOTA_PERIOD_US}"))
    if cfg.memory_limit_bytes is not None:
        out.append(("memory.max", str(cfg.memory_limit_bytes)))
    if cfg.pids_limit is not None:
        out.append(("pids.max", str(cfg.pids_limit)))
    return out


def ensure_pod(node: str, pod_uid: str, cfg: PodResourceConfig, root: Path | None = None) -> str:
    """Create the pod cgroup (or reuse it: an existing one is updated) with ``cfg``, in the
    hierarchies the settings need; runc creates the rest with the first container. Blocking
    file writes: call it in a thread. Raises OSError when the kernel refuses a value.
    Returns the pod's cgroup path."""
    root = root or CGROUP_ROOT
    path = pod_path(node, pod_uid)
    rel = path.strip("/")
    if is_v2(root):
        _enable_controllers(root, rel, {"cpu", "memory"} | ({"pids"} if cfg.pids_limit is not None else set()))
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for name, value in v2_settings(cfg):
            (d / name).write_text(value)
        return path
    for hierarchy, name, value in v1_settings(cfg):
        d = root / hierarchy / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(value)
    return path


def _enable_controllers(root: Path, rel: str, wanted: set[str]) -> None:
    """On v2 a controller's files exist in a cgroup only when its parent lists it in
    ``cgroup.subtree_control``: enable ``wanted`` (those the parent has) from the root down
    to the pod's parent, creating our own directories on the way, as runc does."""
    parent = root
    for part in rel.split("/"):
        available = set((_read(parent / "cgroup.controllers") or "").split())
        enabled = set((_read(parent / "cgroup.subtree_control") or "").split())
        missing = sorted((wanted & available) - enabled)
        if missing:
            (parent / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))
        parent = parent / part
        parent.mkdir(exist_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def oom_kills(cg_path: str) -> int:
    """The memory cgroup's OOM-kill count (v1 ``memory.oom_control``, v2 ``memory.events``
    ``oom_kill``), 0 if gone."""
    if is_v2():
        return _kv(_read(CGROUP_ROOT / cg_path.lstrip("/") / "memory.events")).get("oom_kill", 0)
    return _kv(_read(CGROUP_ROOT / "memory" / cg_path.lstrip("/") / "memory.oom_control")).get("oom_kill", 0)


def stats(cg_path: str) -> tuple[int, int, int]:
    """(cpu usage ns, memory working set bytes, pids) of one cgroup; zeros when absent."""
    st = read(cg_path)
    return (st.cpu_usage_ns, st.working_set_bytes, st.pids) if st else (0, 0, 0)


# --- statistics (cAdvisor's reading of a cgroup) ------------------------------------------

UNLIMITED = 1 << 62  # v1 reports "no limit" as a page-rounded 2^63-1


@dataclass
class CgroupStats:
    """One cgroup at one instant. ``working_set_bytes`` is cAdvisor's: usage minus inactive
    file pages (never below zero); ``memory_limit_bytes`` None when unlimited."""

    cpu_usage_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0
    memory_usage_bytes: int = 0
    working_set_bytes: int = 0
    rss_bytes: int = 0
    cache_bytes: int = 0
    page_faults: int = 0
    major_page_faults: int = 0
    oom_events: int = 0
    pids: int = 0
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


def _kv(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    t = text.strip()
    if t == "max":
        return None
    try:
        return int(t)
    except ValueError:
        return None


def is_v2(root: Path | None = None) -> bool:
    """True on a pure cgroup v2 machine (no v1 memory hierarchy, controllers at the root)."""
    root = root or CGROUP_ROOT
    return not (root / "memory" / "memory.stat").exists() and (root / "cgroup.controllers").exists()


def read(cg_path: str, root: Path | None = None) -> CgroupStats | None:
    """Statistics of ``cg_path`` (``/`` for the root), or None when the cgroup does not exist."""
    root = root or CGROUP_ROOT
    return _read_v2(root, cg_path) if is_v2(root) else _read_v1(root, cg_path)


def _read_v1(root: Path, cg_path: str) -> CgroupStats | None:
    rel = cg_path.strip("/")
    mem_dir = root / "memory" / rel
    usage = _int(_read(mem_dir / "memory.usage_in_bytes"))
    cpu = _int(_read(root / "cpuacct" / rel / "cpuacct.usage"))
    if usage is None and cpu is None:
        return None
    ms = _kv(_read(mem_dir / "memory.stat"))
    inactive = ms.get("total_inactive_file", ms.get("inactive_file", 0))
    usage = usage or 0
    st = CgroupStats(cpu_usage_ns=cpu or 0, memory_usage_bytes=usage, working_set_bytes=max(0, usage - inactive),
                     rss_bytes=ms.get("total_rss", ms.get("rss", 0)), cache_bytes=ms.get("total_cache", ms.get("cache", 0)),
                     page_faults=ms.get("total_pgfault", ms.get("pgfault", 0)),
                     major_page_faults=ms.get("total_pgmajfault", ms.get("pgmajfault", 0)))
    ca = _kv(_read(root / "cpuacct" / rel / "cpuacct.stat"))  # USER_HZ ticks
    tick = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
    st.cpu_user_ns, st.cpu_system_ns = ca.get("user", 0) * tick, ca.get("system", 0) * tick
    cs = _kv(_read(root / "cpu" / rel / "cpu.stat"))
    st.throttled_periods, st.throttled_ns = cs.get("nr_throttled", 0), cs.get("throttled_time", 0)
    st.oom_events = _kv(_read(mem_dir / "memory.oom_control")).get("oom_kill", 0)
    lim = _int(_read(mem_dir / "memory.limit_in_bytes"))
    st.memory_limit_bytes = lim if lim is not None and lim < UNLIMITED else None
    st.pids = _int(_read(root / "pids" / rel / "pids.current")) or 0
    st.pids_limit = _int(_read(root / "pids" / rel / "pids.max"))
    return st


def _read_v2(root: Path, cg_path: str) -> CgroupStats | None:
    d = root / cg_path.strip("/")
    cpu = _kv(_read(d / "cpu.stat"))
    usage = _int(_read(d / "memory.current"))
    if not cpu and usage is None:
        if not d.is_dir():
            return None
    ms = _kv(_read(d / "memory.stat"))
    if usage is None and cg_path.strip("/") == "":  # the root has no memory.current: use /proc/meminfo
        mi = meminfo()
        usage = mi.get("MemTotal", 0) - mi.get("MemFree", 0)
    usage = usage or 0
    st = CgroupStats(cpu_usage_ns=cpu.get("usage_usec", 0) * 1000, cpu_user_ns=cpu.get("user_usec", 0) * 1000,
                     cpu_system_ns=cpu.get("system_usec", 0) * 1000, throttled_periods=cpu.get("nr_throttled", 0),
                     throttled_ns=cpu.get("throttled_usec", 0) * 1000, memory_usage_bytes=usage,
                     working_set_bytes=max(0, usage - ms.get("inactive_file", 0)), rss_bytes=ms.get("anon", 0),
                     cache_bytes=ms.get("file", 0), page_faults=ms.get("pgfault", 0),
                     major_page_faults=ms.get("pgmajfault", 0))
    st.oom_events = _kv(_read(d / "memory.events")).get("oom_kill", 0)
    st.memory_limit_bytes = _int(_read(d / "memory.max"))
    st.pids = _int(_read(d / "pids.current")) or 0
    st.pids_limit = _int(_read(d / "pids.max"))
    return st


def process_count(cg_path: str, root: Path | None = None) -> int:
    """Processes (thread-group leaders) in ``cg_path`` and its descendants."""
    return len(pids(cg_path, root))


def pids(cg_path: str, root: Path | None = None) -> list[int]:
    """The processes in ``cg_path`` and its descendants (the pids hierarchy on v1)."""
    root = root or CGROUP_ROOT
    base = root / cg_path.strip("/") if is_v2(root) else root / "pids" / cg_path.strip("/")
    out: list[int] = []
    for d, _, files in os.walk(base):
        if "cgroup.procs" in files:
            out += [int(x) for x in (_read(Path(d) / "cgroup.procs") or "").split() if x.isdigit()]
    return out


def kill_all(cg_path: str, root: Path | None = None) -> list[int]:
    """SIGKILL every process of a container's cgroup (the last resort when ``runc kill`` did
    not end it: only processes inside a cgroup this agent created). Returns the pids
    signalled."""
    root = root or CGROUP_ROOT
    found = pids(cg_path, root)
    if is_v2(root) and (root / cg_path.strip("/") / "cgroup.kill").exists():
        try:
            (root / cg_path.strip("/") / "cgroup.kill").write_text("1")
            return found
        except OSError:
            pass
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return found


def proc_state(pid: int) -> str:
    """``/proc/PID/stat``'s state letter and command (``D (sleep)``), or ``gone``."""
    text = _read(Path(f"/proc/{pid}/stat"))
    if not text:
        return "gone"
    comm_end = text.rfind(")")
    return f"{text[comm_end + 2:comm_end + 3]} {text[text.find('('):comm_end + 1]}"


def meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (_read(Path("/proc/meminfo")) or "").splitlines():
        k, _, v = line.partition(":")
        parts = v.split()
        if parts:
            out[k] = int(parts[0]) * 1024
    return out


def remove_tree(cg_path: str) -> list[str]:
    """rmdir ``cg_path`` and its (empty) descendants in every hierarchy; returns leftovers."""
    left: list[str] = []
    rel = cg_path.lstrip("/")
    for h in hierarchies():
        top = h / rel
        if not top.exists():
            continue
        dirs = sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
        for d in dirs:
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


def existing(cg_path: str) -> list[str]:
    rel = cg_path.lstrip("/")
    return [str(h / rel) for h in hierarchies() if (h / rel).exists()]


def remove_if_empty(cg_path: str) -> None:
    """rmdir one directory in every hierarchy if it has no children (shared parents)."""
    for h in hierarchies():
        try:
            (h / cg_path.lstrip("/")).rmdir()
        except OSError:
            pass


async def _down_remove(inst: hostcleanup.Instance) -> None:
    remove_tree(node_path(inst.host_id))
    remove_if_empty("/" + PREFIX)


hostcleanup.register("cgroups", _down_remove, lambda inst: existing(node_path(inst.host_id)), order=50)
