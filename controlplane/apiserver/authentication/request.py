"""The per-request security context every later step reads: who (``user``; ``authenticated_as``
the real user when impersonating), what (``attrs``: authorization attributes), and the
authorizer itself, so the admission chain can ask further questions (``may this user
``use`` that PodSecurityPolicy / ``bind`` that role?``). The server layer puts one on each
request (``request.ctx.security``) before calling any handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.authorization.attributes import Attributes


@dataclass
class RequestContext:
    user: UserInfo
    attrs: Attributes
    authorizer: Any  # chain.AuthorizerChain (or AlwaysAllow): .authorize(Attributes), .allowed(user, verb, ...)
    authenticated_as: UserInfo | None = None  # the real user when ``user`` is impersonated
    audit: Any = None  # audit.event.AuditContext when the request is audited

    def allowed(self, verb: str, **kw: str) -> bool:
        return bool(self.authorizer.allowed(self.user, verb, **kw))
