"""The ``authentication.k8s.io/v1`` APIs, as pure functions: TokenReview (is this token valid,
and whose is it), SelfSubjectReview (who am I -- ``kubectl auth whoami``) and the
TokenRequest subresource ``serviceaccounts/<name>/token`` (``kubectl create token``, the
agent's projected volumes): a bound token for a ServiceAccount, optionally bound to a Pod,
Secret or Node that must exist (with the given uid) and, for a Pod, run as that ServiceAccount.

Errors are ``RequestInvalid`` (422 with a field) or ``ObjectMissing`` (404). The endpoints
layer routes, authorizes (``create`` on ``tokenreviews`` / ``serviceaccounts/token``) and
answers 201.
"""

from __future__ import annotations

import copy
import datetime as _dt
from typing import Any

from controlplane.apiserver.authentication.authenticator import Authenticator, Unauthorized
from controlplane.apiserver.authentication.serviceaccount import (DEFAULT_EXPIRATION_S, MAX_EXPIRATION_S,
                                                                  MIN_EXPIRATION_S, BoundObject, Getter,
                                                                  InvalidToken, TokenIssuer, TokenValidator)
from controlplane.machinery.userinfo import UserInfo

GROUP = "authentication.k8s.io"


class RequestInvalid(ValueError):
    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.kind, self.field, self.message = kind, field, message


class ObjectMissing(LookupError):
    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" not found')
        self.resource, self.name = resource, name


def _out(body: dict[str, Any], kind: str) -> dict[str, Any]:
    out = copy.deepcopy(body) if body else {}
    out["apiVersion"] = f"{GROUP}/v1"
    out["kind"] = kind
    out.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return out


async def token_review(authn: Authenticator, body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise RequestInvalid("TokenReview", "spec.token", "Required value: token must not be empty")
    out = _out(body, "TokenReview")
    wanted = list(spec.get("audiences") or [])
    try:
        if wanted and authn.service_accounts is not None:
            v = authn.service_accounts
            scoped = TokenValidator([], issuers=v.issuers, audiences=wanted, get=v.get)
            scoped.keys = v.keys
            try:
                user = await scoped.validate(token)
            except InvalidToken as e:
                raise Unauthorized(str(e)) from e
            audiences = wanted
        else:
            user = await authn.authenticate_token(token)
            audiences = list(authn.service_accounts.audiences) if authn.service_accounts else []
        out["status"] = {"authenticated": True, "user": user.to_api(), "audiences": audiences}
    except Unauthorized as e:
        out["status"] = {"authenticated": False, "user": {}, "error": e.reason}
    return out


def self_subject_review(user: UserInfo, body: dict[str, Any]) -> dict[str, Any]:
    out = _out(body, "SelfSubjectReview")
    out["status"] = {"userInfo": user.to_api()}
    return out


async def token_request(issuer: TokenIssuer, get: Getter, namespace: str, sa_name: str, body: dict[str, Any],
                        api_audiences: list[str]) -> dict[str, Any]:
    kind = "TokenRequest"
    spec = dict(body.get("spec") or {})
    exp = spec.get("expirationSeconds")
    exp = DEFAULT_EXPIRATION_S if exp is None else exp
    if not isinstance(exp, int) or exp < MIN_EXPIRATION_S:
        raise RequestInvalid(kind, "spec.expirationSeconds", "may not specify a duration less than 10 minutes")
    if exp > MAX_EXPIRATION_S:
        raise RequestInvalid(kind, "spec.expirationSeconds", "may not specify a duration larger than 2^32 seconds")
    sa = await get("ServiceAccount", namespace, sa_name)
    if sa is None:
        raise ObjectMissing("serviceaccounts", sa_name)
    sa_uid = (sa.get("metadata") or {}).get("uid", "")
    bound = node = None
    ref = spec.get("boundObjectRef")
    if ref:
        rkind, rname, ruid = ref.get("kind"), ref.get("name") or "", ref.get("uid") or ""
        if rkind not in ("Pod", "Secret", "Node"):
            raise RequestInvalid(kind, "spec.boundObjectRef.kind",
                                 f'Unsupported value: "{rkind}": supported values: "Pod", "Secret", "Node"')
        obj = await get(rkind, None if rkind == "Node" else namespace, rname)
        if obj is None:
            raise ObjectMissing(rkind.lower() + "s", rname)
        meta = obj.get("metadata") or {}
        if ruid and meta.get("uid") != ruid:
            raise RequestInvalid(kind, "spec.boundObjectRef.uid",
                                 f'the UID in the bound object reference ({ruid}) does not match the UID in record '
                                 f'({meta.get("uid")}). The object might have been deleted and then recreated')
        bound = BoundObject(rkind, rname, meta.get("uid", ""))
        if rkind == "Pod":
            pod_sa = (obj.get("spec") or {}).get("serviceAccountName") or "default"
            if pod_sa != sa_name:
                raise RequestInvalid(kind, "spec.boundObjectRef",
                                     f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                     f'different serviceaccount name.')
            node_name = (obj.get("spec") or {}).get("nodeName")
            if node_name:
                n = await get("Node", None, node_name)
                if n is not None:
                    node = BoundObject("Node", node_name, (n.get("metadata") or {}).get("uid", ""))
        elif rkind == "Node":
            node, bound = bound, None
    audiences = list(spec.get("audiences") or api_audiences)
    token, exp_at = issuer.issue(namespace, sa_name, sa_uid, audiences=audiences, expiration_s=exp,
                                 bound=bound, node=node)
    out = _out(body, kind)
    out["metadata"].update({"name": sa_name, "namespace": namespace})
    spec["audiences"] = audiences
    spec["expirationSeconds"] = exp
    out["spec"] = spec
    out["status"] = {"token": token, "expirationTimestamp": _dt.datetime.fromtimestamp(
        exp_at, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    return out
