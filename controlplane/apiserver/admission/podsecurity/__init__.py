"""Pod Security admission: the Pod Security Standards (privileged, baseline, restricted) enforced,
audited and warned about per namespace through its ``pod-security.kubernetes.io/*`` labels.
``checks.py`` holds the checks and the evaluator, ``plugin.py`` the admission plugin.
"""
