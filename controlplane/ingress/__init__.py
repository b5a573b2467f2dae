"""The ingress controller (``controlplane ingress-controller``, run by ``up``): HTTP and HTTPS on
the host's loopback, routed by the cluster's Ingresses to their Services. See ``routes`` (the
matching rules) and ``server`` (the proxy and the status it writes)."""
