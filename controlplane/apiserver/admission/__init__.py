"""Admission: the checks and changes a write passes after authorization and before it is stored
(and a CONNECT before its stream starts), in Kubernetes' order -- mutating built-ins, mutating
webhooks, (the strategy's defaults and schema validation,) validating built-ins,
ValidatingAdmissionPolicy, validating webhooks, ResourceQuota.

``chain.AdmissionChain`` is the chain one apiserver process runs (``server.app.ApiServer``
owns it as ``admission``; the endpoints call its ``mutate``, ``validate`` and ``connect``).
One module per plugin: ``namespacelifecycle``, ``limitranger``, ``serviceaccount``,
``noderestriction`` (+ ``noderestriction_plugin``), ``priority``, ``defaulttolerationseconds``,
``podsecurity/``, ``webhooks/``, ``policy`` (ValidatingAdmissionPolicy), ``resourcequota``;
``attributes`` (what a plugin is told), ``plugin`` (their shape), ``lookups`` (the watch-cache
reads they share). Who is asking comes from the request context (``meta.request.current()``).
See docs/security.md, "Admission".
"""

from controlplane.apiserver.admission.chain import ORDER, AdmissionChain

__all__ = ["AdmissionChain", "ORDER"]
