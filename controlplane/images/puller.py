"""Pull an image with the OCI distribution API into the ``ImageStore`` (digests verified).

Manifest by tag (OCI or Docker v2 schema 2; an index / manifest list picks linux/amd64),
then the config and every layer blob by digest, each streamed through sha256 and refused on
mismatch. Endpoints come from ``reference.Mirrors``. Neighbours: ``manager.py`` (policy,
backoff) calls ``pull``; ``store.py`` keeps blobs and unpacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
from typing import Any

import aiohttp

from controlplane.images.reference import Mirrors, Reference
from controlplane.images.store import DigestMismatch, ImageRecord, ImageStore
from controlplane.log import get_logger

log = get_logger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


class PullError(Exception):
    """``not_found`` tells "no such image" apart from transport/verification failures."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


def pick_platform(index: dict, os_: str = "linux", arch: str = ARCH) -> dict:
    for m in index.get("manifests", []):
        p = m.get("platform", {})
        if p.get("os") == os_ and p.get("architecture") == arch:
            return m
    raise PullError(f"no manifest for {os_}/{arch} in the index", not_found=True)


class Puller:
    def __init__(self, store: ImageStore, mirrors: Mirrors, timeout: float = 60.0, ssl: Any = None) -> None:
        """``ssl``: the TLS context for https mirrors (the node's client certificate and the
        cluster CA for the local registry, which accepts only cluster clients)."""
        self.store = store
        self.mirrors = mirrors
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=5)
        self.ssl = ssl

    async def pull(self, ref: Reference) -> ImageRecord:
        errors: list[str] = []
        not_found = True
        for ep in self.mirrors.for_domain(ref.domain):
            try:
                conn = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl is not None else None
                async with aiohttp.ClientSession(timeout=self.timeout, connector=conn) as s:
                    return await self._pull_from(s, ep.rstrip("/"), ref)
            except PullError as e:
                errors.append(f"{ep}: {e}")
                not_found = not_found and e.not_found
                if not e.not_found:
                    break  # a verification error is final: do not fall back silently
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                errors.append(f"{ep}: {type(e).__name__}: {e}")
                not_found = False
        raise PullError(f"failed to pull {ref}: " + "; ".join(errors), not_found=not_found)

    async def _get_manifest(self, s: aiohttp.ClientSession, base: str, ref: Reference, reference: str) -> tuple[dict, str, str]:
        url = f"{base}/v2/{ref.path}/manifests/{reference}"
        async with s.get(url, headers={"Accept": ACCEPT}) as r:
            if r.status == 404:
                raise PullError(f"manifest {ref.path}:{reference} not found", not_found=True)
            if r.status == 401:
                raise PullError(f"registry requires authentication for {ref.path}", not_found=True)
            if r.status != 200:
                raise PullError(f"GET {url}: HTTP {r.status}")
            body = await r.read()
            mtype = r.headers.get("Content-Type", "").split(";")[0]
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise PullError(f"manifest digest mismatch: expected {reference}, got {digest}")
        doc = json.loads(body)
        return doc, doc.get("mediaType") or mtype, digest

    async def _pull_from(self, s: aiohttp.ClientSession, base: str, ref: Reference) -> ImageRecord:
        doc, mtype, digest = await self._get_manifest(s, base, ref, ref.reference)
        if mtype in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            chosen = pick_platform(doc)
            doc, mtype, digest = await self._get_manifest(s, base, ref, chosen["digest"])
        if mtype not in (OCI_MANIFEST, DOCKER_MANIFEST) and "layers" not in doc:
            raise PullError(f"unsupported manifest type {mtype!r}")
        config_digest = doc["config"]["digest"]
        await self._fetch_blob(s, base, ref, config_digest)
        config = json.loads(self.store.blob_path(config_digest).read_bytes())
        layers = [{"digest": l["digest"], "mediaType": l["mediaType"], "size": l.get("size", 0)} for l in doc["layers"]]
        await asyncio.gather(*(self._fetch_blob(s, base, ref, l["digest"]) for l in layers))
        rec = ImageRecord(ref=str(ref), id=config_digest, manifest=digest, layers=layers,
                          config=config.get("config") or {}, size=sum(l["size"] for l in layers))
        await asyncio.to_thread(self.store.materialize, rec)
        return rec

    async def _fetch_blob(self, s: aiohttp.ClientSession, base: str, ref: Reference, digest: str) -> None:
        if self.store.has_blob(digest):
            return
        url = f"{base}/v2/{ref.path}/blobs/{digest}"
        fd, tmp = self.store.new_temp()
        h = hashlib.sha256()
        try:
            async with s.get(url) as r:
                if r.status == 404:
                    raise PullError(f"blob {digest} not found", not_found=False)
                if r.status != 200:
                    raise PullError(f"GET {url}: HTTP {r.status}")
                async for chunk in r.content.iter_chunked(1 << 16):
                    h.update(chunk)
                    os.write(fd, chunk)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        try:
            self.store.commit_blob(tmp, digest, "sha256:" + h.hexdigest())
        except DigestMismatch as e:
            raise PullError(str(e)) from e
