"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the two plugins that send a request
to the webhooks configured for it, as AdmissionReview v1.

Mutating webhooks are called one after the other (configuration name, then position); a
``JSONPatch`` answer is applied before the next is called; webhooks with
``reinvocationPolicy: IfNeeded`` are called once more when a later webhook changed the object.
Validating webhooks are called all at once; the first refusal in their order wins. A webhook
that refuses gives ``admission webhook "x" denied the request: <message>`` (its status code,
at least 400); one that cannot be called, times out or answers something unreadable gives
``Internal error occurred: failed calling webhook "x": ...`` (500) under ``failurePolicy:
Fail`` and is skipped under ``Ignore`` (noted in the audit annotation
``failed-open.validating.webhook.admission.k8s.io/round_0_index_N``). Warnings go to the
``Warning`` header, the webhooks' audit annotations to the audit event (``<webhook>/<key>``),
and each mutating call is recorded as ``mutation.webhook.admission.k8s.io/round_R_index_N``
(with its patch at audit level Request and above). A dry run reaches only webhooks declaring
``sideEffects`` None or NoneOnDryRun. ``matchConditions`` are CEL (``machinery.cel``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import ujson

from controlplane.apiserver.admission.attributes import Attributes
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.admission.webhooks.client import CallError
from controlplane.apiserver.admission.webhooks.matching import exempt, namespace_matches, object_matches, rules_match
from controlplane.apiserver.admission.webhooks.source import Webhook, WebhookSource
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.patch.json_patch import apply_json_patch
from controlplane.apiserver.validation.objects import check_decodable
from controlplane.log import get_logger
from controlplane.machinery import cel

log = get_logger(__name__)
Obj = dict[str, Any]
REVIEW_GV = "admission.k8s.io/v1"
_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


class _Skip(Exception):
    """The webhook failed and its failurePolicy is Ignore."""


def review_request(a: Attributes, uid: str) -> Obj:
    info = a.info
    kind = info.kind
    if a.operation == "CONNECT" and isinstance(a.obj, dict) and a.obj.get("kind"):
        kind = a.obj["kind"]
    gvk = {"group": info.group, "version": info.version, "kind": kind}
    gvr = {"group": info.group, "version": info.version, "resource": info.plural}
    req: Obj = {"uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr}
    if a.subresource:
        req["subResource"] = req["requestSubResource"] = a.subresource
    name = a.object_name()
    if name:
        req["name"] = name
    if a.namespace:
        req["namespace"] = a.namespace
    req["operation"] = a.operation
    req["userInfo"] = a.user.to_api()
    req["object"] = a.obj if a.operation != "DELETE" else None
    req["oldObject"] = a.old
    req["dryRun"] = a.dry_run
    if a.operation in _OPTIONS:
        req["options"] = {"kind": _OPTIONS[a.operation], "apiVersion": "meta.k8s.io/v1", **(a.options or {})}
    return req


def _match_conditions(hook: Webhook, a: Attributes, request: Obj) -> bool:
    conds = hook.spec.get("matchConditions") or []
    if not conds:
        return True
    act = {"object": cel.to_cel(request.get("object")), "oldObject": cel.to_cel(request.get("oldObject")),
           "request": cel.to_cel(request)}
    for c in conds:
        try:
            ok = cel.evaluate(str(c.get("expression", "")), act)
        except cel.CELError as e:
            raise CallError(f"failed to evaluate match condition {c.get('name', '')!r}: {e}") from None
        if ok is not True:
            return False
    return True


class _WebhookPlugin(Plugin):
    mutating_kind = False

    def __init__(self, source: WebhookSource, lookups: Lookups) -> None:
        self.source = source
        self.lookups = lookups

    def hooks(self) -> list[Webhook]:
        return self.source.mutating if self.mutating_kind else self.source.validating

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return not (info.group == "admissionregistration.k8s.io" and info.plural in _EXEMPT_PLURALS)

    def active(self, namespace: str) -> bool:
        return bool(self.hooks())

    async def _selected(self, a: Attributes) -> list[tuple[int, Webhook]]:
        if exempt(a):
            return []
        out = []
        for i, hook in enumerate(self.hooks()):
            spec = hook.spec
            if not rules_match(spec.get("rules"), a, str(spec.get("matchPolicy") or "Equivalent")):
                continue
            if not await namespace_matches(hook.namespace_selector, a, self.lookups):
                continue
            if not object_matches(hook.object_selector, a):
                continue
            out.append((i, hook))
        return out

    async def _call(self, hook: Webhook, a: Attributes, round_: int, index: int) -> Obj | None:
        """The webhook's ``response`` (None: not called -- match conditions false); raises
        ``_Skip`` (failed, Ignore) or ``ApiError``."""
        if a.dry_run and hook.side_effects not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        uid = str(uuid.uuid4())
        request = review_request(a, uid)
        try:
            if not _match_conditions(hook, a, request):
                return None
            url, ca, server_name = self._target(hook)
            body = ujson.dumps({"apiVersion": REVIEW_GV, "kind": "AdmissionReview", "request": request},
                               ensure_ascii=False, escape_forward_slashes=False).encode()
            assert self.source.client is not None
            answer = await self.source.client.post(url, body, ca_bundle=ca, timeout=hook.timeout,
                                                   server_hostname=server_name)
            return self._verify(answer, uid)
        except CallError as e:
            message = f'failed calling webhook "{hook.name}": {e}'
            if "failed to evaluate" not in str(e) and "received invalid webhook response" not in str(e):
                message = f'failed calling webhook "{hook.name}": failed to call webhook: {e}'
            if hook.failure_policy == "Ignore":
                log.warning("webhook failed open", webhook=hook.name, error=str(e))
                kind = "mutation" if self.mutating_kind else "validating"
                a.annotate(f"failed-open.{kind}.webhook.admission.k8s.io/round_{round_}_index_{index}", hook.name)
                raise _Skip() from None
            raise errors.ApiError(500, "InternalError", f"Internal error occurred: {message}",
                                  details={"causes": [{"message": message}]}) from None

    def _target(self, hook: Webhook) -> tuple[str, str | None, str | None]:
        cc = hook.spec.get("clientConfig") or {}
        ca = cc.get("caBundle") or None
        if cc.get("url"):
            return str(cc["url"]), ca, None
        svc = cc.get("service") or {}
        ns, name = str(svc.get("namespace", "")), str(svc.get("name", ""))
        port = int(svc.get("port") or 443)
        path = str(svc.get("path") or "")
        host = f"{name}.{ns}.svc"
        service = self.lookups.get("services", ns, name)
        if service is None:
            raise CallError(f'Post "https://{host}:{port}{path}": service "{name}" not found')
        addr = self._endpoint(service, port)
        if addr is None:
            raise CallError(f'Post "https://{host}:{port}{path}": no endpoints available for service "{name}"')
        ip, target = addr
        return f"https://{ip}:{target}{path}", ca, host

    def _endpoint(self, service: Obj, port: int) -> tuple[str, int] | None:
        """An address of the service's endpoints serving ``port`` (else its clusterIP)."""
        spec = service.get("spec") or {}
        sp = next((p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port") == port), None)
        if sp is None:
            return None
        meta = service["metadata"]
        ep = self.lookups.get("endpoints", meta.get("namespace"), meta["name"])
        for subset in (ep or {}).get("subsets") or []:
            ports = subset.get("ports") or []
            match = next((p for p in ports if (sp.get("name") and p.get("name") == sp.get("name"))
                          or len(ports) == 1), None)
            addrs = subset.get("addresses") or []
            if match is not None and addrs:
                return str(addrs[0].get("ip")), int(match.get("port"))
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            return str(ip), port
        return None

    def _verify(self, answer: Any, uid: str) -> Obj:
        def bad(msg: str) -> CallError:
            return CallError(f"received invalid webhook response: {msg}")
        if not isinstance(answer, dict):
            raise CallError("couldn't get version/kind; json parse error: expected an object")
        gvk = f"{answer.get('apiVersion', '')}, Kind={answer.get('kind', '')}"
        resp = answer.get("response")
        if not isinstance(resp, dict):
            raise bad("webhook response was absent")
        if resp.get("uid") != uid:
            raise bad(f'expected response.uid="{uid}", got "{resp.get("uid", "")}"')
        if gvk != f"{REVIEW_GV}, Kind=AdmissionReview":
            raise bad(f"expected webhook response of {REVIEW_GV}, Kind=AdmissionReview, got {gvk}")
        if not isinstance(resp.get("allowed"), bool):
            raise bad("response.allowed must be a boolean")
        ptype = resp.get("patchType") or ""
        if resp.get("patch") and not ptype:
            raise bad("webhook returned response.patch but not response.patchType")
        if ptype and not self.mutating_kind:
            raise bad("validating webhook may not return response.patchType")
        if ptype and ptype != "JSONPatch":
            raise bad(f'webhook returned invalid response.patchType of "{ptype}"')
        return resp

    def _outcome(self, hook: Webhook, a: Attributes, resp: Obj) -> None:
        """Warnings and audit annotations of an answer; raises the refusal."""
        warnings = resp.get("warnings")
        if isinstance(warnings, list):
            a.warn(*[str(w) for w in warnings if w])
        for k, v in (resp.get("auditAnnotations") or {}).items():
            a.annotate(f"{hook.name}/{k}", str(v))
        if resp["allowed"]:
            return
        st = resp.get("status") if isinstance(resp.get("status"), dict) else {}
        code = int(st.get("code") or 0)
        code = 400 if code < 400 else code
        denied = f'admission webhook "{hook.name}" denied the request'
        if st.get("message"):
            message = f"{denied}: {st['message']}"
        elif st.get("reason"):
            message = f"{denied}: {st['reason']}"
        else:
            message = f"{denied} without explanation"
        raise errors.ApiError(code, str(st.get("reason") or ""), message, details=st.get("details") or None)


_EXEMPT_PLURALS = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                             "validatingadmissionpolicies", "validatingadmissionpolicybindings"})


class MutatingWebhooks(_WebhookPlugin):
    name = "MutatingAdmissionWebhook"
    mutates = True
    mutating_kind = True

    async def admit(self, a: Attributes) -> None:
        selected = await self._selected(a)
        if not selected:
            return
        if isinstance(a.obj, dict) and a.operation != "CONNECT":
            a.obj = a.info.strategy.default(a.obj)  # webhooks see defaulted objects, as in Kubernetes
        called: list[tuple[int, Webhook, int]] = []  # (index, hook, mutations so far after its call)
        mutations = 0
        for index, hook in selected:
            if await self._invoke(hook, a, 0, index):
                mutations += 1
            called.append((index, hook, mutations))
        # reinvocation: IfNeeded webhooks called before another webhook changed the object, once
        for index, hook, after in called:
            if hook.reinvocation == "IfNeeded" and mutations > after:
                await self._invoke(hook, a, 1, index)

    async def _invoke(self, hook: Webhook, a: Attributes, round_: int, index: int) -> bool:
        try:
            resp = await self._call(hook, a, round_, index)
        except _Skip:
            return False
        if resp is None:
            return False
        self._outcome(hook, a, resp)
        patch_b64 = resp.get("patch")
        mutated = False
        ops: Any = None
        if patch_b64:
            try:
                ops = json.loads(base64.b64decode(patch_b64))
            except (ValueError, TypeError) as e:
                raise errors.ApiError(500, "InternalError", f"Internal error occurred: {e}") from None
            if ops:
                if a.obj is None:
                    raise errors.ApiError(500, "InternalError", f'Internal error occurred: admission webhook '
                                          f'"{hook.name}" attempted to modify the object, which is not supported '
                                          "for this operation")
                try:
                    patched = apply_json_patch(a.obj, ops)
                except errors.ApiError as e:
                    raise errors.ApiError(500, "InternalError", f"Internal error occurred: {e.message}") from None
                if not isinstance(patched, dict):
                    raise errors.ApiError(500, "InternalError", "Internal error occurred: the patch did not "
                                          "produce an object")
                try:  # (Kubernetes decodes the patched object: wrong types are an internal error)
                    check_decodable(patched, a.info.gvk)
                except errors.ApiError as e:
                    raise errors.ApiError(500, "InternalError", f"Internal error occurred: {e.message}") from None
                mutated = patched != a.obj
                a.obj = patched
        key = f"round_{round_}_index_{index}"
        a.annotate(f"mutation.webhook.admission.k8s.io/{key}", json.dumps(
            {"configuration": hook.configuration, "webhook": hook.name, "mutated": mutated}, separators=(",", ":")))
        if mutated and a.audit_level_at_least("Request"):
            a.annotate(f"patch.webhook.admission.k8s.io/{key}", json.dumps(
                {"configuration": hook.configuration, "webhook": hook.name, "patch": ops, "patchType": "JSONPatch"},
                separators=(",", ":")))
        return mutated


class ValidatingWebhooks(_WebhookPlugin):
    name = "ValidatingAdmissionWebhook"
    validates = True

    async def validate(self, a: Attributes) -> None:
        selected = await self._selected(a)
        if not selected:
            return
        results = await asyncio.gather(*(self._one(hook, a, index) for index, hook in selected),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _one(self, hook: Webhook, a: Attributes, index: int) -> None:
        try:
            resp = await self._call(hook, a, 0, index)
        except _Skip:
            return
        if resp is not None:
            self._outcome(hook, a, resp)
