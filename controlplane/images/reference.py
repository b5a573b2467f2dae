"""Image references (docker's normalisation) and registry mirrors (containerd-style).

``busybox`` → ``docker.io/library/busybox:latest``; ``library/busybox:1.36`` keeps its tag;
``127.0.0.1:5000/x@sha256:…`` names a registry host and a digest. ``Mirrors`` maps a registry
host to endpoint URLs; ``docker.io`` defaults to the local registry ``controlplane up`` seeds.
Pure; used by ``puller.py`` and ``manager.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_DOMAIN = "docker.io"
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class InvalidReference(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        s = f"{self.domain}/{self.path}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse(ref: str) -> Reference:
    if not ref or ref != ref.strip():
        raise InvalidReference(f"invalid image reference {ref!r}")
    name, digest = ref, None
    if "@" in ref:
        name, digest = ref.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in {ref!r}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in {ref!r}")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in ("docker.io", "index.docker.io"):
        domain = DEFAULT_DOMAIN
        if "/" not in path:
            path = "library/" + path
    if not _NAME.match(path):
        raise InvalidReference(f"invalid repository name in {ref!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


@dataclass
class Mirrors:
    """Registry host → endpoint URLs tried in order (the host itself last, as containerd does)."""

    endpoints: dict[str, list[str]] = field(default_factory=dict)

    def for_domain(self, domain: str) -> list[str]:
        eps = list(self.endpoints.get(domain, []))
        own = f"http://{domain}" if _is_local(domain) else f"https://{domain}"
        if domain != DEFAULT_DOMAIN or not eps:
            eps.append(own if domain != DEFAULT_DOMAIN else "https://registry-1.docker.io")
        return eps


def _is_local(domain: str) -> bool:
    host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
