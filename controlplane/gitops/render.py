"""Building a sync's path into a list of objects, the way Flux's kustomize-controller does:
a directory with a ``kustomization.yaml`` is built by the real kustomize embedded in
``kubectl`` (``kubectl kustomize DIR``: resources, namespace, namePrefix, commonLabels/labels,
images, patches, generators, all of it); a plain directory is read recursively (``*.yaml``,
``*.yml``, ``*.json``; a subdirectory with its own kustomization is built by kustomize), then
Flux's ``postBuild`` variable substitution.

Substitution is hand-written (about 30 lines): Flux uses drone/envsubst, and no maintained
Python package implements its syntax. Supported: ``${VAR}``, ``${VAR:-default}``,
``${VAR:=default}``, ``$${VAR}`` (a literal ``${VAR}``); an unset variable without a default
is the empty string (Flux's default). Bare ``$VAR`` is left alone, so shell scripts in
ConfigMaps survive. Substitution happens on each object's YAML text (so ``replicas:
${REPLICAS}`` becomes a number) unless the object is annotated
``gitops.controlplane.io/substitute: disabled``. Neighbours: ``sync.py`` (the caller).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from controlplane.gitops.api import ANN_SUBSTITUTE, DISABLED

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class BuildError(Exception):
    """The path cannot be built (missing, a YAML error, kustomize failed)."""


def _is_kustomize_dir(d: Path) -> bool:
    return any((d / f).is_file() for f in KUSTOMIZATION_FILES)


def safe_join(root: Path, rel: str) -> Path:
    """``root/rel`` refusing to leave ``root`` (``../`` or absolute paths in a spec)."""
    p = (root / rel.lstrip("/")).resolve()
    r = root.resolve()
    if p != r and r not in p.parents:
        raise BuildError(f"path {rel!r} leaves the source")
    return p


async def kustomize(d: Path, timeout: float = 60.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        KUSTOMIZE_CMD[0], *KUSTOMIZE_CMD[1:], str(d), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(d), "KUBECONFIG": "/dev/null"}, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise BuildError(f"kustomize build of {d.name} timed out") from None
    if proc.returncode != 0:
        msg = "\n".join(ln for ln in err.decode(errors="replace").splitlines() if "is deprecated" not in ln)
        raise BuildError(f"kustomize build failed: {msg.strip()[-2000:]}")
    return out.decode()


KUSTOMIZE_CMD = [KUBECTL, "kustomize", "--load-restrictor=LoadRestrictionsRootOnly"]


def parse_docs(text: str, origin: str) -> list[dict]:
    """Kubernetes objects of a YAML/JSON stream (``List`` kinds expanded; empty documents and
    documents without apiVersion/kind are errors only when they are not empty)."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise BuildError(f"{origin}: invalid YAML: {e}") from e
    out: list[dict] = []
    for i, d in enumerate(docs):
        if d is None:
            continue
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind"):
            raise BuildError(f"{origin}: document {i + 1} is not a Kubernetes object (apiVersion and kind are required)")
        if d["kind"].endswith("List") and isinstance(d.get("items"), list):
            out.extend(x for x in d["items"] if isinstance(x, dict))
        else:
            out.append(d)
    return out


async def build(root: Path, rel_path: str) -> list[dict]:
    """Objects under ``root/rel_path`` (see the module docstring)."""
    d = safe_join(root, rel_path or "./")
    if not d.exists():
        raise BuildError(f"path {rel_path!r} not found in the source")
    if d.is_file():
        return await asyncio.to_thread(lambda: parse_docs(d.read_text(), d.name))
    if _is_kustomize_dir(d):
        return await asyncio.to_thread(parse_docs, await kustomize(d), rel_path)
    objs: list[dict] = []
    files, subdirs = await asyncio.to_thread(_walk, d)
    for sub in subdirs:
        objs += await asyncio.to_thread(parse_docs, await kustomize(sub), str(sub.relative_to(root)))
    objs += await asyncio.to_thread(_read_files, files, root)
    return objs


def _walk(d: Path) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    kdirs: list[Path] = []

    def rec(x: Path) -> None:
        for p in sorted(x.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir():
                if _is_kustomize_dir(p):
                    kdirs.append(p)
                else:
                    rec(p)
            elif p.suffix in (".yaml", ".yml", ".json") and p.is_file():
                files.append(p)
    rec(d)
    return files, kdirs


def _read_files(files: list[Path], root: Path) -> list[dict]:
    out: list[dict] = []
    for f in files:
        out += parse_docs(f.read_text(), str(f.relative_to(root)))
    return out


_VAR = re.compile(r"\$(\$?)\{([_a-zA-Z][_a-zA-Z0-9]*)(?:(:[-=])([^}]*))?\}")


def substitute_text(text: str, variables: dict[str, str]) -> str:
    def rep(m: re.Match) -> str:
        if m.group(1):  # $${VAR}: escaped
            return m.group(0)[1:]
        name, op, default = m.group(2), m.group(3), m.group(4)
        v = variables.get(name)
        if v is None or (v == "" and op):
            v = default if op else ""
        return v or ""
    return _VAR.sub(rep, text)


def substitute(objs: list[dict], variables: dict[str, str]) -> list[dict]:
    """Flux's postBuild substitution over each object's YAML text."""
    out: list[dict] = []
    for o in objs:
        ann = (o.get("metadata") or {}).get("annotations") or {}
        if ann.get(ANN_SUBSTITUTE) == DISABLED:
            out.append(o)
            continue
        text = yaml.dump(o, Dumper=_Dumper, sort_keys=False)
        if "${" not in text:
            out.append(o)
            continue
        try:
            new: Any = yaml.load(substitute_text(text, variables), Loader=_Loader)
        except yaml.YAMLError as e:
            name = (o.get("metadata") or {}).get("name")
            raise BuildError(f"variable substitution made {o.get('kind')}/{name} invalid YAML: {e}") from e
        out.append(new)
    return out
