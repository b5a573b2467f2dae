"""Versions of the DDQN scorer's model, kept in the API so every scheduler process and every
user sees the same active model: ``kubectl -n kube-system get cm ddqn-model -o yaml``.

- ``kube-system/ddqn-model-<version>`` (label ``scheduling.controlplane.io/ddqn-model``): one
  stored model, the file in ``binaryData["model.bin"]``, its ``version``, ``digest`` (sha256
  of the file), ``source`` (``upload``/``retrain``) and, for a retrained one, its evaluation.
- ``kube-system/ddqn-model``: the pointer to the active version (``version``, ``digest``,
  ``previous``, ``promotedAt``, ``reason``). Without it the scheduler runs the shipped model
  (``schedulers/ddqn/ddqn_openb.bin``, version ``shipped``).

:func:`check_model` loads a file with ``model.load`` (magic, format version, feature spec,
sha256 of the weights, layout), so a corrupt or incompatible file is refused with the
loader's message before it is stored or activated; the scheduler's DDQN plugin checks again
when the pointer moves and keeps its current model on any error (``ActiveModelWatcher``).
Promotion (:func:`promote`) and rollback (:func:`rollback`) move the pointer and record an
Event on it. Neighbours: ``schedulers.plugins.ddqn`` (watches the pointer), ``retrain``
(promotes candidates), ``controlplane.cmd.ddqn`` (the CLI).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from controlplane.client import resources
from controlplane.client.events import EventRecorder
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.machinery.timestamps import now_rfc3339
from schedulers.ddqn import model as qmodel

NAMESPACE = "kube-system"
POINTER = "ddqn-model"
LABEL = "scheduling.controlplane.io/ddqn-model"
FILE_KEY = "model.bin"
SHIPPED = "shipped"
SHIPPED_PATH = Path(__file__).resolve().parent / "ddqn_openb.bin"
_VERSION = re.compile(r"^v(\d+)$")
COMPONENT = "ddqn-model-manager"


class ModelVersionError(ValueError):
    """A model that cannot be stored or activated (corrupt, incompatible, unknown version)."""


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_model(data: bytes, what: str = "model") -> dict[str, Any]:
    """Load ``data`` as a DDQN model file; its header on success, ``ModelVersionError`` with
    the loader's reason otherwise (bad magic, format version, feature spec, corrupt weights)."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as fh:
        fh.write(data)
        fh.flush()
        try:
            _, header = qmodel.load(Path(fh.name))
        except qmodel.ModelFileError as e:
            raise ModelVersionError(f"{what} refused: {str(e).replace(fh.name, what)}") from None
    return header


def version_name(version: str) -> str:
    return f"{POINTER}-{version}"


async def list_versions(client: RestClient) -> list[dict]:
    lst = await client.list(resources.CONFIGMAPS, NAMESPACE, label_selector=LABEL)
    items = [cm for cm in lst.get("items") or [] if (cm.get("data") or {}).get("version")]
    return sorted(items, key=lambda cm: _order(cm["data"]["version"]))


def _order(version: str) -> tuple[int, str]:
    m = _VERSION.match(version)
    return (int(m.group(1)) if m else -1, version)


async def active(client: RestClient) -> dict[str, str]:
    """The pointer's data (``version``, ``digest``, ``previous`` …); the shipped model when unset."""
    try:
        cm = await client.get(resources.CONFIGMAPS, POINTER, NAMESPACE)
    except ApiStatusError as e:
        if not e.not_found:
            raise
        return {"version": SHIPPED, "digest": digest(SHIPPED_PATH.read_bytes()), "previous": ""}
    return dict(cm.get("data") or {})


async def fetch(client: RestClient, version: str) -> bytes:
    """The model file of ``version`` (the shipped file for ``shipped``)."""
    if version == SHIPPED:
        return SHIPPED_PATH.read_bytes()
    try:
        cm = await client.get(resources.CONFIGMAPS, version_name(version), NAMESPACE)
    except ApiStatusError as e:
        if e.not_found:
            raise ModelVersionError(f"model version {version!r} does not exist") from None
        raise
    raw = (cm.get("binaryData") or {}).get(FILE_KEY)
    if not raw:
        raise ModelVersionError(f"model version {version!r} holds no {FILE_KEY}")
    return base64.b64decode(raw)


