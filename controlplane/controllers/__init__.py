"""The workload controllers, one module each (``deployment``, ``replicaset``,
``replicationcontroller``, ``statefulset``, ``daemonset``, ``job``, ``cronjob``,
``garbagecollector``, ``namespace``, ``endpoints``, ``endpointslice``, ``endpointslicemirroring``,
``serviceaccount``, and the node agent's ``nodelifecycle``, among others), each exposing
``setup(manager)`` that registers its informers and its ``Controller`` with a
``controlplane.client.manager.Manager``. Controllers never import each other; what several
share lives in ``controllerutil`` (owner references, expectations), ``podutil`` (pod state and
ranking), ``deploymentutil``, ``replicasetutil`` (the ReplicaSet logic, also the
ReplicationController's), ``cronjobutil`` (the CronJob time logic) and
``endpointslicemirroringutil`` (the mirroring's pure half). Only the controller-manager command
(``cmd/controller_manager.py``, the list of controllers) imports this package; both rules are
import-linter contracts (pyproject.toml)."""
