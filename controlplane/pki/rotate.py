"""``k3s certificate rotate`` for ``DATA_DIR/pki``: the leaf certificates (and their keys) of
the chosen services are moved to a backup directory, ``DATA_DIR/pki-<unix time>`` (k3s:
``server/tls-<unix time>``); the next ``controlplane up`` finds them missing and issues new ones
(``ClusterPKI.ensure`` and the components' ``serving``/``client`` calls issue a missing leaf
with a new key; ``up`` rewrites every kubeconfig from them at each start). The CAs (``ca``,
``etcd/ca``, ``front-proxy-ca``) and the ServiceAccount key pair are never touched, so
everything that trusts the cluster keeps trusting it.

k3s's service names and ours (``SERVICES``); our own component names are accepted as well:

| name | files (stems under ``pki/``) |
|---|---|
| ``admin`` | ``admin`` |
| ``api-server`` | ``apiserver`` (serving), ``apiserver-kubelet-client`` |
| ``controller-manager`` | ``controller-manager``, ``controller-manager-serving`` |
| ``scheduler`` | ``scheduler``, ``scheduler-serving`` |
| ``etcd`` | ``etcd/server``, ``etcd/peer``, ``apiserver-etcd-client`` |
| ``auth-proxy`` | ``front-proxy-client`` |
| ``kubelet`` | ``node-<name>``, ``node-<name>-serving`` (the local agent) |
| ``kube-proxy`` | ``kube-proxy`` |
| ``k3s-controller`` | the add-ons k3s itself brings: ``coredns``, ``ingress-controller``, ``metrics-server``(``-serving``), ``metrics-adapter``(``-serving``), ``prometheus`` |
| ``k3s-server`` | ``registry`` (the server's own serving certificate besides the apiserver's) |

``cloud-controller`` has no counterpart (no cloud controller manager runs here) and is refused.
Neighbours: ``pki.cluster`` (issuing), ``cmd/certificate.py`` (the command).
"""

from __future__ import annotations

import os
import shutil
import time
from fnmatch import fnmatch
from pathlib import Path

CAS = ("ca", "etcd/ca", "front-proxy-ca")
ADDONS = ("coredns", "ingress-controller", "metrics-server", "metrics-server-serving", "metrics-adapter",
          "metrics-adapter-serving", "prometheus")
SERVICES: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "api-server": ("apiserver", "apiserver-kubelet-client"),
    "controller-manager": ("controller-manager", "controller-manager-serving"),
    "scheduler": ("scheduler", "scheduler-serving"),
    "etcd": ("etcd/server", "etcd/peer", "apiserver-etcd-client"),
    "auth-proxy": ("front-proxy-client",),
    "kubelet": ("node-*",),
    "kube-proxy": ("kube-proxy",),
    "k3s-controller": ADDONS,
    "k3s-server": ("registry",),
    # our own component names
    "coredns": ("coredns",),
    "ingress-controller": ("ingress-controller",),
    "metrics-server": ("metrics-server", "metrics-server-serving"),
    "metrics-adapter": ("metrics-adapter", "metrics-adapter-serving"),
    "prometheus": ("prometheus",),
    "registry": ("registry",),
    "front-proxy-client": ("front-proxy-client",),
}
NO_COUNTERPART = {"cloud-controller": "no cloud controller manager runs here"}


class RotateError(ValueError):
    pass


def leaves(pki_dir: Path) -> list[str]:
    """Stems of every leaf certificate under ``pki_dir`` (a ``.crt`` that is not a CA's)."""
    d = Path(pki_dir)
    out = []
    for crt in d.rglob("*.crt"):
        stem = crt.relative_to(d).with_suffix("").as_posix()
        if stem not in CAS:
            out.append(stem)
    return sorted(out)


def select(pki_dir: Path, services: list[str]) -> list[str]:
    """The leaf stems of ``services`` (all leaves when none is named)."""
    present = leaves(pki_dir)
    if not services:
        return present
    chosen: set[str] = set()
    for name in services:
        if name in NO_COUNTERPART:
            raise RotateError(f"{name}: {NO_COUNTERPART[name]}")
        patterns = SERVICES.get(name)
        if patterns is None:
            raise RotateError(f"{name}: not a service; want one of {', '.join(sorted(SERVICES))}")
        chosen |= {s for s in present if any(fnmatch(s, p) for p in patterns)}
    return sorted(chosen)


def backup_dir(data_dir: Path, now: float | None = None) -> Path:
    base = Path(data_dir) / f"pki-{int(now if now is not None else time.time())}"
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}-{n}"), n + 1
    return path


def move_to_backup(pki_dir: Path, stems: list[str], dest: Path) -> list[str]:
    """Copy each stem's ``.crt`` and ``.key`` to ``dest`` (same layout, modes kept), then remove
    them from ``pki_dir``; returns the files moved (relative paths)."""
    pki_dir = Path(pki_dir)
    dest.mkdir(mode=0o700, parents=True)
    moved: list[str] = []
    for stem in stems:
        for suffix in (".crt", ".key"):
            src = pki_dir / f"{stem}{suffix}"
            if not src.exists():
                continue
            target = dest / f"{stem}{suffix}"
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(src, target)
            with open(target, "rb") as f:
                os.fsync(f.fileno())
            moved.append(f"{stem}{suffix}")
    for rel in moved:  # only once every copy is on disk
        (pki_dir / rel).unlink()
    return moved
