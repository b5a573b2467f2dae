"""Dynamic admission: ``MutatingWebhookConfiguration`` and ``ValidatingWebhookConfiguration``
(``admissionregistration.k8s.io/v1``) called over HTTPS with AdmissionReview v1.
``source.py`` follows the configurations (watch caches) and compiles them, ``matching.py``
decides which webhooks a request goes to, ``client.py`` calls one webhook, ``plugin.py`` is the
two admission plugins (mutating: in order, JSONPatch responses, reinvocation; validating: all at
once).
"""
