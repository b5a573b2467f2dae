"""The apiserver process: ``app`` (the ``ApiServer`` state and ``serve``), ``routes`` (the Sanic
app and request dispatch), ``crds`` (serving the stored CRDs' resources), ``metrics``
(``/metrics``) and ``workers`` (several processes on one port). The top layer of the apiserver;
``controlplane/cmd/apiserver.py`` starts it."""
