"""Validation of ``admissionregistration.k8s.io/v1`` (``pkg/apis/admissionregistration/validation``
of Kubernetes 1.32, the parts a user meets): webhook names, client configs (exactly one of
``url`` (https) or ``service``), sideEffects, admissionReviewVersions, timeouts, policies,
rules and matchConditions; ValidatingAdmissionPolicy validations (CEL compiled by
``machinery.cel``) and bindings. Caller: ``rules.py``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from controlplane.apiserver.meta.names import Errors, dns1123_subdomain_error
from controlplane.machinery import cel

Obj = dict[str, Any]
OPERATIONS = ("*", "CREATE", "UPDATE", "DELETE", "CONNECT")
_THREE_SEGMENTS = re.compile(r"^[^.]+\.[^.]+\.[^.]+")


def _rules(rules: Any, path: str, errs: Errors, *, operations: bool = True) -> None:
    for i, r in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(r, dict):
            continue
        p = f"{path}[{i}]"
        for key in ("apiGroups", "apiVersions", "resources") + (("operations",) if operations else ()):
            vals = r.get(key)
            if not vals:
                errs.required(f"{p}.{key}")
            elif "*" in vals and len(vals) > 1:
                errs.invalid(f"{p}.{key}", vals, "if '*' is present, must not specify other "
                             + {"operations": "operations", "apiGroups": "API groups",
                                "apiVersions": "API versions", "resources": "resources"}[key])
        for j, op in enumerate(r.get("operations") or [] if operations else []):
            if op not in OPERATIONS:
                errs.not_supported(f"{p}.operations[{j}]", op, OPERATIONS)
        scope = r.get("scope", "*")
        if scope not in ("Cluster", "Namespaced", "*"):
            errs.not_supported(f"{p}.scope", scope, ("Cluster", "Namespaced", "*"))


def _match_conditions(conds: Any, path: str, errs: Errors) -> None:
    names: set[str] = set()
    for i, c in enumerate(conds if isinstance(conds, list) else []):
        if not isinstance(c, dict):
            continue
        name = c.get("name") or ""
        if not name:
            errs.required(f"{path}[{i}].name")
        elif name in names:
            errs.duplicate(f"{path}[{i}].name", name)
        names.add(name)
        msg = cel.compile_error(c.get("expression"))
        if msg:
            errs.invalid(f"{path}[{i}].expression", c.get("expression"), msg)


def _webhook(wh: Obj, path: str, errs: Errors, mutating: bool) -> None:
    name = wh.get("name") or ""
    if not name:
        errs.required(f"{path}.name")
    else:
        msg = dns1123_subdomain_error(name)
        if msg:
            errs.invalid(f"{path}.name", name, msg)
        elif not _THREE_SEGMENTS.match(name):
            errs.invalid(f"{path}.name", name, "should be a domain with at least three segments separated by dots")
    side = wh.get("sideEffects")
    if side is None:
        errs.required(f"{path}.sideEffects", "must specify one of None, NoneOnDryRun")
    elif side not in ("None", "NoneOnDryRun"):
        errs.not_supported(f"{path}.sideEffects", side, ("None", "NoneOnDryRun"))
    versions = wh.get("admissionReviewVersions")
    if not versions:
        errs.required(f"{path}.admissionReviewVersions", "must specify one of v1, v1beta1")
    elif not any(v in ("v1", "v1beta1") for v in versions):
        errs.invalid(f"{path}.admissionReviewVersions", versions, "must include at least one of v1, v1beta1")
    t = wh.get("timeoutSeconds")
    if t is not None and (not isinstance(t, int) or not 1 <= t <= 30):
        errs.invalid(f"{path}.timeoutSeconds", t, "the timeout value must be between 1 and 30 seconds")
    for key, allowed in (("failurePolicy", ("Fail", "Ignore")), ("matchPolicy", ("Equivalent", "Exact"))) + \
            ((("reinvocationPolicy", ("IfNeeded", "Never")),) if mutating else ()):
        v = wh.get(key)
        if v is not None and v not in allowed:
            errs.not_supported(f"{path}.{key}", v, allowed)
    cc = wh.get("clientConfig")
    cpath = f"{path}.clientConfig"
    if not isinstance(cc, dict) or ("url" in cc) == ("service" in cc):
        errs.required(cpath, "exactly one of url or service is required")
    elif "url" in cc:
        u = urlsplit(str(cc["url"]))
        if u.scheme != "https":
            errs.invalid(f"{cpath}.url", cc["url"], "'https' is the only allowed URL scheme")
        elif not u.hostname:
            errs.invalid(f"{cpath}.url", cc["url"], "host must be specified")
        elif u.fragment or u.query:
            errs.invalid(f"{cpath}.url", cc["url"], "fragments and query parameters are not allowed")
    else:
        svc = cc["service"] if isinstance(cc["service"], dict) else {}
        if not svc.get("name"):
            errs.required(f"{cpath}.service.name", "service name is required")
        if not svc.get("namespace"):
            errs.required(f"{cpath}.service.namespace", "service namespace is required")
        port = svc.get("port", 443)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            errs.invalid(f"{cpath}.service.port", port, "port is not valid: must be between 1 and 65535, inclusive")
    _rules(wh.get("rules"), f"{path}.rules", errs)
    _match_conditions(wh.get("matchConditions"), f"{path}.matchConditions", errs)


def _webhooks(obj: Obj, errs: Errors, mutating: bool) -> None:
    names: set[str] = set()
    for i, wh in enumerate(obj.get("webhooks") or []):
        if not isinstance(wh, dict):
            continue
        name = wh.get("name")
        if name and name in names:
            errs.duplicate(f"webhooks[{i}].name", name)
        names.add(name)
        _webhook(wh, f"webhooks[{i}]", errs, mutating)


def mutating_webhook_configuration(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _webhooks(obj, errs, True)


def validating_webhook_configuration(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    _webhooks(obj, errs, False)


def validating_admission_policy(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        errs.required("spec.validations", "validations or auditAnnotations must contain at least one item")
    for i, v in enumerate(spec.get("validations") or []):
        if not isinstance(v, dict):
            continue
        msg = cel.compile_error(v.get("expression"))
        if msg:
            errs.invalid(f"spec.validations[{i}].expression", v.get("expression"), msg)
        if v.get("messageExpression") is not None:
            msg = cel.compile_error(v["messageExpression"])
            if msg:
                errs.invalid(f"spec.validations[{i}].messageExpression", v["messageExpression"], msg)
        reason = v.get("reason")
        if reason is not None and reason not in ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"):
            errs.not_supported(f"spec.validations[{i}].reason", reason,
                               ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"))
    for i, a in enumerate(spec.get("auditAnnotations") or []):
        if isinstance(a, dict):
            msg = cel.compile_error(a.get("valueExpression"))
            if msg:
                errs.invalid(f"spec.auditAnnotations[{i}].valueExpression", a.get("valueExpression"), msg)
    fp = spec.get("failurePolicy")
    if fp is not None and fp not in ("Fail", "Ignore"):
        errs.not_supported("spec.failurePolicy", fp, ("Fail", "Ignore"))
    mc = spec.get("matchConstraints")
    if not isinstance(mc, dict) or not mc.get("resourceRules"):
        errs.required("spec.matchConstraints.resourceRules")
    else:
        _rules(mc.get("resourceRules"), "spec.matchConstraints.resourceRules", errs)
    _match_conditions(spec.get("matchConditions"), "spec.matchConditions", errs)
    pk = spec.get("paramKind")
    if isinstance(pk, dict):
        if not pk.get("kind"):
            errs.required("spec.paramKind.kind")
        if not pk.get("apiVersion"):
            errs.required("spec.paramKind.apiVersion")


def validating_admission_policy_binding(obj: Obj, errs: Errors, update: bool, old: Obj) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if not spec.get("policyName"):
        errs.required("spec.policyName")
    actions = spec.get("validationActions")
    if not actions:
        errs.required("spec.validationActions", "at least one validation action is required")
    else:
        seen: set[str] = set()
        for i, a in enumerate(actions):
            if a not in ("Deny", "Warn", "Audit"):
                errs.not_supported(f"spec.validationActions[{i}]", a, ("Audit", "Deny", "Warn"))
            elif a in seen:
                errs.duplicate(f"spec.validationActions[{i}]", a)
            seen.add(a)
        if "Deny" in seen and "Warn" in seen:
            errs.invalid("spec.validationActions", actions, "must not contain both Deny and Warn (repeating the same "
                         "validation failure information in the API response and headers serves no purpose)")
    ref = spec.get("paramRef")
    if isinstance(ref, dict):
        if ref.get("name") and ref.get("selector") is not None:
            errs.forbidden("spec.paramRef.name", "name and selector are mutually exclusive")
        action = ref.get("parameterNotFoundAction")
        if action is None:
            errs.required("spec.paramRef.parameterNotFoundAction")
        elif action not in ("Allow", "Deny"):
            errs.not_supported("spec.paramRef.parameterNotFoundAction", action, ("Allow", "Deny"))
