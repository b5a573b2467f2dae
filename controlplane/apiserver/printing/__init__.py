"""Server-side printing for ``kubectl get``: ``meta.k8s.io/v1`` Tables (``tables``), the
per-kind columns ported from Kubernetes' printers (``printers``, ``pods``, ``format``) and
the JSONPath subset of CRDs' ``additionalPrinterColumns`` (``jsonpath``). Above ``discovery``
and ``meta``; used by the get/list/watch endpoints."""
