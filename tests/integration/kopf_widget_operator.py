"""A standalone kopf operator for ``Widget`` (crds/widgets.kopf.example.com.yaml), run by
``test_kopf_operator.py`` as ``kopf run --standalone``. Every handler call is appended as a
JSON line to the file named by ``$WIDGET_LOG`` so the test can count calls exactly."""

from __future__ import annotations

import json
import os
import threading

import kopf

_lock = threading.Lock()


def _record(kind: str, name: str, **extra: object) -> None:
    with _lock, open(os.environ["WIDGET_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"handler": kind, "name": name, **extra}) + "\n")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    settings.watching.server_timeout = 30
    settings.networking.error_backoffs = [0.5, 1, 2]


@kopf.on.create("kopf.example.com", "v1", "widgets")
def created(spec: kopf.Spec, name: str, body: kopf.Body, patch: kopf.Patch, **_: object) -> dict:
    _record("create", name, size=spec.get("size"), color=spec.get("color"))
    kopf.info(body, reason="WidgetCreated", message=f"widget {name} of size {spec.get('size')}")
    patch.status["phase"] = "Ready"
    patch.status["observedSize"] = spec.get("size")
    return {"created": True}


@kopf.on.update("kopf.example.com", "v1", "widgets")
def updated(spec: kopf.Spec, name: str, patch: kopf.Patch, **_: object) -> None:
    _record("update", name, size=spec.get("size"))
    patch.status["observedSize"] = spec.get("size")


@kopf.on.delete("kopf.example.com", "v1", "widgets")
def deleted(name: str, **_: object) -> None:
    _record("delete", name)
