"""Client-certificate authentication: the TLS layer verified the chain against the cluster CA
(``ssl.CERT_OPTIONAL`` with ``--client-ca-file`` loaded), so a presented certificate is
trusted; the user is its subject's CommonName and the groups its Organizations. The reading
itself is ``machinery.userinfo.user_from_peercert`` (the node agent's endpoint uses it too).
"""

from __future__ import annotations

from controlplane.machinery.userinfo import user_from_peercert

__all__ = ["user_from_peercert"]
