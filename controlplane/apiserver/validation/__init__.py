"""Validation of built-in objects as kube-apiserver 1.32 reports it: ``objects.validate`` (the
entry the strategies call) runs the schema decode check (``decode``), the metadata rules
(``metadata``) and the kind's rules (``rules`` -> ``core``, ``apps``, ``batch``, with the pod
spec in ``pods`` and the template checks they share in ``podtemplate``). Above ``crd`` (the
CRD object's own rules), ``discovery`` (the schemas) and ``meta``; below ``strategy``."""
