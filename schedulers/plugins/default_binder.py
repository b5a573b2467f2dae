"""DefaultBinder (Bind): binds the pod to the chosen node by POSTing a ``Binding`` to the
``pods/NAME/binding`` subresource, as kube-scheduler's plugin of the same name. When the
scheduler records decisions in the API, the Binding carries the decision's record in the
``scheduling.controlplane.io/decision`` annotation: the apiserver stores it as a
``SchedulingDecision`` right after the binding (``framework.decisions``); with this project's
apiserver it also carries the pod's ``Scheduled`` Event (``scheduling.controlplane.io/
scheduled-event``), which the apiserver creates once the binding is stored. Every profile
loaded from YAML gets it as its last Bind plugin (``schedulers.profiles.loader``); a Bind
plugin listed before it may bind the pod itself or return ``Skip`` to leave it to the next.

Neighbours: ``schedulers.framework.framework`` (``run_bind_plugins``), ``controlplane.client``
(the handle's ``client``).
"""

from __future__ import annotations

import asyncio

from controlplane.client.rest import ApiStatusError
from schedulers.framework.decisions import (BINDING_EVENT_ANNOTATION, BINDING_RECORD_ANNOTATION, CYCLE_STATE_KEY,
                                            EVENT_CARRIED_KEY, EVENT_CYCLE_STATE_KEY)
from schedulers.framework.interface import Plugin, Status
from schedulers.framework.registry import register


@register
class DefaultBinder(Plugin):
    name = "DefaultBinder"

    async def bind(self, cs, pod, node_name: str) -> Status | None:
        try:
            annotations = {}
            record = cs.get(CYCLE_STATE_KEY)
            if record:
                annotations[BINDING_RECORD_ANNOTATION] = record
            event = cs.get(EVENT_CYCLE_STATE_KEY)
            if event:
                annotations[BINDING_EVENT_ANNOTATION] = event
            await self.handle.client.bind(pod.namespace, pod.name, node_name, annotations or None)
        except (ApiStatusError, asyncio.TimeoutError) as e:
            return Status.error(str(e) or type(e).__name__)
        if event:
            cs[EVENT_CARRIED_KEY] = True
        return None
