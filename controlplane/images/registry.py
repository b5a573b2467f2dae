"""A local OCI registry for ``controlplane up`` and the tests: ``docker-registry`` (distribution
2.8) on a free loopback port, seeded with a small busybox image built from ``busybox-static``.

The image (one gzip layer: /bin/busybox + applet links + /etc basics) is pushed with the
distribution API (blob upload, then manifest PUT) as ``library/busybox:latest`` and ``:1.36``.
Neighbours: ``reference.Mirrors`` points ``docker.io`` at it; ``cmd/up.py`` runs it (supervised).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.log import get_logger
from controlplane.procutil import die_with_parent

log = get_logger(__name__)
BUSYBOX = "/usr/bin/busybox"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Debian's busybox-static is built without wget's timeout feature, and its option parser then
# stores ``-T N`` through a NULL pointer: ``wget -T 2 URL`` dies with SIGSEGV (exit 139). The
# image's ``/bin/wget`` is this wrapper instead of an applet link: it runs ``busybox wget``
# under the ``timeout`` applet when a timeout is asked for. It serves programs that exec
# ``wget`` (``kubectl exec pod -- wget -T 2 …``); busybox's own shell runs its applets directly
# (standalone shell), so in ``sh -c`` scripts write ``timeout 2 wget …``. Name lookups
# themselves work: the static glibc resolves through /etc/hosts and /etc/resolv.conf.
WGET_WRAPPER = b"""#!/bin/sh
# wget -T N / --timeout=N through the timeout applet (this busybox build crashes on -T)
t=
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case "$a" in
    -T|--timeout) t=$1; shift; n=$((n - 1)) ;;
    -T*) t=${a#-T} ;;
    --timeout=*) t=${a#--timeout=} ;;
    *) set -- "$@" "$a" ;;
  esac
done
if [ -n "$t" ]; then exec /bin/busybox timeout "$t" /bin/busybox wget "$@"; fi
exec /bin/busybox wget "$@"
"""


def busybox_layer() -> bytes:
    """A deterministic tar.gz of a busybox root filesystem (no host paths inside)."""
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, 0
            tf.addfile(ti)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, 0
            tf.addfile(ti, io.BytesIO(data))

        for d in ("bin", "etc", "home", "root", "tmp", "var", "usr", "usr/bin", "proc", "sys", "dev"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        add_file("bin/wget", WGET_WRAPPER, 0o755)
        for a in sorted(set(applets) - {"busybox", "wget"}):
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "busybox", 0o777, 0
            tf.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), raw  # type: ignore[return-value]


def busybox_image() -> tuple[bytes, bytes, bytes]:
    """(layer tar.gz, config json, manifest json) of the busybox image."""
    layer, raw = busybox_layer()  # type: ignore[misc]
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "controlplane busybox-static seed"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}],
    }, sort_keys=True).encode()
    return layer, config, manifest


def push_blob(base: str, repo: str, data: bytes, context: ssl.SSLContext | None = None) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/v2/{repo}/blobs/{digest}", method="HEAD"), timeout=10,
                               context=context)
        return digest
    except urllib.error.HTTPError:
        pass
    r = urllib.request.urlopen(urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b""),
                               timeout=10, context=context)
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    req = urllib.request.Request(f"{loc}{sep}digest={digest}", method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, timeout=30, context=context)
    return digest


def push_manifest(base: str, repo: str, tag: str, manifest: bytes,
                  media_type: str = "application/vnd.oci.image.manifest.v1+json",
                  context: ssl.SSLContext | None = None) -> None:
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                                 headers={"Content-Type": media_type})
    urllib.request.urlopen(req, timeout=10, context=context)


def seed_busybox(base: str, repo: str = "library/busybox", tags: tuple[str, ...] = ("latest", "1.36"),
                 context: ssl.SSLContext | None = None) -> str:
    """Push the busybox image; returns its manifest digest."""
    layer, config, manifest = busybox_image()
    push_blob(base, repo, layer, context)
    push_blob(base, repo, config, context)
    for t in tags:
        push_manifest(base, repo, t, manifest, context=context)
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


@dataclass
class RegistryTLS:
    """Serve HTTPS with ``cert``/``key`` and accept only clients presenting a certificate signed
    by ``client_ca`` (distribution's ``http.tls.clientcas``); ``client_cert``/``client_key`` is
    the pair this process uses to seed and health-check it."""

    cert: Path
    key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.client_ca))
        ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


@dataclass
class LocalRegistry:
    """A ``docker-registry`` child process on 127.0.0.1:<port> with storage under ``data_dir``."""

    data_dir: Path
    port: int = 0
    tls: RegistryTLS | None = None
    tied_to_parent: bool = False  # PR_SET_PDEATHSIG: the registry dies with the process that started it
    proc: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_data_path(self, digest: str) -> Path:
        hexd = digest.partition(":")[2]
        return self.data_dir / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"

    def start(self, seed: bool = True, timeout: float = 15.0) -> None:
        self.spawn()
        self.wait_serving(seed, timeout)

    def spawn(self) -> None:
        """Start the process (the port is picked on the first start and kept for restarts)."""
        exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        cfg = self.data_dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.data_dir / 'storage'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n" + self._tls_config())
        logf = open(self.data_dir / "registry.log", "ab")
        self.proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     preexec_fn=die_with_parent() if self.tied_to_parent else None)
        logf.close()

    def wait_serving(self, seed: bool = True, timeout: float = 15.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        ctx = self.tls.client_context() if self.tls else None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}; see {self.data_dir}/registry.log")
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=1, context=ctx)
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not answer")
                time.sleep(0.05)
        log.info("registry ready", url=self.url)
        if seed:
            seed_busybox(self.url, context=ctx)

    def _tls_config(self) -> str:
        if self.tls is None:
            return ""
        return (f"  tls:\n    certificate: {self.tls.cert}\n    key: {self.tls.key}\n"
                f"    clientcas:\n      - {self.tls.client_ca}\n")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
