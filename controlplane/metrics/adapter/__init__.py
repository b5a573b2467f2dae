"""The custom and external metrics component (``controlplane metrics-adapter``): what
prometheus-adapter is to Kubernetes. It serves ``custom.metrics.k8s.io`` (``v1beta2`` and
``v1beta1``) and ``external.metrics.k8s.io/v1beta1`` behind APIServices, answering from the
real Prometheus with rules in prometheus-adapter's configuration format, so the
HorizontalPodAutoscaler's Pods, Object and External metrics have a source
(docs/metrics.md, "Custom and external metrics").

- ``rules``: the configuration (series queries, filters, resource labels, naming, metrics
  queries) and what it makes of the series Prometheus has (pure logic);
- ``prom``: the Prometheus HTTP API client (series, instant queries);
- ``api``: the aggregated API server (discovery, the metric value lists, ``Status`` errors).
"""
