"""A pod's ``runtimeClassName`` resolved to the runtime handler that runs it, as the kubelet's
RuntimeClass manager does before it creates the sandbox: no class (or ``""``) is the runtime's
default handler; a class that does not exist, or whose ``handler`` this node's runtime does not
have, fails the sandbox with the kubelet's and containerd's words (the pod worker reports them
as ``FailedCreatePodSandBox`` and retries). The runc runtime has one handler, ``runc`` (k3s's
containerd names its default the same). Neighbours: ``pod_worker.py`` (caller),
``apiserver/admission/runtimeclass.py`` (the class's overhead and scheduling, at admission).
"""

from __future__ import annotations

from typing import Any

from controlplane.client.resources import RUNTIMECLASSES
from controlplane.client.rest import ApiStatusError
from controlplane.runtime.interface import RuntimeError_

DEFAULT_HANDLERS = ("runc",)


async def resolve_handler(client: Any, spec: dict[str, Any], handlers: tuple[str, ...] = DEFAULT_HANDLERS) -> str:
    """The handler for a pod spec ("" for the default), or ``RuntimeError_``."""
    name = spec.get("runtimeClassName")
    if not name:
        return ""
    try:
        rc = await client.get(RUNTIMECLASSES, name)
    except ApiStatusError as e:
        if e.not_found:
            raise RuntimeError_("CreatePodSandboxError", f'runtimeclass.node.k8s.io "{name}" not found') from e
        raise RuntimeError_("CreatePodSandboxError", f"failed to lookup RuntimeClass {name}: {e.message}") from e
    handler = rc.get("handler") or ""
    if handler not in handlers:
        raise RuntimeError_("CreatePodSandboxError", "rpc error: code = Unknown desc = failed to get sandbox "
                                                     f'runtime: no runtime for "{handler}" is configured')
    return handler
