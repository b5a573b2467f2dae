"""CONNECT admission: the hook every connect subresource calls before it opens its stream.

Kubernetes admits ``pods/exec``, ``pods/attach``, ``pods/portforward`` and the
``pods/proxy``, ``services/proxy``, ``nodes/proxy`` requests with operation ``CONNECT`` and the
request's options object (``PodExecOptions``, ``PodAttachOptions``, ``PodPortForwardOptions``,
``PodProxyOptions``, ``ServiceProxyOptions``, ``NodeProxyOptions``) as the object; built-in
plugins such as DenyEscalatingExec and admission webhooks registered for ``CONNECT`` see
them there. ``admit`` is that call: the endpoints (``endpoints/proxies.py``,
``endpoints/portforward.py``, ``endpoints/httpproxy.py``) call it after authorization and
before anything reaches a node. No plugin acts on CONNECT yet (issue 14 item 4 puts the
chain here); raise ``errors.ApiError`` (403) to refuse.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.discovery.registry import ResourceInfo

_OPTION_KINDS = {("pods", "exec"): "PodExecOptions", ("pods", "attach"): "PodAttachOptions",
                 ("pods", "portforward"): "PodPortForwardOptions", ("pods", "proxy"): "PodProxyOptions",
                 ("services", "proxy"): "ServiceProxyOptions", ("nodes", "proxy"): "NodeProxyOptions"}


def options_object(resource: str, subresource: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options object Kubernetes hands to CONNECT admission (``apiVersion: v1``)."""
    return {"apiVersion": "v1", "kind": _OPTION_KINDS.get((resource, subresource), "ConnectOptions"), **options}


def admit(info: ResourceInfo, namespace: str | None, name: str, subresource: str, options: dict[str, Any]) -> None:
    """Run CONNECT admission for one connect request (no plugin refuses one today)."""
    options_object(info.plural, subresource, options)
