"""OCI runtime-spec ``config.json`` generation for one container (pure; unit-tested).

Turns a ``ContainerSpec`` plus its sandbox into the bundle config runc reads: process
(args, env, cwd, user with its additional groups, capabilities, noNewPrivileges), root (read-only when asked), mounts (proc, dev, sys,
volumes, /etc/hostname|hosts|resolv.conf of the pod), namespaces (the pod's network namespace
shared by path, the target's PID namespace for an ephemeral container that names one; fresh
pid/ipc/uts/mount otherwise), hostname, ``linux.resources`` from the limits, ``linux.sysctl``
and ``linux.seccomp`` (``seccomp.to_oci`` of the chosen profile for the container's
capabilities; none for a privileged container, as containerd).
Neighbours: ``runc.py`` writes the file; ``cgroups.py`` knows the same cgroup path.
"""

from __future__ import annotations

from typing import Any

from controlplane.runtime import seccomp
from controlplane.runtime.interface import ContainerSpec, Sandbox

# Docker's / containerd's default capability set (what Kubernetes containers get).
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPS = DEFAULT_CAPS + [
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
]
CPU_PERIOD_US = 100_000
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def normalize_cap(name: str) -> str:
    n = name.upper()
    return n if n.startswith("CAP_") else "CAP_" + n


def capabilities(spec: ContainerSpec) -> list[str]:
    """The effective capability set: defaults + add - drop (``ALL`` understood both ways)."""
    if spec.privileged:
        return list(ALL_CAPS)
    drop = {normalize_cap(c) for c in spec.cap_drop}
    caps = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    for c in spec.cap_add:
        nc = normalize_cap(c)
        if nc == "CAP_ALL":
            caps = list(ALL_CAPS)
        elif nc not in caps:
            caps.append(nc)
    return caps


def cpu_shares(request_milli: int | None, limit_milli: int | None) -> int:
    """Kubernetes' MilliCPUToShares: requests (or limits when no request) * 1024 / 1000, min 2."""
    milli = request_milli if request_milli is not None else limit_milli
    if not milli:
        return 2
    return max(2, milli * 1024 // 1000)


def resources(spec: ContainerSpec) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if spec.memory_limit:
        # swap == limit means "no swap"; the kernel OOM-kills at the limit.
        res["memory"] = {"limit": spec.memory_limit, "swap": spec.memory_limit}
    cpu: dict[str, Any] = {"shares": cpu_shares(spec.cpu_request_milli, spec.cpu_limit_milli)}
    if spec.cpu_limit_milli:
        cpu["quota"] = max(1000, spec.cpu_limit_milli * CPU_PERIOD_US // 1000)
        cpu["period"] = CPU_PERIOD_US
    res["cpu"] = cpu
    if spec.pids_limit:
        res["pids"] = {"limit": spec.pids_limit}
    return res


def build_config(spec: ContainerSpec, sandbox: Sandbox, rootfs: str, cgroups_path: str) -> dict[str, Any]:
    caps = capabilities(spec)
    env = list(spec.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={sandbox.hostname}")
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    for name in ("hostname", "hosts", "resolv.conf"):
        src = sandbox.pod_dir / "etc" / name
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": str(src),
                       "options": ["rbind", "rprivate", "ro" if spec.readonly_rootfs else "rw"]})
    for m in spec.mounts:
        opts = ["rbind", "rprivate"] + (["ro"] if m.readonly else [])
        mounts.append({"destination": m.destination, "type": "bind", "source": m.source, "options": opts})
    user: dict[str, Any] = {"uid": spec.uid, "gid": spec.gid}
    if spec.additional_gids:
        user["additionalGids"] = list(spec.additional_gids)
    linux: dict[str, Any] = {
        "cgroupsPath": cgroups_path,
        "resources": resources(spec),
        "namespaces": [
            {"type": "pid", "path": spec.pid_namespace} if spec.pid_namespace else {"type": "pid"},
            {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": sandbox.netns},
        ],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    if spec.sysctls:
        linux["sysctl"] = dict(spec.sysctls)
    if spec.seccomp is not None and not spec.privileged:
        filt = seccomp.to_oci(spec.seccomp, caps)
        if filt is not None:
            linux["seccomp"] = filt
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.tty,
            "user": user,
            "args": list(spec.args),
            "env": env,
            "cwd": spec.cwd or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": spec.no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": rootfs, "readonly": spec.readonly_rootfs},
        "hostname": sandbox.hostname,
        "mounts": mounts,
        "linux": linux,
    }
