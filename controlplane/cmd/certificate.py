"""``controlplane certificate rotate --data-dir DIR [--service NAME ...]``: k3s's ``k3s
certificate rotate``. With the server stopped (refused while ``up`` holds ``DIR/up.lock``; the
lock is held during the command so ``up`` cannot start meanwhile), the leaf certificates and
keys of the named services (all of them by default; never the CAs nor the ServiceAccount key)
are moved to ``DIR/pki-<unix time>``; the next ``controlplane up`` issues new ones and rewrites
the kubeconfigs. Service names and what they cover: ``pki/rotate.py``.

``controlplane certificate rotate-ca --data-dir DIR --path NEW [--force]``: k3s's ``k3s
certificate rotate-ca``, also with the server stopped: the CA certificates and keys in ``NEW``
(laid out as ``DIR/pki``) are checked (``pki/rotate_ca.py``: key matches, a CA, cross-signed by
the current CA unless ``--force``) and installed; the current ones go to ``DIR/pki-<unix time>``.
The next ``up`` issues every leaf certificate again from the new key; as k3s says, every
component must be restarted (here: ``up``, and every agent or server joined to it, with the
new CA and the new join token).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from pathlib import Path

from controlplane.pki import rotate, rotate_ca


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certificate", help="rotate the server's leaf certificates or its CAs (k3s certificate "
                                           "rotate / rotate-ca)")
    p.add_argument("action", choices=["rotate", "rotate-ca"])
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--service", "-s", action="append", default=[],
                   help="only this service's certificates (repeatable, or a comma list): "
                        + ", ".join(sorted(rotate.SERVICES)))
    p.add_argument("--path", type=Path, default=None,
                   help="rotate-ca: directory of the new CA certificates and keys (ca.crt/ca.key, etcd/ca.crt/.key, "
                        "front-proxy-ca.crt/.key; a CA left out is kept)")
    p.add_argument("--force", action="store_true",
                   help="rotate-ca: install CAs that are not cross-signed by the current ones (breaks existing trust)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.resolve()
    pki_dir = data_dir / "pki"
    if not (pki_dir / "ca.crt").exists():
        sys.stderr.write(f"no cluster PKI in {pki_dir}: nothing to rotate\n")
        return 1
    if args.action == "rotate" and (args.path is not None or args.force):
        sys.stderr.write("--path and --force are rotate-ca's\n")
        return 1
    if args.action == "rotate-ca" and args.service:
        sys.stderr.write("--service is rotate's: rotate-ca replaces the CAs found in --path\n")
        return 1
    if args.action == "rotate-ca" and args.path is None:
        sys.stderr.write("rotate-ca needs --path DIR (the new CA certificates and keys)\n")
        return 1
    fd = os.open(data_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"refused: controlplane up runs on {data_dir}: stop it first (certificates are "
                             "rotated with the server stopped, then issued again by the next up)\n")
            return 1
        if args.action == "rotate-ca":
            return _rotate_ca(data_dir, pki_dir, args.path, args.force)
        services = [s.strip() for v in args.service for s in v.split(",") if s.strip()]
        try:
            stems = rotate.select(pki_dir, services)
        except rotate.RotateError as e:
            sys.stderr.write(f"refused: {e}\n")
            return 1
        if not stems:
            sys.stderr.write("no certificate of those services is present\n")
            return 1
        for name in services or ["all"]:
            print(f"Rotating certificates for {name} service")
        dest = rotate.backup_dir(data_dir)
        moved = rotate.move_to_backup(pki_dir, stems, dest)
        print(f"Successfully backed up certificates ({len(moved)} files: {', '.join(stems)}) to {dest}, "
              "please restart controlplane up to rotate certificates")
        return 0
    finally:
        os.close(fd)


def _rotate_ca(data_dir: Path, pki_dir: Path, new_dir: Path, force: bool) -> int:
    cas, errs = rotate_ca.collect(pki_dir, new_dir.resolve(), force=force)
    if errs:
        sys.stderr.write("failed to validate new CA certificates and keys:\n" + "".join(f"  {e}\n" for e in errs))
        return 1
    if not cas:
        print(f"the CAs in {new_dir} are the ones in place: nothing to do")
        return 0
    dest = rotate.backup_dir(data_dir)
    written = rotate_ca.install(pki_dir, cas, dest)
    for ca in cas:
        if ca.self_signed and force:
            print(f"WARNING: {ca.stem} is a new self-signed CA: whatever trusted the previous one (kubeconfigs "
                  "handed out, agents, join tokens) does not trust this cluster any more")
    print(f"Certificates backed up to {dest}; installed {', '.join(written)}. Restart controlplane up (it issues "
          "every leaf certificate again from the new CA and rewrites the kubeconfigs), then every agent and server "
          "joined to it with the new CA and token")
    return 0
