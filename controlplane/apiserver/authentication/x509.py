"""Client-certificate authentication: the TLS layer verified the chain against the cluster CA
(``ssl.CERT_OPTIONAL`` with the CA loaded), so a presented certificate is trusted; the user
is its subject's CommonName and the groups its Organizations, as kube-apiserver's
``--client-ca-file`` authenticator does. Python's ``SSLSocket.getpeercert()`` gives the
subject as nested tuples; ``user_from_peercert`` reads that shape.
"""

from __future__ import annotations

from typing import Any

from controlplane.machinery.userinfo import UserInfo


def user_from_peercert(peercert: dict[str, Any] | None) -> UserInfo | None:
    """``{'subject': ((('organizationName', 'g'),), (('commonName', 'u'),)), ...}`` -> user.

    None when there is no (verified) certificate or it has no CommonName."""
    if not peercert:
        return None
    cn = ""
    groups: list[str] = []
    for rdn in peercert.get("subject") or ():
        for attr, value in rdn:
            if attr == "commonName" and not cn:
                cn = value
            elif attr == "organizationName":
                groups.append(value)
    if not cn:
        return None
    return UserInfo.make(cn, groups)
