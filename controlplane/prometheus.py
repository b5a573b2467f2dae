"""The real Prometheus (``/usr/bin/prometheus`` from apt) as a child of ``controlplane up
--prometheus``, on the scrape configuration and alerting rules of ``manifests/prometheus/``.

``PrometheusProcess.start`` copies the configuration to ``DATA_DIR/prometheus/`` (the global
scrape and evaluation intervals and the rules directory can be replaced), copies its
identity there (``tls/ca.crt``, ``tls/client.crt``, ``tls/client.key``: the cluster CA and
the ``system:prometheus`` client certificate in group ``system:monitoring``, which the
apiserver's RBAC lets read ``/metrics`` and the agents' ``nodes/metrics``), writes the
file-discovery target lists (``targets/<job>.json``) from what ``up`` knows -- the apiserver's
port, etcd's metrics URL (plain loopback, as kubeadm listens), the metrics ports the components wrote to
``DATA_DIR/<component>.metrics-port`` (HTTPS with delegated authn/authz: the controller-manager,
the scheduler and the metrics-server ask the apiserver whether ``system:prometheus`` may
``get /metrics``) -- and
starts Prometheus with its TSDB under ``DATA_DIR/prometheus/data``, on a free loopback port
(written to ``DATA_DIR/prometheus.port``). A refresh task rewrites the targets every few
seconds: components restarted on new ports, and the kubelet targets from the cluster's Node
list (InternalIP and kubelet port; simulated nodes left out), since Debian's Prometheus is
built without Kubernetes service discovery.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from controlplane.etcd_process import free_port
from controlplane.log import get_logger
from controlplane.procutil import die_with_parent, terminate

log = get_logger(__name__)

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests" / "prometheus"
BINARY = "/usr/bin/prometheus"
# job -> the component whose DATA_DIR/<component>.metrics-port it scrapes
PORT_FILE_JOBS = {"kube-controller-manager": "controller-manager", "kube-scheduler": "scheduler",
                  "metrics-server": "metrics-server", "prometheus-adapter": "metrics-adapter"}


def prometheus_binary() -> str:
    path = shutil.which("prometheus") or (BINARY if os.path.exists(BINARY) else None)
    if not path:
        raise RuntimeError("prometheus not found: apt-get install -y prometheus (or run `make install`)")
    return path


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def kubelet_targets(nodes: list[dict]) -> list[dict]:
    """file_sd groups for the Nodes with an InternalIP and a kubelet port (not simulated)."""
    out = []
    for n in nodes:
        md, st = n.get("metadata") or {}, n.get("status") or {}
        if (md.get("annotations") or {}).get("node.controlplane.io/simulated") == "true":
            continue
        ip = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if ip and port:
            out.append({"targets": [f"{ip}:{port}"], "labels": {"node": md.get("name", "")}})
    return out


@dataclass(frozen=True)
class PrometheusTLS:
    """The CA that signed the apiserver's and agents' serving certificates, and Prometheus'
    client certificate and key."""

    ca: Path
    cert: Path
    key: Path

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


class PrometheusProcess:
    name = "prometheus"

    def __init__(self, data_dir: Path, *, apiserver: str, etcd_metrics: str = "", tls: PrometheusTLS | None = None,
                 port: int = 0, scrape_interval: str | None = None, rules_dir: Path | None = None,
                 manifests: Path = MANIFESTS, refresh: float = 5.0) -> None:
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / "prometheus"
        self.apiserver = apiserver
        self.etcd_metrics = etcd_metrics
        self.tls = tls
        self.port = port
        self.scrape_interval = scrape_interval
        self.rules_dir = rules_dir
        self.manifests = manifests
        self.refresh = refresh
        self.proc: subprocess.Popen | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- configuration ---------------------------------------------------------------------------
    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "targets").mkdir(exist_ok=True)
        cfg = yaml.safe_load((self.manifests / "prometheus.yml").read_text())
        if self.scrape_interval:
            cfg.setdefault("global", {}).update(scrape_interval=self.scrape_interval,
                                                evaluation_interval=self.scrape_interval)
        rules_src = self.rules_dir or (self.manifests / "rules")
        rules = self.dir / "rules"
        shutil.rmtree(rules, ignore_errors=True)
        shutil.copytree(rules_src, rules)
        tdir = self.dir / "tls"
        tdir.mkdir(exist_ok=True)
        if self.tls is not None:
            for src, name, mode in ((self.tls.ca, "ca.crt", 0o644), (self.tls.cert, "client.crt", 0o644),
                                    (self.tls.key, "client.key", 0o600)):
                dst = tdir / name
                dst.write_bytes(src.read_bytes())
                os.chmod(dst, mode)
        path = self.dir / "prometheus.yml"
        tmp = self.dir / ".prometheus.yml.tmp"
        tmp.write_text("# written by controlplane up from manifests/prometheus/prometheus.yml\n" +
                       yaml.safe_dump(cfg, sort_keys=False))
        tmp.replace(path)
        self.write_targets([])
        return path

    def _port_file(self, component: str) -> int | None:
        try:
            return int((self.data_dir / f"{component}.metrics-port").read_text().strip())
        except (OSError, ValueError):
            return None

    def write_targets(self, nodes: list[dict] | None) -> None:
        t = self.dir / "targets"
        api = urlparse(self.apiserver)
        _write_json(t / "apiserver.json", [{"targets": [f"{api.hostname}:{api.port}"]}])
        _write_json(t / "etcd.json", [{"targets": [urlparse(self.etcd_metrics).netloc]}] if self.etcd_metrics else [])
        for job, comp in PORT_FILE_JOBS.items():
            port = self._port_file(comp)
            _write_json(t / f"{job}.json", [{"targets": [f"127.0.0.1:{port}"]}] if port else [])
        if nodes is not None:
            _write_json(t / "kubelet.json", kubelet_targets(nodes))

    def _nodes(self) -> list[dict] | None:
        ctx = self.tls.ssl_context() if self.tls is not None else None
        try:
            with urllib.request.urlopen(self.apiserver + "/api/v1/nodes", timeout=5, context=ctx) as r:
                return json.load(r).get("items") or []
        except (OSError, ValueError):
            return None

    async def _refresh_loop(self) -> None:
        while True:
            nodes = await asyncio.to_thread(self._nodes)
            await asyncio.to_thread(self.write_targets, nodes)
            await asyncio.sleep(self.refresh)

    # -- the process -----------------------------------------------------------------------------
    async def start(self, ready_timeout: float = 60.0, wait_ready: bool = True) -> None:
        cfg = await asyncio.to_thread(self.write_config)
        nodes = await asyncio.to_thread(self._nodes)
        await asyncio.to_thread(self.write_targets, nodes)
        if not self.port:
            self.port = free_port()
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "prometheus.log", "ab") as out:
            self.proc = subprocess.Popen(
                [prometheus_binary(), f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=2d",
                 "--web.enable-lifecycle", f"--web.external-url=http://127.0.0.1:{self.port}/"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
        (self.data_dir / "prometheus.port").write_text(f"{self.port}\n")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh_loop())
        if not wait_ready:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ready_timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}; see {logs / 'prometheus.log'}")
            if await asyncio.to_thread(self._ready):
                log.info("prometheus ready", url=self.url, config=str(cfg))
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {ready_timeout}s")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(terminate, self.proc, 15.0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
