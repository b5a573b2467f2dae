"""What the apiserver serves, described: the resource catalogue (``registry``: ``ResourceInfo``
and ``Registry``), the discovery documents built from it (``documents``: legacy; ``aggregated``: apidiscovery.k8s.io/v2), the OpenAPI v3
documents (``openapi``) and the Kubernetes 1.32 type definitions they and validation read
(``k8s_schemas``). Below every other sub-package but ``meta``."""
