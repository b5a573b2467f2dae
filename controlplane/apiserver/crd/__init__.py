"""CustomResourceDefinition schemas: the structural-schema rules a CRD must follow
(``validation``) and checking, pruning and defaulting custom resources against their
version's ``openAPIV3Schema`` (``schema``). Above ``meta`` only. Serving CRDs (registering
their resources, the Established condition, clean-up on delete) is ``server/crds.py``."""
