"""Authorization: may this user do this. ``chain.AuthorizerChain`` runs, in order, the
``system:masters`` short cut, the Node authorizer (``node``) and RBAC (``rbac``, indexed by
subject); ``rules`` holds PolicyRule semantics and the escalation check (``covers``);
``bootstrap_policy`` is Kubernetes' default roles; ``noderestriction`` limits what nodes
write. See docs/security.md."""
