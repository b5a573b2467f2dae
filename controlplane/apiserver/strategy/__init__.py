"""Per-resource write semantics (kube-apiserver's ``pkg/registry/<group>/<resource>/strategy.go``):
``base.Strategy`` and one module per resource or family (``pod``, ``namespace``, ``node``,
``service`` with ``serviceips``, ``secret``, ``event``, ``replicationcontroller``,
``workloads``, ``job``, ``cronjob``, ``simple``,
``customresourcedefinition``, ``customresource``; pod-template defaults in ``podtemplate``),
the rules every write follows whatever the resource (``generic``, ``deletion``) and the
catalogue of built-in resources with their strategies (``builtins``). Above ``validation``,
``crd``, ``patch`` and below ``endpoints``; nothing here touches storage but the Service IP
allocator (through ``controlplane.storage.interface``)."""
