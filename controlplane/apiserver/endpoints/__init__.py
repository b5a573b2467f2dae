"""The REST verbs over the resources (kube-apiserver's endpoints/handlers): ``common`` (the
``Api`` state they work on, URL -> ``Target``, bodies, query options, responses), ``read``
(get, list), ``watch``, ``write`` (create, update, patch, apply), ``delete`` (delete,
deletecollection), ``subresources`` (binding, eviction, scale), ``proxies`` (pods/log and
pods/exec to the node agent) and the request ``metrics``. Above ``strategy`` and everything
below it; only ``server`` imports them."""
