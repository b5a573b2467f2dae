"""``admissionregistration.k8s.io/v1``: MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding, with Kubernetes' v1 defaults
(``SetDefaults_ValidatingWebhook`` / ``_MutatingWebhook`` / ``_ValidatingAdmissionPolicySpec``:
failurePolicy Fail, matchPolicy Equivalent, empty namespace and object selectors, timeoutSeconds
10, rule scope ``*``, service port 443, reinvocationPolicy Never). The admission chain
(``admission/webhooks``, ``admission/policy.py``) reads these objects from their watch caches.
"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.strategy.base import Strategy

Obj = dict[str, Any]


def _rules(rules: Any) -> None:
    for r in rules if isinstance(rules, list) else []:
        if isinstance(r, dict):
            r.setdefault("scope", "*")


def _match_resources(m: Any) -> None:
    if not isinstance(m, dict):
        return
    m.setdefault("namespaceSelector", {})
    m.setdefault("objectSelector", {})
    m.setdefault("matchPolicy", "Equivalent")
    _rules(m.get("resourceRules"))
    _rules(m.get("excludeResourceRules"))


class WebhookConfigurationStrategy(Strategy):
    tracks_generation = True

    def __init__(self, mutating: bool) -> None:
        self.mutating = mutating

    def set_defaults(self, obj: Obj) -> None:
        for wh in obj.get("webhooks") or []:
            if not isinstance(wh, dict):
                continue
            wh.setdefault("failurePolicy", "Fail")
            wh.setdefault("matchPolicy", "Equivalent")
            wh.setdefault("namespaceSelector", {})
            wh.setdefault("objectSelector", {})
            wh.setdefault("timeoutSeconds", 10)
            if self.mutating:
                wh.setdefault("reinvocationPolicy", "Never")
            _rules(wh.get("rules"))
            svc = (wh.get("clientConfig") or {}).get("service") if isinstance(wh.get("clientConfig"), dict) else None
            if isinstance(svc, dict):
                svc.setdefault("port", 443)


class ValidatingAdmissionPolicyStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("failurePolicy", "Fail")
        _match_resources(spec.setdefault("matchConstraints", {}) if "matchConstraints" in spec else None)


class ValidatingAdmissionPolicyBindingStrategy(Strategy):
    tracks_generation = True

    def set_defaults(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            _match_resources(spec.get("matchResources"))