async def store(client: RestClient, data: bytes, *, source: str, evaluation: dict | None = None) -> dict[str, str]:
    """Check ``data`` and store it as the next version (not activated). Returns its data."""
    check_model(data)
    versions = await list_versions(client)
    n = max([_order(cm["data"]["version"])[0] for cm in versions] + [0]) + 1
    version = f"v{n}"
    info = {"version": version, "digest": digest(data), "source": source, "createdAt": now_rfc3339()}
    if evaluation is not None:
        info["evaluation"] = json.dumps(evaluation, sort_keys=True)
    await client.create(resources.CONFIGMAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": version_name(version), "namespace": NAMESPACE, "labels": {LABEL: "true"}},
        "data": info, "binaryData": {FILE_KEY: base64.b64encode(data).decode()}}, NAMESPACE)
    return info


async def _set_pointer(client: RestClient, data: dict[str, str]) -> dict:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": POINTER, "namespace": NAMESPACE, "labels": {f"{LABEL}-active": "true"}},
            "data": data}
    try:
        cur = await client.get(resources.CONFIGMAPS, POINTER, NAMESPACE)
    except ApiStatusError as e:
        if not e.not_found:
            raise
        return await client.create(resources.CONFIGMAPS, body, NAMESPACE)
    body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    return await client.update(resources.CONFIGMAPS, body)


async def activate(client: RestClient, version: str, *, reason: str, message: str,
                   recorder: EventRecorder | None = None) -> dict[str, str]:
    """Point the scheduler at ``version`` (checked first); an Event ``reason`` on the pointer."""
    data = await fetch(client, version)
    check_model(data, f"model version {version}")
    cur = await active(client)
    new = {"version": version, "digest": digest(data), "previous": cur.get("version", SHIPPED),
           "promotedAt": now_rfc3339(), "reason": reason, "message": message}
    obj = await _set_pointer(client, new)
    await _event(client, obj, "Normal", reason, message, recorder)
    return new


async def rollback(client: RestClient, recorder: EventRecorder | None = None) -> dict[str, str]:
    """Back to the version the active one replaced."""
    cur = await active(client)
    prev = cur.get("previous")
    if not prev or prev == cur.get("version"):
        raise ModelVersionError(f"no previous model to roll back to (active: {cur.get('version')})")
    return await activate(client, prev, reason="ModelRolledBack",
                          message=f"rolled back from {cur.get('version')} to {prev}", recorder=recorder)


async def _event(client: RestClient, obj: dict, etype: str, reason: str, message: str,
                 recorder: EventRecorder | None) -> None:
    """One Event about the pointer ConfigMap, posted at once."""
    rec = recorder or EventRecorder(client, COMPONENT)
    await rec.emit(obj, etype, reason, message)


async def pointer(client: RestClient) -> dict:
    """The pointer ConfigMap, created pointing at the shipped model if there is none yet."""
    try:
        return await client.get(resources.CONFIGMAPS, POINTER, NAMESPACE)
    except ApiStatusError as e:
        if not e.not_found:
            raise
    try:
        return await _set_pointer(client, {"version": SHIPPED, "digest": digest(SHIPPED_PATH.read_bytes()),
                                           "previous": "", "promotedAt": now_rfc3339(), "reason": "Shipped",
                                           "message": "the model shipped with the scheduler"})
    except ApiStatusError as e:
        if e.code != 409:
            raise
        return await client.get(resources.CONFIGMAPS, POINTER, NAMESPACE)


async def refuse(client: RestClient, message: str, recorder: EventRecorder | None = None) -> None:
    """A candidate that was not promoted: a Warning Event ``ModelRefused`` on the pointer."""
    await _event(client, await pointer(client), "Warning", "ModelRefused", message, recorder)
