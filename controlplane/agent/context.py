"""What the parts of the node agent share: its configuration (``AgentConfig``) and the
``NodeContext`` they are handed (the API client, the container runtime, the image manager,
metrics, Events and task ownership), so that ``node``, ``pod_worker``/``containers`` and
``server`` depend on this small interface rather than on ``agent.Agent``, which implements it
and owns them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controlplane.agent.eviction import DEFAULT_EVICTION_HARD
from controlplane.agent.metrics import AgentMetrics
from controlplane.client.informer import Informer
from controlplane.agent.tokens import TokenManager
from controlplane.client.rest import RestClient
from controlplane.images.manager import ImageManager
from controlplane.runtime.interface import ContainerRuntime


@dataclass
class AgentConfig:
    node: str
    root: Path
    host_id: str = ""  # key of host-level names (cgroups, netns); "" = the node name
    address: str = "127.0.0.1"
    port: int = 0  # log/exec server; 0 = a free port
    # the endpoint's TLS: serving certificate and the CA client certificates must chain to;
    # callers are authenticated (client certificate or TokenReview) and authorized
    # (SubjectAccessReview on nodes/<subresource>) through the apiserver (auth.DelegatedAuth)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    registry_ssl: Any = None  # TLS context for https registry mirrors (the node's client certificate)
    registry_mirrors: list[str] = field(default_factory=list)
    host_path_root: Path | None = None
    capacity: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    pod_cidr: str | None = None  # standalone: register with this spec.podCIDR (else the node IPAM controller's)
    cluster_cidr: str = "10.42.0.0/16"
    service_cidr: str = "10.43.0.0/16"
    cluster_dns: list[str] | None = None  # default: the 10th address of the service CIDR
    cluster_domain: str = "cluster.local"
    resolv_conf: str = "/etc/resolv.conf"  # the host's, for dnsPolicy Default ("" for none)
    proxy: bool = True  # run the service proxy with the agent
    proxy_kubeconfig: Path | None = None  # the proxy's own identity (system:kube-proxy); None: the node's
    lease_duration: float = 40.0
    lease_interval: float = 10.0
    status_interval: float = 10.0
    backoff_initial: float = 10.0
    backoff_cap: float = 300.0
    image_backoff_initial: float = 10.0
    image_retry: float = 2.0
    pod_pids_limit: int | None = None  # --pod-max-pids: the pod cgroup's pids.max (None: unlimited)
    cleanup_on_exit: bool = True
    volume_refresh: float = 30.0  # ConfigMap/Secret volumes re-synced this often
    storage_sweep: float = 10.0  # local-path volume directories of deleted volumes removed this often
    shutdown_grace: float = 10.0  # graceful node shutdown: pods get at most this long
    eviction_hard: str = DEFAULT_EVICTION_HARD  # --eviction-hard
    eviction_pressure_transition: float = 300.0  # --eviction-pressure-transition-period
    eviction_interval: float = 10.0  # the eviction manager's monitoring period
    kube_reserved: str = ""  # --kube-reserved cpu=100m,memory=100Mi
    system_reserved: str = ""
    seccomp_default: bool = False  # --seccomp-default: RuntimeDefault for containers that set no profile
    seccomp_profile_root: Path | None = None  # --seccomp-profile-root (Localhost profiles); None: <root>/seccomp
    allowed_unsafe_sysctls: list[str] = field(default_factory=list)  # --allowed-unsafe-sysctls patterns


class NodeContext(Protocol):
    """The agent as its parts see it (``agent.Agent`` implements it)."""

    cfg: AgentConfig
    client: RestClient
    runtime: ContainerRuntime
    images: ImageManager
    metrics: AgentMetrics
    server_port: int  # the log/exec endpoint's port, known once the server listens
    services: Informer  # every Service (environment variables of new containers)
    network_ready: bool  # the pod network is set up (the node reports Ready only then)
    tokens: TokenManager  # ServiceAccount tokens for projected volumes

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``coro`` as a task the agent owns (cancelled when it stops)."""
        ...

    def event(self, obj: dict, etype: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (best effort, never raises)."""
        ...

    def allocatable(self) -> dict[str, str]:
        """The node's allocatable resources now (the downward API's default limits)."""
        ...
