"""ServiceAccount issuer discovery (kube-apiserver's ``/.well-known/openid-configuration`` and
``/openid/v1/jwks``): what lets anything outside the cluster verify ServiceAccount tokens.
The JWKS lists the verifying public keys with Kubernetes' key ids (PyJWT renders the JWKs).
Kubernetes serves both to ``system:service-account-issuer-discovery`` (ServiceAccounts).
"""

from __future__ import annotations

import json
from typing import Any

from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from controlplane.apiserver.authentication.serviceaccount import TokenValidator, key_id

JWKS_PATH = "/openid/v1/jwks"


def openid_configuration(issuer: str, jwks_uri: str | None = None) -> dict[str, Any]:
    return {"issuer": issuer, "jwks_uri": jwks_uri or issuer.rstrip("/") + JWKS_PATH,
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]}


def jwks(validator: TokenValidator) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = []
    for kid, key in validator.keys.items():
        if isinstance(key, ec.EllipticCurvePublicKey):
            jwk, alg = json.loads(ECAlgorithm.to_jwk(key)), "ES256"
        else:
            jwk, alg = json.loads(RSAAlgorithm.to_jwk(key)), "RS256"
        jwk.update(use="sig", kid=kid or key_id(key), alg=alg)
        keys.append(jwk)
    return {"keys": keys}
