"""The APIs of who-am-I and may-I, served by the server layer because they need the
authenticator and the authorizer (nothing below the server imports those):
``authentication.k8s.io/v1`` TokenReview and SelfSubjectReview, ``authorization.k8s.io/v1``
SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview and
SelfSubjectRulesReview (create-only, never stored), the TokenRequest subresource
``serviceaccounts/<name>/token`` and ServiceAccount issuer discovery
(``/.well-known/openid-configuration``, ``/openid/v1/jwks``).

``handle`` answers a request ``routes.dispatch`` resolved to one of them (None otherwise);
the request was already authorized (``create`` on the review resource or on
``serviceaccounts/token``) by the filters.
"""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.authentication import oidc
from controlplane.apiserver.authentication import reviews as authn_reviews
from controlplane.apiserver.admission import noderestriction
from controlplane.apiserver.authorization import reviews as authz_reviews
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.request import current

AUTHN, AUTHZ = "authentication.k8s.io", "authorization.k8s.io"
REVIEWS = {(AUTHN, "tokenreviews"), (AUTHN, "selfsubjectreviews"), (AUTHZ, "subjectaccessreviews"),
           (AUTHZ, "localsubjectaccessreviews"), (AUTHZ, "selfsubjectaccessreviews"),
           (AUTHZ, "selfsubjectrulesreviews")}


def _invalid(kind: str, field: str, message: str) -> errors.ApiError:
    return errors.ApiError(422, "Invalid", f'{kind}.{AUTHZ if "Access" in kind or "Rules" in kind else AUTHN} '
                                           f'"" is invalid: {field}: {message}',
                           details={"kind": kind, "group": AUTHZ if "Access" in kind or "Rules" in kind else AUTHN,
                                    "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})


async def handle(security: Any, request: Request, t: hc.Target, verb: str) -> HTTPResponse | None:
    info = t.info
    if (info.group, info.plural) in REVIEWS:
        if verb != "create":
            raise errors.method_not_allowed(f"{request.method} is not supported on {info.plural}")
        return await _review(security, request, t)
    if info.group == "" and info.plural == "serviceaccounts" and t.subresource == "token":
        if verb != "create":
            raise errors.method_not_allowed(f"{request.method} is not supported on serviceaccounts/token")
        return await _token_request(security, request, t)
    return None


async def _review(security: Any, request: Request, t: hc.Target) -> HTTPResponse:
    body = hc.decode_body(request)
    ctx = current()
    user = ctx.user if ctx is not None else None
    plural = t.info.plural
    try:
        if plural == "tokenreviews":
            out = await authn_reviews.token_review(security.authn, body)
        elif plural == "selfsubjectreviews":
            out = authn_reviews.self_subject_review(user, body)
        elif plural == "subjectaccessreviews":
            out = authz_reviews.subject_access_review(security.chain, body)
        elif plural == "localsubjectaccessreviews":
            out = authz_reviews.subject_access_review(security.chain, body, namespace=t.namespace or "")
        elif plural == "selfsubjectaccessreviews":
            out = authz_reviews.self_subject_access_review(security.chain, user, body)
        else:
            from controlplane.apiserver.authorization.bootstrap_policy import NODE_RULES

            out = authz_reviews.self_subject_rules_review(security.chain, security.rbac, user, body, NODE_RULES)
    except (authz_reviews.ReviewInvalid, authn_reviews.RequestInvalid) as e:
        raise _invalid(e.kind, e.field, e.message) from e
    return hc.json_response(out, 201)


async def _token_request(security: Any, request: Request, t: hc.Target) -> HTTPResponse:
    if security.issuer is None:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource "
                                               "(no --service-account-signing-key-file)")
    body = hc.decode_body(request)
    ctx = current()
    ns, name = t.namespace or "", t.name or ""
    if ctx is not None and ctx.user.node_name() is not None:  # NodeRestriction
        ref = ((body.get("spec") or {}).get("boundObjectRef") or {})
        msg = noderestriction.check(ctx.user, "create", "", "serviceaccounts", "token", ns, name, body, None)
        if msg is None:
            pod = await security._get("Pod", ns, ref.get("name", ""))
            msg = noderestriction.check_token_pod(ctx.user, pod, name)
        if msg:
            raise errors.ApiError(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: {msg}',
                                  details={"name": name, "kind": "serviceaccounts"})
    try:
        out = await authn_reviews.token_request(security.issuer, security._get, ns, name, body, security.audiences)
    except authn_reviews.RequestInvalid as e:
        raise errors.ApiError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is invalid: '
                                              f'{e.field}: {e.message}',
                              details={"name": name, "group": AUTHN, "kind": "TokenRequest",
                                       "causes": [{"reason": "FieldValueInvalid", "message": e.message,
                                                   "field": e.field}]}) from e
    except authn_reviews.ObjectMissing as e:
        raise errors.ApiError(404, "NotFound", f'{e.resource} "{e.name}" not found',
                              details={"name": e.name, "kind": e.resource}) from e
    return hc.json_response(out, 201)


def openid_configuration(security: Any) -> dict[str, Any]:
    return oidc.openid_configuration(security.opts.service_account_issuer)


def jwks(security: Any) -> dict[str, Any]:
    if security.validator is None:
        return {"keys": []}
    return oidc.jwks(security.validator)
