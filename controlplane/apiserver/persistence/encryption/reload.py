"""kube-apiserver's ``--encryption-provider-config-automatic-reload``: every apiserver process
(each worker of a supervised apiserver runs its own) polls the EncryptionConfiguration file
and, when its content hash changes, parses it and swaps it into the encrypting backend
(``backend.EncryptingBackend.set_config``). A file that does not parse leaves the old
configuration serving; the failure is logged and counted, and retried at the next poll (as
kube-apiserver re-queues it). Kubernetes polls once a minute; the interval is a parameter
(``controlplane apiserver --encryption-provider-config-reload-interval``, ``up`` passes 5s).

Metrics, kube-apiserver 1.32's names and labels (``apiserver_id_hash`` is ``sha256:`` + the
hex SHA-256 of the process's apiserver ID, ``apiserver-<uuid>``, as kube-apiserver hashes its
identity):

- ``apiserver_encryption_config_controller_automatic_reloads_total{status, apiserver_id_hash}``
- ``apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{status, apiserver_id_hash}``
- ``apiserver_encryption_config_controller_automatic_reload_success_total`` and
  ``..._failures_total{apiserver_id_hash}``: the series deprecated in 1.30 (what k3s before
  1.30 read), still exported
- ``apiserver_encryption_config_controller_last_config_info{apiserver_id_hash, hash}`` = 1:
  the SHA-256 (hex) of the file content this process serves with, set at start and at each
  successful reload (kube-apiserver added this series after 1.32). ``controlplane
  secrets-encrypt`` compares it with the file on disk to know every process has reloaded.

Neighbours: ``config`` (parsing), ``backend`` (the swap), ``server/metrics.py`` (drops the
zero samples a multiprocess gauge keeps for a hash no longer served), ``cmd/apiserver.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from prometheus_client import Counter, Gauge

from controlplane.apiserver.persistence.encryption.backend import EncryptingBackend
from controlplane.apiserver.persistence.encryption.config import ConfigError, EncryptionConfig
from controlplane.log import get_logger

log = get_logger(__name__)

_NS = "apiserver_encryption_config_controller_"
LAST_CONFIG_INFO = _NS + "last_config_info"
RELOADS = Counter(_NS + "automatic_reloads_total",
                  "Total number of reload successes and failures of encryption configuration split by apiserver identity.",
                  ["status", "apiserver_id_hash"])
RELOAD_SUCCESS = Counter(_NS + "automatic_reload_success_total",
                         "(Deprecated since 1.30.0) Total number of successful automatic reloads of encryption "
                         "configuration split by apiserver identity.", ["apiserver_id_hash"])
RELOAD_FAILURES = Counter(_NS + "automatic_reload_failures_total",
                          "(Deprecated since 1.30.0) Total number of failed automatic reloads of encryption "
                          "configuration split by apiserver identity.", ["apiserver_id_hash"])
LAST_TIMESTAMP = Gauge(_NS + "automatic_reload_last_timestamp_seconds",
                       "Timestamp of the last successful or failed automatic reload of encryption configuration "
                       "split by apiserver identity.", ["status", "apiserver_id_hash"], multiprocess_mode="livemax")
CONFIG_INFO = Gauge(LAST_CONFIG_INFO,
                    "Information about the last applied encryption configuration with hash as label, split by "
                    "apiserver identity.", ["apiserver_id_hash", "hash"], multiprocess_mode="livemax")


def config_hash(data: bytes) -> str:
    """The hash of a configuration file's content, as reported in ``last_config_info``."""
    return hashlib.sha256(data).hexdigest()


def id_hash(apiserver_id: str) -> str:
    return "sha256:" + hashlib.sha256(apiserver_id.encode()).hexdigest()


class ConfigReloader:
    """Polls ``path`` for ``backend`` (one per apiserver process)."""

    def __init__(self, path: str | Path, backend: EncryptingBackend, loaded: bytes, *, interval: float = 60.0,
                 apiserver_id: str | None = None) -> None:
        """``loaded``: the file content the backend was built from."""
        self.path = Path(path)
        self.backend = backend
        self.interval = interval
        self.apiserver_id = apiserver_id or f"apiserver-{uuid.uuid4()}"
        self.id_hash = id_hash(self.apiserver_id)
        self.hash = config_hash(loaded)
        self._failed_hash: str | None = None
        CONFIG_INFO.labels(self.id_hash, self.hash).set(1)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self.check()
            except Exception as e:  # noqa: BLE001 - one bad poll never ends the controller
                log.error("encryption config reload failed", path=str(self.path), error=str(e))

    async def check(self) -> bool | None:
        """One poll: None when the content is unchanged, True when reloaded, False when the
        new content was refused (the old configuration keeps serving)."""
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except OSError as e:
            return self._failed(f"reading {self.path}: {e}", None)
        new_hash = config_hash(data)
        if new_hash == self.hash:
            return None
        try:
            config = await asyncio.to_thread(EncryptionConfig.parse_bytes, data)
        except (ConfigError, ValueError) as e:
            return self._failed(str(e), new_hash)
        self.backend.set_config(config)
        CONFIG_INFO.labels(self.id_hash, self.hash).set(0)  # (dropped from the exposition)
        old, self.hash, self._failed_hash = self.hash, new_hash, None
        CONFIG_INFO.labels(self.id_hash, self.hash).set(1)
        _remove_zero(old, self.id_hash)
        RELOADS.labels("success", self.id_hash).inc()
        RELOAD_SUCCESS.labels(self.id_hash).inc()
        LAST_TIMESTAMP.labels("success", self.id_hash).set(time.time())
        log.info("encryption config reloaded", path=str(self.path), hash=new_hash, previous=old)
        return True

    def _failed(self, error: str, new_hash: str | None) -> bool:
        RELOADS.labels("failure", self.id_hash).inc()
        RELOAD_FAILURES.labels(self.id_hash).inc()
        LAST_TIMESTAMP.labels("failure", self.id_hash).set(time.time())
        if new_hash is None or new_hash != self._failed_hash:  # logged once per bad content
            log.error("encryption config not reloaded; the previous configuration stays in use",
                      path=str(self.path), error=error, hash=new_hash, serving=self.hash)
        self._failed_hash = new_hash
        return False


def _remove_zero(old_hash: str, idh: str) -> None:
    """Single-process: drop the series of the hash no longer served (a multiprocess gauge
    cannot forget a label set; ``server/metrics.render`` filters its zero instead)."""
    try:
        CONFIG_INFO.remove(idh, old_hash)
    except KeyError:
        pass


class DropForgottenInfo:
    """A collector of the workers' metrics (``MultiProcessCollector``) without the zero samples
    of ``last_config_info``: the label sets a worker no longer serves (``server/metrics.render``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Any]:
        for family in self.inner.collect():
            if family.name == LAST_CONFIG_INFO:
                family.samples = [s for s in family.samples if s.value != 0]
            yield family
