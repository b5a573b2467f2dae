"""What the apiserver serves, described: the resource catalogue (``registry``: ``ResourceInfo``
and ``Registry``), the discovery documents built from it (``documents``: legacy; ``aggregated``: apidiscovery.k8s.io/v2), the OpenAPI v3
documents (``openapi``), the OpenAPI v2 document (``openapi_v2``; gnostic's protobuf form:
``openapi_v2_pb``) and the Kubernetes 1.32 type definitions they and validation read
(``k8s_schemas``). Below every other sub-package but ``meta``."""
