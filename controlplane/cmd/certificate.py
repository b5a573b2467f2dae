"""``controlplane certificate rotate --data-dir DIR [--service NAME ...]``: k3s's ``k3s
certificate rotate``. With the server stopped (refused while ``up`` holds ``DIR/up.lock``; the
lock is held during the command so ``up`` cannot start meanwhile), the leaf certificates and
keys of the named services (all of them by default; never the CAs nor the ServiceAccount key)
are moved to ``DIR/pki-<unix time>``; the next ``controlplane up`` issues new ones and rewrites
the kubeconfigs. Service names and what they cover: ``pki/rotate.py``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from pathlib import Path

from controlplane.pki import rotate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certificate", help="rotate the server's leaf certificates (k3s certificate rotate)")
    p.add_argument("action", choices=["rotate"])
    p.add_argument("--data-dir", type=Path, default=Path(".data"))
    p.add_argument("--service", "-s", action="append", default=[],
                   help="only this service's certificates (repeatable, or a comma list): "
                        + ", ".join(sorted(rotate.SERVICES)))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.resolve()
    pki_dir = data_dir / "pki"
    if not (pki_dir / "ca.crt").exists():
        sys.stderr.write(f"no cluster PKI in {pki_dir}: nothing to rotate\n")
        return 1
    services = [s.strip() for v in args.service for s in v.split(",") if s.strip()]
    fd = os.open(data_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"refused: controlplane up runs on {data_dir}: stop it first (certificates are "
                             "rotated with the server stopped, then issued again by the next up)\n")
            return 1
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
