"""The shape of an admission plugin (apiserver's ``admission.Interface`` with its
``MutationInterface`` / ``ValidationInterface``): a name, whether it mutates and/or validates,
which requests it concerns (``handles``: decided once per resource, subresource and operation,
so the chain keeps a precomputed list per resource) and, for plugins whose work depends on
cluster state, a cheap ``active`` test per request (a quota in the namespace, a webhook
configured) that lets the chain skip building anything when nothing applies.
"""

from __future__ import annotations

from typing import ClassVar

from controlplane.apiserver.admission.attributes import Attributes
from controlplane.apiserver.discovery.registry import ResourceInfo


class Plugin:
    name: ClassVar[str] = ""
    mutates: ClassVar[bool] = False
    validates: ClassVar[bool] = False
    changes_objects: ClassVar[bool] = True  # a mutating plugin that may change the object

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        """Whether requests of this kind ever concern the plugin (cached by the chain)."""
        return True

    def active(self, namespace: str) -> bool:
        """Per request, before attributes are built: False when there is nothing to do now."""
        return True

    async def admit(self, a: Attributes) -> None:
        """Mutate ``a.obj`` in place (or raise ``ApiError``)."""

    async def validate(self, a: Attributes) -> None:
        """Raise ``ApiError`` to refuse the request."""

    async def start(self) -> None:
        """After the watch caches exist."""

    async def stop(self) -> None:
        """On shutdown."""
