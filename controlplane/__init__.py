"""controlplane: a Kubernetes-style declarative control plane in Python.

Layers (see docs/architecture.md): ``storage`` (etcd behind a small interface) <- ``apiserver``
(Kubernetes REST API over Sanic) <- ``client`` (async REST client, informers, work queues)
<- ``controllers``, ``agent`` and ``schedulers``. Nothing but the apiserver touches storage.
"""

__version__ = "0.1.0"
