"""The apiserver's bottom layer: the API machinery every other sub-package shares (what
Kubernetes keeps in k8s.io/apimachinery): ``errors`` (``ApiError``, rendered as a ``Status``),
``names`` (field errors and the name/label syntax rules, with Kubernetes' messages),
``objectmeta`` (system fields: uid, creationTimestamp, generateName) and ``jsonutil`` (the
JSON codec). It imports nothing else of the apiserver."""
