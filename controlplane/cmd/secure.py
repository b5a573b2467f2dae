"""What a secured apiserver is started with, in one place for ``controlplane up``, the test
fixtures and ``controlplane bench api``: the cluster PKI's files as flags (HTTPS, client
certificates, ServiceAccount keys, etcd client TLS, the kubelet client certificate) plus
``--authorization-mode Node,RBAC``, the audit policy and log, and encryption at rest of
Secrets. The policy (``DATA_DIR/audit-policy.yaml``) and the EncryptionConfiguration
(``DATA_DIR/encryption-config.yaml``, a fresh random aescbc key) are written when absent and
kept otherwise (an operator's edits and rotated keys survive restarts). As k3s, the apiserver
reloads the EncryptionConfiguration when it changes (``--encryption-provider-config-automatic-reload``,
polled every ``ENCRYPTION_RELOAD_INTERVAL``), which ``controlplane secrets-encrypt`` relies on.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.apiserver.audit.policy import default_policy_yaml
from controlplane.apiserver.authorization.bootstrap_policy import CONTROLLER_NAMESPACE, CONTROLLER_RULES
from controlplane.apiserver.persistence.encryption.config import write_new_config
from controlplane.etcd_process import EtcdTLS
from controlplane.pki.certs import write_file
from controlplane.pki.cluster import ClusterPKI

# how often `up`'s apiserver checks the EncryptionConfiguration (Kubernetes: 1m; k3s waits for
# the reload after each step of a rotation, so a shorter poll keeps `secrets-encrypt` quick)
ENCRYPTION_RELOAD_INTERVAL = "2s"  # a hash of a small file per worker: cheap; each secrets-encrypt step waits for it


def apiserver_args(pki: ClusterPKI, data_dir: Path, *, audit: bool = True, encryption: bool = True) -> list[str]:
    data_dir = Path(data_dir)
    args = [
        "--tls-cert-file", str(pki.crt("apiserver")), "--tls-private-key-file", str(pki.key("apiserver")),
        "--client-ca-file", str(pki.ca_file),
        "--service-account-key-file", str(pki.sa_pub_file),
        "--service-account-signing-key-file", str(pki.sa_key_file),
        "--authorization-mode", "Node,RBAC",
        "--kubelet-client-certificate", str(pki.crt("apiserver-kubelet-client")),
        "--kubelet-client-key", str(pki.key("apiserver-kubelet-client")),
        "--kubelet-certificate-authority", str(pki.ca_file),
        "--proxy-client-cert-file", str(pki.crt("front-proxy-client")),
        "--proxy-client-key-file", str(pki.key("front-proxy-client")),
        *EtcdTLS.from_pki(pki.dir).client_args(),
    ]
    if audit:
        policy = data_dir / "audit-policy.yaml"
        if not policy.exists():
            users = [f"system:serviceaccount:{CONTROLLER_NAMESPACE}:{name}" for name in CONTROLLER_RULES]
            write_file(policy, default_policy_yaml(users).encode(), 0o644)
        args += ["--audit-policy-file", str(policy), "--audit-log-path", str(data_dir / "audit" / "audit.log")]
    if encryption:
        enc = data_dir / "encryption-config.yaml"
        if not enc.exists():
            write_new_config(enc)
        args += ["--encryption-provider-config", str(enc), "--encryption-provider-config-automatic-reload",
                 "--encryption-provider-config-reload-interval", ENCRYPTION_RELOAD_INTERVAL]
    return args
