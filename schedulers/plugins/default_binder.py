"""DefaultBinder (Bind): binds the pod to the chosen node by POSTing a ``Binding`` to the
``pods/NAME/binding`` subresource, as kube-scheduler's plugin of the same name. Every profile
loaded from YAML gets it as its last Bind plugin (``schedulers.profiles.loader``); a Bind
plugin listed before it may bind the pod itself or return ``Skip`` to leave it to the next.

Neighbours: ``schedulers.framework.framework`` (``run_bind_plugins``), ``controlplane.client``
(the handle's ``client``).
"""

from __future__ import annotations

import asyncio

from controlplane.client.rest import ApiStatusError
from schedulers.framework.interface import Plugin, Status
from schedulers.framework.registry import register


@register
class DefaultBinder(Plugin):
    name = "DefaultBinder"

    async def bind(self, cs, pod, node_name: str) -> Status | None:
        try:
            await self.handle.client.bind(pod.namespace, pod.name, node_name)
        except (ApiStatusError, asyncio.TimeoutError) as e:
            return Status.error(str(e) or type(e).__name__)
        return None
