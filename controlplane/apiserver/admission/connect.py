"""CONNECT admission: the hook every connect subresource calls before it opens its stream.

Kubernetes admits ``pods/exec``, ``pods/attach``, ``pods/portforward`` and the
``pods/proxy``, ``services/proxy``, ``nodes/proxy`` requests with operation ``CONNECT`` and the
request's options object (``PodExecOptions``, ``PodAttachOptions``, ``PodPortForwardOptions``,
``PodProxyOptions``, ``ServiceProxyOptions``, ``NodeProxyOptions``) as the object; built-in
plugins (NamespaceLifecycle, NodeRestriction, ...) and admission webhooks and
ValidatingAdmissionPolicies registered for ``CONNECT`` see them there. ``admit`` is that call:
the endpoints (``endpoints/proxies.py``, ``endpoints/portforward.py``, ``endpoints/httpproxy.py``)
call it after authorization and before anything reaches a node; it runs the apiserver's
admission chain (``chain.AdmissionChain.connect``), which raises ``errors.ApiError`` to refuse.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo

_OPTION_KINDS = {("pods", "exec"): "PodExecOptions", ("pods", "attach"): "PodAttachOptions",
                 ("pods", "portforward"): "PodPortForwardOptions", ("pods", "proxy"): "PodProxyOptions",
                 ("services", "proxy"): "ServiceProxyOptions", ("nodes", "proxy"): "NodeProxyOptions"}
_BOOLEANS = ("stdin", "stdout", "stderr", "tty")


def options_object(resource: str, subresource: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options object Kubernetes hands to CONNECT admission (``apiVersion: v1``); the
    query's ``stdin``/``stdout``/``stderr``/``tty`` strings become the booleans of the type."""
    opts = {k: (v in (True, "true", "1") if k in _BOOLEANS else v) for k, v in options.items()}
    return {"kind": _OPTION_KINDS.get((resource, subresource), "ConnectOptions"), "apiVersion": "v1", **opts}


async def admit(api: Any, info: ResourceInfo, namespace: str | None, name: str, subresource: str,
                options: dict[str, Any]) -> None:
    """Run CONNECT admission for one connect request through ``api.admission``."""
    await api.admission.connect(info, namespace, name, subresource,
                                options_object(info.plural, subresource, options))
