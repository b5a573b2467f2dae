"""The resource metrics component (``controlplane metrics-server``), our metrics-server: it
scrapes every node's ``/metrics/resource`` each resolution period (15 s), keeps the last two
points per node and container, and serves ``metrics.k8s.io/v1beta1`` NodeMetrics and
PodMetrics to the apiserver's aggregation layer (behind an APIService), from which
``kubectl top`` and the HorizontalPodAutoscaler read. It also exports cluster-state gauges with
kube-state-metrics' names for the alerting rules.

Modules: ``decode`` (the scraped text to points), ``storage`` (points to usage),
``scraper`` (which nodes, how), ``cache`` (slim node and pod caches), ``api`` (the HTTP API),
``state`` (kube-state-metrics series), ``tls`` (a self-signed serving certificate).
Reaches the cluster only through ``controlplane.client``; never imports the apiserver,
storage or the agent (it scrapes agents over HTTP).
"""
