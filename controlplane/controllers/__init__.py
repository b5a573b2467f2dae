"""The workload controllers, one module each (``deployment``, ``replicaset``, ``statefulset``,
``daemonset``, ``job``, ``garbagecollector``, ``namespace``, ``endpoints``,
``serviceaccount``, the node agent's ``nodelifecycle``, and the network's ``endpointslice``,
``nodeipam``, ``servicelb``), each exposing ``setup(manager)`` that registers its informers and its
``Controller`` with a ``controlplane.client.manager.Manager``. Only the controller-manager
command imports this package."""

CONTROLLERS = ["deployment", "replicaset", "statefulset", "daemonset", "job", "garbagecollector",
               "namespace", "endpoints", "serviceaccount", "nodelifecycle", "endpointslice", "nodeipam", "servicelb"]
