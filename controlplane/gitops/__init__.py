"""GitOps for this control plane (issue 18): a kopf operator syncing Git repositories into the
cluster, at the level of Flux's source- and kustomize-controllers.

Modules: ``api`` (names, conditions), ``git`` and ``artifact`` (fetching and packing),
``source`` (GitRepository), ``render`` (kustomize, plain YAML, substitution), ``engine``
(dry run, server-side apply, drift, prune), ``fieldsets`` (other managers' fields),
``health`` (kstatus, CEL), ``depends`` (dependsOn), ``sync`` (Sync), ``manifests_dir``
(the manifests folder), ``receiver`` (webhooks), ``operator`` (kopf wiring), ``cli``.
See docs/gitops.md.
"""
