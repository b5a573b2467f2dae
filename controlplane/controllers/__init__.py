"""The workload controllers, one module each (``deployment``, ``replicaset``, ``statefulset``,
``daemonset``, ``job``, ``garbagecollector``, ``namespace``, ``endpoints``,
``serviceaccount``, and the node agent's ``nodelifecycle``), each exposing ``setup(manager)`` that registers its informers and its
``Controller`` with a ``controlplane.client.manager.Manager``. Only the controller-manager
command imports this package."""

CONTROLLERS = ["deployment", "replicaset", "statefulset", "daemonset", "job", "garbagecollector",
               "namespace", "endpoints", "serviceaccount", "nodelifecycle"]
