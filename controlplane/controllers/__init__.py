"""The workload controllers, one module each (``deployment``, ``replicaset``,
``replicationcontroller``, ``statefulset``, ``daemonset``, ``job``, ``cronjob``,
``garbagecollector``, ``namespace``, ``endpoints``, ``serviceaccount``, and the node agent's
``nodelifecycle``; shared helpers in the ``*util`` modules), each exposing ``setup(manager)``
that registers its informers and its ``Controller`` with a ``controlplane.client.manager.Manager``. Only the controller-manager
command imports this package."""

CONTROLLERS = ["deployment", "replicaset", "replicationcontroller", "statefulset", "daemonset", "job", "cronjob",
               "garbagecollector", "namespace", "endpoints", "serviceaccount", "nodelifecycle"]
