"""The workload controllers, one module each (``deployment``, ``replicaset``, ``statefulset``,
``daemonset``, ``job``, ``garbagecollector``, ``namespace``, ``endpoints``,
``serviceaccount``), each exposing ``setup(manager)`` that registers its informers and its
``Controller`` with a ``controlplane.client.manager.Manager``. Only the controller-manager
command imports this package."""

CONTROLLERS = ["deployment", "replicaset", "statefulset", "daemonset", "job", "garbagecollector",
               "namespace", "endpoints", "serviceaccount"]
