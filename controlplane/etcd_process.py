"""Runs an embedded etcd as a child process (``controlplane up`` and the test fixtures).

etcd 3.4 from apt: data under ``<data_dir>/etcd``, client and peer URLs on loopback, stopped
with SIGTERM (then SIGKILL) when the owner exits. Restarting on the same data dir keeps data.

With ``tls`` (an ``EtcdTLS``: the files ``pki.ClusterPKI`` writes under ``pki/etcd/``) both
URLs are https and etcd requires a client certificate signed by the etcd CA on both
(``--client-cert-auth``, ``--peer-client-cert-auth``): a client without one is refused.

Members of a cluster (docs/reliability.md, "HA"): ``name`` is the member's name, ``host`` the
address it advertises (client and peer URLs; it listens on loopback too, for local clients),
``initial_cluster``/``initial_cluster_state`` are etcd's flags of a first start (``existing``
when joining a cluster through the member add API); later starts read the member from the
data dir and ignore them, as etcd does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.log import get_logger
from controlplane.procutil import die_with_parent, terminate

log = get_logger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    path = shutil.which("etcd") or ("/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)
    if not path:
        raise RuntimeError("etcd not found: apt-get install -y etcd-server (or run `make install`)")
    return path


@dataclass
class EtcdTLS:
    """Certificate files of a TLS etcd: its CA, serving and peer pairs, and a client pair
    (the apiserver's) used for the health check and handed to clients (``client_options``)."""

    ca: Path
    cert: Path
    key: Path
    peer_cert: Path
    peer_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def from_pki(cls, pki_dir: Path) -> "EtcdTLS":
        d = Path(pki_dir)
        return cls(ca=d / "etcd/ca.crt", cert=d / "etcd/server.crt", key=d / "etcd/server.key",
                   peer_cert=d / "etcd/peer.crt", peer_key=d / "etcd/peer.key",
                   client_cert=d / "apiserver-etcd-client.crt", client_key=d / "apiserver-etcd-client.key")

    def ssl_context(self):  # type: ignore[no-untyped-def]
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def client_args(self) -> list[str]:
        """``controlplane apiserver`` flags for this etcd's client certificate."""
        return ["--etcd-cafile", str(self.ca), "--etcd-certfile", str(self.client_cert),
                "--etcd-keyfile", str(self.client_key)]

    def backend_kwargs(self) -> dict[str, str]:
        """``EtcdBackend(endpoints, **tls.backend_kwargs())``."""
        return {"cafile": str(self.ca), "certfile": str(self.client_cert), "keyfile": str(self.client_key)}

    def etcdctl_args(self) -> list[str]:
        return ["--cacert", str(self.ca), "--cert", str(self.client_cert), "--key", str(self.client_key)]


@dataclass
class EtcdProcess:
    """An etcd child process. ``endpoint`` is its client URL once started."""

    data_dir: Path
    client_port: int = 0
    peer_port: int = 0
    name: str = "controlplane"
    tls: EtcdTLS | None = None
    tied_to_parent: bool = False  # PR_SET_PDEATHSIG: etcd dies with the process that started it
    metrics_port: int = 0  # >0: /metrics (and /health) also on plain http://127.0.0.1:PORT (kubeadm's 2381)
    host: str = "127.0.0.1"  # the advertised address (client and peer URLs)
    initial_cluster: str = ""  # name=peerURL,...: "" = a new cluster of this member alone
    initial_cluster_state: str = "new"  # "existing": joining through the member add API
    extra_args: list[str] = field(default_factory=list)  # e.g. --force-new-cluster (cluster reset)
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def endpoint(self) -> str:
        """The advertised client URL."""
        return f"{self.scheme}://{self.host}:{self.client_port}"

    @property
    def local_endpoint(self) -> str:
        """The client URL on loopback (this machine's clients)."""
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    def backend_kwargs(self) -> dict[str, str]:
        """What ``EtcdBackend`` needs to reach this etcd (TLS files; nothing for plain http)."""
        return self.tls.backend_kwargs() if self.tls is not None else {}

    def etcdctl_args(self) -> list[str]:
        return ["--endpoints", self.local_endpoint, *(self.tls.etcdctl_args() if self.tls is not None else [])]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.peer_port}"

    def _args(self) -> list[str]:
        listen = self.endpoint if self.endpoint == self.local_endpoint else f"{self.local_endpoint},{self.endpoint}"
        return [
            etcd_binary(),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", listen,
            "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
            "--initial-cluster-state", self.initial_cluster_state,
            "--quota-backend-bytes", str(8 * 1024**3),
            "--max-request-bytes", str(4 * 1024**2),
            "--logger", "zap",
            "--log-level", "error",
            *(["--listen-metrics-urls", self.metrics_url] if self.metrics_port else []),
            *self._tls_args(),
            *self.extra_args,
        ]

    def _tls_args(self) -> list[str]:
        t = self.tls
        if t is None:
            return []
        return ["--cert-file", str(t.cert), "--key-file", str(t.key), "--trusted-ca-file", str(t.ca),
                "--client-cert-auth",
                "--peer-cert-file", str(t.peer_cert), "--peer-key-file", str(t.peer_key),
                "--peer-trusted-ca-file", str(t.ca), "--peer-client-cert-auth"]

    def spawn(self) -> None:
        """Start the process (ports picked on the first start and kept for restarts)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.client_port:
            self.client_port = free_port()
        if not self.peer_port:
            self.peer_port = free_port()
        logf = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")
        self.proc = subprocess.Popen(
            self._args(), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "ETCD_UNSUPPORTED_ARCH": os.environ.get("ETCD_UNSUPPORTED_ARCH", "")},
            preexec_fn=die_with_parent() if self.tied_to_parent else None,
        )
        logf.close()

    def start_sync(self, timeout: float = 15.0) -> None:
        """Start etcd and block until it answers (for synchronous callers such as fixtures)."""
        self.spawn()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 15.0) -> None:
        import time
        import urllib.request

        assert self.proc is not None
        deadline = time.monotonic() + timeout
        ctx = self.tls.ssl_context() if self.tls is not None else None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; see {self.data_dir}.log")
            try:
                with urllib.request.urlopen(self.local_endpoint + "/health", timeout=1, context=ctx) as r:
                    if b'"health":"true"' in r.read():
                        log.info("etcd ready", endpoint=self.endpoint, data_dir=str(self.data_dir))
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"etcd did not become healthy within {timeout}s")

    async def start(self, timeout: float = 15.0) -> None:
        """Spawn from the calling (event loop) thread, so ``tied_to_parent`` follows the
        owner's life rather than a pool thread's, then wait for health off the loop."""
        self.spawn()
        await asyncio.to_thread(self.wait_healthy, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        terminate(self.proc, timeout)
        log.info("etcd stopped", endpoint=self.endpoint)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
