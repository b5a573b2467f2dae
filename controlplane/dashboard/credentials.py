"""What a user signs in with: a bearer token, or a kubeconfig's credentials (an embedded client
certificate and key, or a token), turned into what the HTTP client to the apiserver needs.

A user entry without credentials signs in as anonymous, which the sign-in check accepts only
where the API serves anonymous requests (``upstream.Upstream.who_am_i``). Only *embedded* credentials are accepted from an uploaded kubeconfig: file paths
(``client-certificate``, ``tokenFile``) would name files on the dashboard's machine, and exec
plugins would run commands there, so both are refused with a message. The kubeconfig's
cluster entry (server URL, CA) is ignored: the dashboard talks to the one cluster it was
started for (``cluster.ClusterInfo``), whatever an uploaded file points at.

Neighbours: ``upstream`` builds the client from a ``Credentials``; ``server`` parses sign-in
requests with ``from_token`` / ``from_kubeconfig``.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any

import yaml


class CredentialError(ValueError):
    """The submitted credentials cannot be used (the message says why, for the sign-in form)."""


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

    @property
    def kind(self) -> str:
        return "client certificate" if self.cert_pem else "token" if self.token else "anonymous"

    @property
    def anonymous(self) -> bool:
        return not (self.token or self.cert_pem)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def apply_to(self, ctx: ssl.SSLContext) -> None:
        """Load the client certificate into ``ctx``. ``ssl`` only reads certificates from files:
        they are written to a private (0700) temporary directory and removed at once."""
        if not (self.cert_pem and self.key_pem):
            return
        with tempfile.TemporaryDirectory(prefix="cp-dashboard-") as d:
            os.chmod(d, 0o700)
            cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
            for path, data in ((cert, self.cert_pem), (key, self.key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                ctx.load_cert_chain(cert, key)
            except ssl.SSLError as e:
                raise CredentialError(f"the client certificate and key do not load: {e.reason or e}") from e


def from_token(token: Any) -> Credentials:
    if not isinstance(token, str) or not token.strip():
        raise CredentialError("a token is required")
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if any(c.isspace() for c in token) or not token.isprintable():
        raise CredentialError("a token is one line without spaces")
    return Credentials(token=token)


def _b64(user: dict, key: str) -> bytes:
    try:
        return base64.b64decode(str(user[key]), validate=True)
    except (binascii.Error, ValueError) as e:
        raise CredentialError(f"{key} is not valid base64") from e


def from_kubeconfig(text: Any, context: str | None = None) -> Credentials:
    """The credentials of the kubeconfig's current (or named) context's user."""
    if not isinstance(text, str) or not text.strip():
        raise CredentialError("the kubeconfig is empty")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CredentialError(f"the kubeconfig is not valid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise CredentialError("the kubeconfig is not a YAML mapping")
    contexts = {c.get("name"): c.get("context") or {} for c in cfg.get("contexts") or [] if isinstance(c, dict)}
    users = {u.get("name"): u.get("user") or {} for u in cfg.get("users") or [] if isinstance(u, dict)}
    name = context or cfg.get("current-context")
    if name:
        if name not in contexts:
            raise CredentialError(f'context "{name}" is not in the kubeconfig')
        uname = contexts[name].get("user")
    elif len(users) == 1:
        uname = next(iter(users))
    else:
        raise CredentialError("the kubeconfig has no current-context")
    user = users.get(uname)
    if user is None:
        raise CredentialError(f'user "{uname}" is not in the kubeconfig')
    if not isinstance(user, dict):
        raise CredentialError(f'user "{uname}" is not a mapping')
    if "exec" in user or "auth-provider" in user:
        raise CredentialError("credential plugins (exec, auth-provider) are not run by the dashboard; "
                              "use a token or embedded client certificate")
    for key in ("client-certificate", "client-key", "tokenFile"):
        if key in user:
            raise CredentialError(f"{key} names a file; the dashboard accepts only embedded credentials "
                                  "(client-certificate-data, client-key-data, token)")
    if user.get("client-certificate-data") or user.get("client-key-data"):
        if not (user.get("client-certificate-data") and user.get("client-key-data")):
            raise CredentialError("client-certificate-data and client-key-data go together")
        cert, key = _b64(user, "client-certificate-data"), _b64(user, "client-key-data")
        if b"-----BEGIN" not in cert or b"-----BEGIN" not in key:
            raise CredentialError("client-certificate-data and client-key-data must be PEM")
        return Credentials(cert_pem=cert, key_pem=key, token=str(user["token"]) if user.get("token") else None)
    if user.get("token"):
        return from_token(user["token"])
    if user.get("username") or user.get("password"):
        raise CredentialError("basic authentication is not supported (Kubernetes removed it)")
    # no credentials: anonymous, accepted only where the API lets anonymous requests in
    return Credentials()
