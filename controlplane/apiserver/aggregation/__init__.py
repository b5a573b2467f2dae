"""The aggregation layer (kube-aggregator): APIServices route whole group/versions to another
API server behind a Service; their discovery is merged into ``/apis`` and their availability
kept in the ``Available`` condition.

Modules: ``apiservices`` (the APIServices this process knows, from its watch cache, and the
merged discovery documents), ``resolve`` (APIService -> the backend URL: an ExternalName
Service's host, else a ready endpoint of the Service, as kube-aggregator with
``--enable-aggregator-routing``), ``proxy`` (streaming the request through),
``available`` (the availability checks and their controller), ``discovery`` (the aggregated
discovery document of ``/api`` and ``/apis`` with the backends' resources). Imports only ``discovery``,
``persistence`` and ``meta`` (and aiohttp for the backend connections); ``server`` wires it
in front of the endpoints.
"""
