"""The audit log: Kubernetes' audit policy (``policy``), ``audit.k8s.io/v1`` events
(``event``) and the rotated JSON-lines file they go to (``writer``). See docs/security.md."""
