"""DDQN: the learned Double-DQN node scorer (``schedulers.ddqn``) as a live score plugin,
profile ``schedulers/profiles/ddqn.yaml`` (``schedulerName: ddqn-scheduler``, alias ``ddqn``).

It wraps the ``ddqn`` GPU policy (``schedulers.ddqn.policy``, the object the simulator's
``--policy ddqn`` runs) like the openb plugins of ``gpu_policy_score``: args ``typicalPods:
<CSV>`` and ``model: <path>``; otherwise the typical pods come from the pods the scheduler
has seen (refreshed as that set doubles). The DDQN package's inference side is a
plugin-level dependency; its training side (``env``, ``train``) is never imported here.

The active model: unless args name a ``model`` file, the plugin follows the API's pointer
``kube-system/ddqn-model`` (``schedulers.ddqn.versions``): when it moves, the version's file
is fetched, checked (``model.load``: magic, format, feature spec, sha256) and only then
swapped in; a corrupt or incompatible model is refused with the loader's message (log, a
Warning ``ModelRefused`` Event on the pointer, ``scheduler_ddqn_model_load_errors_total``) and
the plugin keeps the model it had. ``scheduler_ddqn_model_info{version,digest}`` is 1 for the
model in use.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

import schedulers.ddqn.policy  # noqa: F401  registers the "ddqn" GPU policy
from controlplane.client import resources
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError
from controlplane.log import get_logger
from schedulers.ddqn import versions
from schedulers.ddqn.model import ModelFileError
from schedulers.ddqn.scorer import get_scorer
from schedulers.framework.registry import register
from schedulers.plugins.gpu_policy_score import GpuPolicyScore

log = get_logger(__name__)

MODEL_INFO = Gauge("scheduler_ddqn_model_info", "The DDQN model the scheduler uses (1), by version and digest.",
                   ["version", "digest"])
MODEL_ERRORS = Counter("scheduler_ddqn_model_load_errors_total",
                       "DDQN models refused (corrupt or incompatible); the previous model was kept.")


@register
class DDQN(GpuPolicyScore):
    """The DDQN scorer as a live-scheduler score plugin (typical pods as for FGD)."""

    name = "DDQN"
    policy_name = "ddqn"
    needs_typical = True

    def __init__(self, args=None, handle=None) -> None:
        super().__init__(args, handle)
        self.follow_api = not self.args.get("model")
        self.version = "file" if self.args.get("model") else versions.SHIPPED
        self.digest = ""
        self._dir: tempfile.TemporaryDirectory | None = None
        self._pointer_rv: str | None = None  # pointer resourceVersion last acted on

    def use_model(self, data: bytes, version: str, digest: str) -> None:
        """Swap in the model file ``data`` (checked by loading it); on ``ModelFileError`` the
        current model stays and the error propagates."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="ddqn-models-")
        path = Path(self._dir.name) / f"{version}-{digest.split(':')[-1][:16]}.bin"
        path.write_bytes(data)
        get_scorer(path)  # loads and verifies; raises ModelFileError, leaving everything as it was
        old = (self.version, self.digest)
        self.args["model"] = str(path)
        self._policy = None  # rebuilt with the new scorer at the next decision
        self.version, self.digest = version, digest
        if old[1]:
            MODEL_INFO.remove(*old)
        MODEL_INFO.labels(version, digest).set(1)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow ``kube-system/ddqn-model`` until ``stop`` (plugins with ``run`` are started by
        the scheduler)."""
        client = getattr(self.handle, "client", None)
        if not self.follow_api or client is None:
            return
        data = versions.SHIPPED_PATH.read_bytes()
        self.digest = versions.digest(data)
        MODEL_INFO.labels(self.version, self.digest).set(1)
        inf = Informer(client, resources.CONFIGMAPS, namespace=versions.NAMESPACE,
                       field_selector=f"metadata.name={versions.POINTER}", indexes=False)
        wake = asyncio.Event()
        inf.add_handler(lambda etype, obj, old: wake.set())
        task = asyncio.ensure_future(inf.start(stop))
        try:
            while not stop.is_set():
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if stop.is_set():
                    break
                wake.clear()
                cm = inf.get(f"{versions.NAMESPACE}/{versions.POINTER}")
                if cm is not None:
                    await self.follow(cm)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if self._dir is not None:
                self._dir.cleanup()

    async def follow(self, cm: dict[str, Any]) -> None:
        """Act on the pointer ``cm``: load its version unless it is the one in use."""
        rv = cm["metadata"].get("resourceVersion")
        if rv == self._pointer_rv:
            return
        self._pointer_rv = rv
        data = cm.get("data") or {}
        version, want = data.get("version") or versions.SHIPPED, data.get("digest") or ""
        if version == self.version and (not want or want == self.digest):
            return
        client = self.handle.client
        try:
            raw = await versions.fetch(client, version)
            got = versions.digest(raw)
            if want and got != want:
                raise ModelFileError(f"model version {version}: digest {got} does not match the pointer's {want}")
            await asyncio.to_thread(versions.check_model, raw, f"model version {version}")
            await asyncio.to_thread(self.use_model, raw, version, got)
        except (ModelFileError, versions.ModelVersionError, ApiStatusError) as e:
            MODEL_ERRORS.inc()
            msg = f"keeping {self.version}: {e}"
            log.error("ddqn model refused", version=version, kept=self.version, error=str(e))
            recorder = getattr(self.handle, "recorder", None)
            if recorder is not None:
                recorder.event(cm, "Warning", "ModelRefused", msg)
            return
        log.info("ddqn model loaded", version=version, digest=got)
        recorder = getattr(self.handle, "recorder", None)
        if recorder is not None:
            recorder.event(cm, "Normal", "ModelLoaded", f"scheduler uses DDQN model {version} ({got})")
