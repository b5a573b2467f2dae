"""ValidatingAdmissionPolicy (``admissionregistration.k8s.io/v1``): in-process validation in CEL,
bound to requests by ValidatingAdmissionPolicyBindings.

A policy does nothing until a binding names it. A request is checked by a (policy, binding)
pair when the policy's ``matchConstraints`` (resource rules, exclusions, namespace and object
selectors, matchPolicy) and the binding's ``matchResources`` select it and every
``matchCondition`` holds. Parameters: the policy's ``paramKind`` resource, the binding's
``paramRef`` (by name, or by selector; in the request's namespace when it names none;
``parameterNotFoundAction`` Allow or Deny). The CEL variables are ``object``, ``oldObject``,
``request``, ``params``, ``namespaceObject``, ``authorizer`` (checks for the requesting user, with
the request's own resource as ``authorizer.requestResource``, decided by the apiserver's
authorizer chain) and ``variables`` (the policy's named expressions); CEL is PyPI
``cel-python`` (``machinery.cel``) with Kubernetes' libraries (``machinery.cellibs``).

A failed validation, per the binding's ``validationActions``: Deny -- ``ValidatingAdmissionPolicy
'p' with binding 'b' denied request: <message>`` with the validation's reason (Invalid 422 by
default, Forbidden 403, ...); Warn -- a ``Warning`` header; Audit -- the audit annotation
``validation.policy.admission.k8s.io/validation_failure``. An expression that fails to evaluate
counts as failed under ``failurePolicy: Fail`` and is skipped under ``Ignore``.
``auditAnnotations`` become ``<policy>/<key>`` audit annotations.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from controlplane.apiserver.admission.attributes import Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.admission.webhooks.matching import exempt, object_matches, rules_match
from controlplane.apiserver.admission.webhooks.matching import namespace_matches
from controlplane.apiserver.admission.webhooks.plugin import review_request
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current
from controlplane.log import get_logger
from controlplane.machinery import cel, celcost
from controlplane.machinery.selectors import LabelSelector

log = get_logger(__name__)
Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
_CODES = {"Invalid": 422, "Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}


def _selector(d: Any) -> LabelSelector:
    try:
        return LabelSelector.from_dict(d if isinstance(d, dict) else {})
    except ValueError:
        return LabelSelector.nothing()


async def _resources_match(m: Obj | None, a: Attributes, lookups: Lookups) -> bool:
    if not isinstance(m, dict):
        return True
    policy = str(m.get("matchPolicy") or "Equivalent")
    if m.get("resourceRules") is not None and not rules_match(m.get("resourceRules"), a, policy):
        return False
    if m.get("excludeResourceRules") and rules_match(m.get("excludeResourceRules"), a, policy):
        return False
    if not await namespace_matches(_selector(m.get("namespaceSelector")), a, lookups):
        return False
    return object_matches(_selector(m.get("objectSelector")), a)


class _Feed:
    def __init__(self, store: dict[str, Obj]) -> None:
        self.store = store

    def reset(self, objects: Iterable[Obj]) -> None:
        self.store.clear()
        self.store.update({o["metadata"]["name"]: o for o in objects})

    def apply(self, etype: str, obj: Obj) -> None:
        if etype == "DELETED":
            self.store.pop(obj["metadata"]["name"], None)
        else:
            self.store[obj["metadata"]["name"]] = obj


class _Failure(Exception):
    def __init__(self, message: str, reason: str = "Invalid") -> None:
        self.message, self.reason = message, reason


class ValidatingAdmissionPolicy(Plugin):
    name = "ValidatingAdmissionPolicy"
    validates = True

    def __init__(self, host: Any, lookups: Lookups) -> None:
        self.host = host
        self.lookups = lookups
        self.policies: dict[str, Obj] = {}
        self.bindings: dict[str, Obj] = {}

    async def start(self) -> None:
        for plural, store in (("validatingadmissionpolicies", self.policies),
                              ("validatingadmissionpolicybindings", self.bindings)):
            info = self.host.registry.get(GROUP, "v1", plural)
            cache = await self.host.caches.cache_for(info)
            cache.observe(_Feed(store))

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return True

    def active(self, namespace: str) -> bool:
        return bool(self.bindings)

    async def validate(self, a: Attributes) -> None:
        if exempt(a):
            return
        request: Obj | None = None
        for bname in sorted(self.bindings):
            binding = self.bindings[bname]
            bspec = binding.get("spec") or {}
            policy = self.policies.get(str(bspec.get("policyName", "")))
            if policy is None:
                continue
            pspec = policy.get("spec") or {}
            if not await _resources_match(pspec.get("matchConstraints") or {}, a, self.lookups):
                continue
            if bspec.get("matchResources") and not await _resources_match(bspec["matchResources"], a, self.lookups):
                continue
            if request is None:
                request = review_request(a, "")
            await self._evaluate(a, policy, binding, request)

    def _params(self, a: Attributes, pspec: Obj, bspec: Obj) -> list[Any]:
        """The parameter objects to evaluate with ([None] when the policy takes none)."""
        pk = pspec.get("paramKind")
        if not isinstance(pk, dict):
            return [None]
        ref = bspec.get("paramRef")
        if not isinstance(ref, dict):
            raise _Failure("failed to configure binding: paramRef is required when paramKind is set", "Invalid")
        group, _, version = str(pk.get("apiVersion", "")).rpartition("/")
        info = self.host.registry.by_kind(group, version, str(pk.get("kind", "")))
        if info is None:
            raise _Failure(f"failed to configure policy: failed to find resource referenced by paramKind: "
                           f"'{pk.get('apiVersion')}, Kind={pk.get('kind')}'")
        cache = self.host.caches.if_ready(info)
        ns = ref.get("namespace") or (a.namespace if info.namespaced else "")
        found: list[Obj] = []
        if cache is not None:
            if ref.get("name"):
                key_obj = next((e for e in (cache.entries_in(ns) if info.namespaced else cache.list()[0])
                                if e.name == ref["name"]), None)
                if key_obj is not None:
                    found.append(key_obj.obj())
            else:
                sel = _selector(ref.get("selector"))
                entries = cache.entries_in(ns) if info.namespaced else cache.list()[0]
                found = [e.obj() for e in entries if sel.matches(e.labels)]
        if not found:
            if ref.get("parameterNotFoundAction") == "Allow":
                return []
            raise _Failure("failed to configure binding: no params found for policy binding with `Deny` "
                           "parameterNotFoundAction")
        return found

    async def _evaluate(self, a: Attributes, policy: Obj, binding: Obj, request: Obj) -> None:
        pspec, bspec = policy.get("spec") or {}, binding.get("spec") or {}
        pname, bname = policy["metadata"]["name"], binding["metadata"]["name"]
        actions = list(bspec.get("validationActions") or [])
        fail_closed = (pspec.get("failurePolicy") or "Fail") == "Fail"
        try:
            params_list = self._params(a, pspec, bspec)
        except _Failure as e:
            if fail_closed:
                self._report(a, pname, bname, actions, e.message, e.reason, None)
            return
        ns_obj = self.lookups.get("namespaces", None, a.namespace) if a.namespace else None
        base = {"object": cel.to_cel(request.get("object")), "oldObject": cel.to_cel(request.get("oldObject")),
                "request": cel.to_cel(request), "namespaceObject": cel.to_cel(ns_obj),
                "authorizer": cel.authorizer(_decide, a.user, {
                    "group": a.group, "version": a.info.version, "resource": a.resource,
                    "subresource": a.subresource, "namespace": a.namespace, "name": a.object_name()})}
        for params in params_list:
            act = dict(base, params=cel.to_cel(params))
            # the runtime cost budget of one evaluation of the policy (celconfig.RuntimeCELCostBudget)
            budget = celcost.Budget()
            try:
                variables = {}
                for v in pspec.get("variables") or []:
                    act["variables"] = cel.to_cel(variables)
                    variables[str(v.get("name"))] = cel.evaluate(str(v.get("expression", "")), act, budget)
                act["variables"] = cel.to_cel(variables)
                if not all(cel.evaluate(str(c.get("expression", "")), act, budget) is True
                           for c in pspec.get("matchConditions") or []):
                    continue
            except cel.CELError as e:
                if fail_closed:
                    self._report(a, pname, bname, actions, f"failed to evaluate: {e}", "Invalid", None)
                continue
            for i, v in enumerate(pspec.get("validations") or []):
                expr = str(v.get("expression", ""))
                try:
                    ok = cel.evaluate(expr, act, budget) is True
                except cel.CELCostError as e:
                    if e.out_of_budget:
                        # ForInput's error: the policy's remaining expressions are not run
                        if fail_closed:
                            self._report(a, pname, bname, actions, str(e), "Invalid", None)
                        break
                    if fail_closed:
                        self._report(a, pname, bname, actions, f"expression '{expr}' resulted in error: {e}",
                                     str(v.get("reason") or "Invalid"), i)
                    continue
                except cel.CELError as e:
                    if fail_closed:
                        self._report(a, pname, bname, actions, f"expression '{expr}' resulted in error: {e}",
                                     str(v.get("reason") or "Invalid"), i)
                    continue
                if ok:
                    continue
                message = v.get("message") or f"failed expression: {expr}"
                if v.get("messageExpression"):
                    try:
                        m = cel.evaluate(str(v["messageExpression"]), act, budget)
                        if isinstance(m, str) and m.strip():
                            message = m
                    except cel.CELError:
                        pass
                self._report(a, pname, bname, actions, str(message), str(v.get("reason") or "Invalid"), i)
            for ann in pspec.get("auditAnnotations") or []:
                try:
                    value = cel.evaluate(str(ann.get("valueExpression", "")), act, budget)
                except cel.CELError:
                    continue
                if value is not None:
                    a.annotate(f"{pname}/{ann.get('key', '')}", str(value))

    def _report(self, a: Attributes, pname: str, bname: str, actions: list[str], message: str, reason: str,
                index: int | None) -> None:
        if "Audit" in actions:
            a.annotate("validation.policy.admission.k8s.io/validation_failure", json.dumps(
                [{"message": message, "policy": pname, "binding": bname, "expressionIndex": index or 0,
                  "validationActions": actions}], separators=(",", ":")))
        if "Warn" in actions:
            a.warn(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding '{bname}': {message}")
        if "Deny" in actions:
            # admission.NewForbidden (``widgets.example.com "w" is forbidden: ...``, its details)
            # with the validation's reason and code and the message as a cause: kubectl prints
            # ``The widgets "w" is invalid: : ValidatingAdmissionPolicy ...`` for Invalid
            text = f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: {message}"
            err = forbidden(a, text)
            err.code, err.reason = _CODES.get(reason, 422), reason
            err.details["causes"] = [{"message": text}]
            raise err


def _decide(user: Any, attrs: dict[str, str]) -> tuple[str, str, str]:
    """The ``authorizer`` library's check: the apiserver's authorizer chain for ``user`` (the
    request's context carries it; the apiserver's own writes, without one, are allowed)."""
    ctx = current()
    if ctx is None:
        return "allow", "", ""
    allowed = ctx.authorizer.allowed(user, attrs.get("verb", ""), group=attrs.get("group", ""),
                                     resource=attrs.get("resource", ""), subresource=attrs.get("subresource", ""),
                                     namespace=attrs.get("namespace", ""), name=attrs.get("name", ""),
                                     path=attrs.get("path", ""))
    return ("allow", "", "") if allowed else ("deny", "", "")
