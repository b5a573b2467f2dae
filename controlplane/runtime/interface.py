"""The runtime interface the node agent talks to (a small CRI): sandboxes and containers.

A *sandbox* is a pod's shared environment (network namespace, hostname, pod directory); a
*container* is one process tree with its own rootfs and cgroup inside a sandbox.
``controlplane.runtime.runc`` implements it with real runc; the simulated agent of the
scheduler work implements it without processes. Callers: ``controlplane.agent``.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from controlplane.runtime.cgroups import CgroupStats, PodResourceConfig
from controlplane.runtime.netstats import NetDev
from controlplane.runtime.stdio import AttachSession


class RuntimeError_(Exception):
    """A runtime operation failed; ``reason`` is the Kubernetes-style reason to report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Mount:
    destination: str
    source: str
    readonly: bool = False
    type: str = "bind"


@dataclass
class SandboxSpec:
    uid: str
    name: str
    namespace: str
    hostname: str
    pod_dir: Path | None = None
    port_mappings: list[dict] = field(default_factory=list)  # CNI portMappings (hostPort)
    resolv_conf: str | None = None  # the pod's /etc/resolv.conf (None: no nameserver lines)
    hosts: "Callable[[str | None], str] | None" = None  # /etc/hosts from the pod IP
    resources: PodResourceConfig | None = None  # the pod cgroup's limits (None: runc makes a bare one)


@dataclass
class Sandbox:
    id: str
    uid: str
    hostname: str
    netns: str  # path of the network namespace
    ip: str | None
    pod_dir: Path


@dataclass
class ContainerSpec:
    name: str
    rootfs: Path  # unpacked image root, used read-only as the overlay's lower layer
    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    mounts: list[Mount] = field(default_factory=list)
    memory_limit: int | None = None  # bytes
    cpu_limit_milli: int | None = None
    cpu_request_milli: int | None = None
    pids_limit: int | None = None
    attempt: int = 0
    log_path: Path | None = None
    stdin: bool = False  # keep the container's stdin open for attach
    stdin_once: bool = False  # close it when the first attach session that used it ends
    tty: bool = False  # run on a terminal (runc ``terminal: true``)
    pid_namespace: str | None = None  # join this PID namespace (an ephemeral container's target), else a new one
    additional_gids: list[int] = field(default_factory=list)  # process.user.additionalGids
    no_new_privileges: bool = False  # allowPrivilegeEscalation: false
    seccomp: dict | None = None  # a containers/common (or OCI) profile to apply; None: unconfined
    sysctls: dict[str, str] = field(default_factory=dict)  # the pod's sysctls (linux.sysctl)


@dataclass
class ContainerStatus:
    id: str
    name: str
    state: str  # created | running | exited | unknown
    pid: int = 0
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False
    reason: str = ""
    message: str = ""
    log_path: Path | None = None


@dataclass
class ContainerStats:
    """CRI's ContainerStats: the cgroup's counters (``cgroup`` has them all), the writable
    layer's use, and when they were read (``timestamp``, seconds since the epoch)."""

    cpu_usage_ns: int = 0
    memory_bytes: int = 0  # working set
    pids: int = 0
    cgroup: CgroupStats | None = None
    writable_layer_bytes: int | None = None
    writable_layer_inodes: int | None = None
    timestamp: float = 0.0


@dataclass
class SandboxStats:
    """CRI's PodSandboxStats: the pod cgroup, the pod network namespace's interfaces and the
    number of processes in the pod."""

    cgroup: CgroupStats | None = None
    network: dict[str, NetDev] = field(default_factory=dict)
    processes: int = 0
    timestamp: float = 0.0


class ContainerRuntime(abc.ABC):
    """What the agent needs from a runtime. All methods are coroutines (never block the loop)."""

    @abc.abstractmethod
    async def create_sandbox(self, spec: SandboxSpec) -> Sandbox: ...

    @abc.abstractmethod
    async def remove_sandbox(self, sandbox: Sandbox) -> None: ...

    @abc.abstractmethod
    async def create_container(self, sandbox: Sandbox, spec: ContainerSpec) -> str: ...

    @abc.abstractmethod
    async def start_container(self, cid: str) -> None: ...

    @abc.abstractmethod
    async def stop_container(self, cid: str, grace: float) -> ContainerStatus: ...

    @abc.abstractmethod
    async def kill_container(self, cid: str, sig: int) -> None: ...

    @abc.abstractmethod
    async def remove_container(self, cid: str) -> None: ...

    @abc.abstractmethod
    def status(self, cid: str) -> ContainerStatus: ...

    @abc.abstractmethod
    async def wait(self, cid: str) -> ContainerStatus: ...

    @abc.abstractmethod
    async def exec_sync(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, bytes, bytes]: ...

    @abc.abstractmethod
    async def exec_process(self, cid: str, cmd: list[str], stdin: bool) -> asyncio.subprocess.Process: ...

    async def exec_tty(self, cid: str, cmd: list[str], rows: int = 24,
                       cols: int = 80) -> tuple[asyncio.subprocess.Process, int]:
        """Run ``cmd`` on a terminal; returns the process and the pty master fd (caller closes)."""
        raise RuntimeError_("NotSupported", "this runtime cannot allocate a terminal")

    async def attach(self, cid: str) -> AttachSession:
        """A session on the standard streams of a running container (``kubectl attach``)."""
        raise RuntimeError_("NotSupported", "this runtime cannot attach to containers")

    @abc.abstractmethod
    def log_path(self, cid: str) -> Path | None: ...

    @abc.abstractmethod
    async def stats(self, cid: str) -> ContainerStats: ...

    async def sandbox_stats(self, sandbox: Sandbox) -> SandboxStats:
        """Statistics of a pod sandbox (a runtime without cgroups or namespaces reports none)."""
        return SandboxStats()

    @abc.abstractmethod
    def list_containers(self) -> list[ContainerStatus]: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop and remove everything this runtime created (agent shutdown, tests)."""
