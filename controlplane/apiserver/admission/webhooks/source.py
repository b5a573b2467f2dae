"""The webhook configurations this apiserver knows, from the watch caches of
``mutatingwebhookconfigurations`` and ``validatingwebhookconfigurations`` (kube-apiserver reads
them from informers): every change rebuilds that kind's list of ``Webhook`` accessors, sorted
by configuration name and then by position (the order Kubernetes calls them in), with their
selectors parsed once. Requests read the current lists; an empty list costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from controlplane.apiserver.admission.webhooks.client import WebhookClient
from controlplane.log import get_logger
from controlplane.machinery.selectors import LabelSelector

log = get_logger(__name__)
Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"


@dataclass
class Webhook:
    """One webhook of one configuration, ready to match and call."""

    configuration: str
    index: int  # position in its configuration
    spec: Obj
    mutating: bool
    namespace_selector: LabelSelector
    object_selector: LabelSelector
    uid: str = field(default="")  # configuration name + webhook name (reinvocation bookkeeping)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def failure_policy(self) -> str:
        return str(self.spec.get("failurePolicy") or "Fail")

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds") or 10)

    @property
    def side_effects(self) -> str:
        return str(self.spec.get("sideEffects") or "Unknown")

    @property
    def reinvocation(self) -> str:
        return str(self.spec.get("reinvocationPolicy") or "Never")


def _selector(d: Any) -> LabelSelector:
    try:
        return LabelSelector.from_dict(d if isinstance(d, dict) else {})
    except ValueError:
        return LabelSelector.nothing()


def compile_configurations(objs: Iterable[Obj], mutating: bool) -> list[Webhook]:
    out: list[Webhook] = []
    for cfg in sorted(objs, key=lambda o: o["metadata"]["name"]):
        name = cfg["metadata"]["name"]
        for i, spec in enumerate(cfg.get("webhooks") or []):
            if not isinstance(spec, dict):
                continue
            out.append(Webhook(name, i, spec, mutating, _selector(spec.get("namespaceSelector")),
                               _selector(spec.get("objectSelector")), uid=f"{name}/{spec.get('name', '')}"))
    return out


class _Feed:
    """A watch-cache observer keeping one kind's configurations and rebuilding its list."""

    def __init__(self, source: "WebhookSource", mutating: bool) -> None:
        self.source = source
        self.mutating = mutating
        self.objs: dict[str, Obj] = {}

    def reset(self, objects: Iterable[Obj]) -> None:
        self.objs = {o["metadata"]["name"]: o for o in objects}
        self._rebuild()

    def apply(self, etype: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if etype == "DELETED":
            self.objs.pop(name, None)
        else:
            self.objs[name] = obj
        self._rebuild()

    def _rebuild(self) -> None:
        hooks = compile_configurations(self.objs.values(), self.mutating)
        if self.mutating:
            self.source.mutating = hooks
        else:
            self.source.validating = hooks


class WebhookSource:
    def __init__(self, host: Any) -> None:
        self.host = host
        self.mutating: list[Webhook] = []
        self.validating: list[Webhook] = []
        self.client: WebhookClient | None = None  # made on start (needs the running loop)
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.client = WebhookClient()
        for plural, mutating in (("mutatingwebhookconfigurations", True), ("validatingwebhookconfigurations", False)):
            info = self.host.registry.get(GROUP, "v1", plural)
            cache = await self.host.caches.cache_for(info)
            cache.observe(_Feed(self, mutating))

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
