"""ServiceAccount tokens: JWTs signed with the cluster's ServiceAccount key (PyJWT, RS256),
shaped as kube-apiserver makes them, and their validation.

Bound tokens (TokenRequest, projected volumes): ``iss``, ``sub`` =
``system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``/``iat``/``nbf``, ``jti`` and the private
``kubernetes.io`` claim naming the namespace, the ServiceAccount (name, uid) and the object the
token is bound to (a pod, with its node, or a secret). A bound token is valid only while
those objects exist with the same uid and are not being deleted, and only for the audiences
the apiserver accepts. Legacy tokens (``iss: kubernetes/serviceaccount``, the
``kubernetes.io/serviceaccount/*`` claims) are valid while their Secret exists.

The key id (``kid``) is Kubernetes': base64url(sha256(DER public key)). Validation reads
objects through ``Getter`` (the apiserver passes a function over its store), so this module
knows nothing of storage. Neighbours: ``oidc`` (discovery + JWKS of the same keys),
``authenticator`` (the token chain and its cache), the TokenRequest endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import jwt
from cryptography.hazmat.primitives import serialization

from controlplane.machinery import userinfo as u
from controlplane.machinery.userinfo import UserInfo

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
MIN_EXPIRATION_S = 600  # TokenRequest: expirationSeconds below 10 minutes is invalid
DEFAULT_EXPIRATION_S = 3600
MAX_EXPIRATION_S = 2**32

# (kind, namespace, name) -> the object's JSON or None
Getter = Callable[[str, "str | None", str], Awaitable["dict[str, Any] | None"]]


class InvalidToken(Exception):
    """The token is a ServiceAccount token but not valid (-> 401)."""


def key_id(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _alg(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    return "ES256" if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) else "RS256"


@dataclass
class BoundObject:
    kind: str  # "Pod" | "Secret" | "Node"
    name: str
    uid: str


class TokenIssuer:
    """Signs tokens with one private key (the apiserver's ``--service-account-signing-key-file``)."""

    def __init__(self, private_key_pem: bytes, issuer: str = DEFAULT_ISSUER) -> None:
        self.key = serialization.load_pem_private_key(private_key_pem, password=None)
        self.issuer = issuer
        self.kid = key_id(self.key.public_key())
        self.alg = _alg(self.key)

    def issue(self, namespace: str, sa_name: str, sa_uid: str, *, audiences: list[str] | None = None,
              expiration_s: int = DEFAULT_EXPIRATION_S, bound: BoundObject | None = None,
              node: BoundObject | None = None, now: float | None = None) -> tuple[str, int]:
        """(token, expiry unix time) of a bound token."""
        t = int(now if now is not None else time.time())
        exp = t + int(expiration_s)
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
        if bound is not None:
            k8s[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        if node is not None:
            k8s["node"] = {"name": node.name, "uid": node.uid}
        claims = {"aud": list(audiences or [self.issuer]), "exp": exp, "iat": t, "nbf": t, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "sub": f"{u.SA_PREFIX}{namespace}:{sa_name}"}
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"kid": self.kid}), exp

    def issue_legacy(self, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        """A never-expiring token of a ``kubernetes.io/service-account-token`` Secret."""
        claims = {"iss": LEGACY_ISSUER, "kubernetes.io/serviceaccount/namespace": namespace,
                  "kubernetes.io/serviceaccount/secret.name": secret_name,
                  "kubernetes.io/serviceaccount/service-account.name": sa_name,
                  "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
                  "sub": f"{u.SA_PREFIX}{namespace}:{sa_name}"}
        return jwt.encode(claims, self.key, algorithm=self.alg, headers={"kid": self.kid})


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class TokenValidator:
    """Verifies tokens against the public keys (``--service-account-key-file``), the accepted
    issuers and audiences (``--api-audiences``), then the bound objects through ``get``."""

    def __init__(self, public_keys_pem: list[bytes], *, issuers: list[str] | None = None,
                 audiences: list[str] | None = None, get: Getter | None = None,
                 leeway_s: int = 0) -> None:
        self.keys: dict[str, Any] = {}
        for pem in public_keys_pem:
            for k in _load_public_keys(pem):
                self.keys[key_id(k)] = k
        self.issuers = list(issuers or [DEFAULT_ISSUER])
        self.audiences = list(audiences or self.issuers[:1])
        self.get = get
        self.leeway = leeway_s

    def _key_for(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise InvalidToken(f"malformed token: {e}") from e
        kid = header.get("kid")
        if kid and kid in self.keys:
            return self.keys[kid], header.get("alg")
        if not kid and len(self.keys) == 1:
            return next(iter(self.keys.values())), header.get("alg")
        raise InvalidToken("invalid signature: no key with this key id")

    async def validate(self, token: str, now: float | None = None) -> UserInfo:
        """The user of a valid token; raises ``InvalidToken`` otherwise."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise InvalidToken(f"malformed token: {e}") from e
        iss = unverified.get("iss")
        if iss == LEGACY_ISSUER:
            return await self._validate_legacy(token)
        if iss not in self.issuers:
            raise InvalidToken("token issuer is not accepted")
        key, alg = self._key_for(token)
        try:
            claims = jwt.decode(token, key, algorithms=[alg if alg in ("RS256", "ES256") else "RS256"],
                                audience=self.audiences, issuer=self.issuers,
                                options={"require": ["exp", "iat", "sub", "aud"]}, leeway=self.leeway)
        except jwt.ExpiredSignatureError as e:
            raise InvalidToken("service account token has expired") from e
        except jwt.InvalidAudienceError as e:
            raise InvalidToken("token audiences is invalid for the target audiences") from e
        except jwt.PyJWTError as e:
            raise InvalidToken(f"invalid token: {e}") from e
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace") or ""
        sa = k8s.get("serviceaccount") or {}
        if not ns or not sa.get("name") or claims.get("sub") != f"{u.SA_PREFIX}{ns}:{sa['name']}":
            raise InvalidToken("service account token claims are malformed")
        extra: dict[str, list[str]] = {}
        if claims.get("jti"):
            extra[u.EXTRA_CREDENTIAL_ID] = [f"JTI={claims['jti']}"]
        sa_obj = await self._live("ServiceAccount", ns, sa["name"], sa.get("uid", ""))
        pod = k8s.get("pod")
        if pod:
            await self._live("Pod", ns, pod.get("name", ""), pod.get("uid", ""))
            extra[u.EXTRA_POD_NAME] = [pod.get("name", "")]
            extra[u.EXTRA_POD_UID] = [pod.get("uid", "")]
        secret = k8s.get("secret")
        if secret:
            await self._live("Secret", ns, secret.get("name", ""), secret.get("uid", ""))
        node = k8s.get("node")
        if node:
            if not pod:  # a pod-bound token names its node for information; a node-bound one needs it
                await self._live("Node", None, node.get("name", ""), node.get("uid", ""))
            extra[u.EXTRA_NODE_NAME] = [node.get("name", "")]
            extra[u.EXTRA_NODE_UID] = [node.get("uid", "")]
        uid = sa.get("uid") or ((sa_obj or {}).get("metadata") or {}).get("uid", "")
        return u.service_account_user(ns, sa["name"], uid, extra)

    async def _validate_legacy(self, token: str) -> UserInfo:
        key, alg = self._key_for(token)
        try:
            claims = jwt.decode(token, key, algorithms=[alg if alg in ("RS256", "ES256") else "RS256"],
                                options={"verify_aud": False, "require": ["sub"]})
        except jwt.PyJWTError as e:
            raise InvalidToken(f"invalid token: {e}") from e
        ns = claims.get("kubernetes.io/serviceaccount/namespace", "")
        sa_name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
        sa_uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
        secret_name = claims.get("kubernetes.io/serviceaccount/secret.name", "")
        if not (ns and sa_name and secret_name) or claims.get("sub") != f"{u.SA_PREFIX}{ns}:{sa_name}":
            raise InvalidToken("service account token claims are malformed")
        await self._live("ServiceAccount", ns, sa_name, sa_uid)
        secret = await self._live("Secret", ns, secret_name, "")
        if secret is not None:
            ann = (secret.get("metadata") or {}).get("annotations") or {}
            if ann.get("kubernetes.io/service-account.name", sa_name) != sa_name:
                raise InvalidToken("the token's secret belongs to another service account")
            data = secret.get("data") or {}
            stored = data.get("token")
            if stored and base64.b64decode(stored).decode(errors="replace") != token:
                raise InvalidToken("token does not match its secret")
        return u.service_account_user(ns, sa_name, sa_uid)

    async def _live(self, kind: str, namespace: str | None, name: str, uid: str) -> dict[str, Any] | None:
        """The object a token names must exist with the same uid and not be deleted."""
        if self.get is None:
            return None
        obj = await self.get(kind, namespace, name)
        where = f"{namespace}/{name}" if namespace else name
        if obj is None:
            raise InvalidToken(f"{kind.lower()} \"{where}\" not found")
        meta = obj.get("metadata") or {}
        if uid and meta.get("uid") != uid:
            raise InvalidToken(f"{kind} UID ({meta.get('uid')}) does not match claim ({uid})")
        if meta.get("deletionTimestamp"):
            raise InvalidToken(f"{kind} \"{where}\" is marked for deletion")
        return obj


def _load_public_keys(pem: bytes) -> list[Any]:
    """Public keys in a PEM bundle (public keys, certificates or a private key's public part)."""
    from cryptography import x509

    out: list[Any] = []
    for block in pem.split(b"-----END ")[:-1]:
        start = block.rfind(b"-----BEGIN ")
        if start < 0:
            continue
        label = block[start + 11:block.index(b"-----", start + 11)]
        end_label = b"-----END " + label + b"-----"
        one = block[start:] + end_label + b"\n"
        if label == b"CERTIFICATE":
            out.append(x509.load_pem_x509_certificate(one).public_key())
        elif label == b"PUBLIC KEY" or label == b"RSA PUBLIC KEY":
            out.append(serialization.load_pem_public_key(one))
        elif label.endswith(b"PRIVATE KEY"):
            out.append(serialization.load_pem_private_key(one, password=None).public_key())
    return out
