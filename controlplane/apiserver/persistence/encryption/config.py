"""``EncryptionConfiguration`` (``apiserver.config.k8s.io/v1``, kube-apiserver's
``--encryption-provider-config``): which resources are encrypted at rest and with which
providers and keys, turned into one ``Transformer`` per resource.

```yaml
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]          # also "configmaps", "*.apps", "*.*"
    providers:
      - aescbc: {keys: [{name: key2, secret: <base64 32 bytes>}, {name: key1, secret: ...}]}
      - identity: {}              # reads data written before encryption was turned on
```

The first provider (and its first key) writes; every listed provider/key reads. Rotation,
as in Kubernetes: add the new key second, reload (``reload.py``) or restart; move it first;
rewrite every object (``kubectl get secrets -A -o json | kubectl replace -f -``: a value read
with an old key is "stale" and written again even when unchanged); drop the old key.
``controlplane secrets-encrypt rotate-keys`` does it in one step (``rotation.py``).
``new_config`` writes what ``controlplane up`` starts with (one random aescbc key).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from controlplane.apiserver.persistence.encryption.providers import PROVIDERS, Identity, Key
from controlplane.apiserver.persistence.encryption.transformer import Transformer


class ConfigError(ValueError):
    pass


def _provider(entry: dict[str, Any], where: str):  # type: ignore[no-untyped-def]
    if len(entry) != 1:
        raise ConfigError(f"{where}: exactly one provider per entry, got {sorted(entry)}")
    kind, body = next(iter(entry.items()))
    if kind == "identity":
        return Identity()
    cls = PROVIDERS.get(kind)
    if cls is None:
        raise ConfigError(f"{where}: unsupported provider {kind!r} (supported: aescbc, aesgcm, secretbox, identity)")
    keys = []
    for i, k in enumerate((body or {}).get("keys") or []):
        try:
            secret = base64.b64decode(k.get("secret") or "", validate=True)
        except ValueError as e:
            raise ConfigError(f"{where}.{kind}.keys[{i}].secret: not base64") from e
        if not k.get("name"):
            raise ConfigError(f"{where}.{kind}.keys[{i}].name: required")
        keys.append(Key(k["name"], secret))
    try:
        return cls(keys)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


class EncryptionConfig:
    def __init__(self, entries: list[tuple[list[str], Transformer]]) -> None:
        self.entries = entries

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> "EncryptionConfig":
        if doc.get("kind") != "EncryptionConfiguration":
            raise ConfigError(f"kind must be EncryptionConfiguration, got {doc.get('kind')!r}")
        entries = []
        for i, res in enumerate(doc.get("resources") or []):
            names = list(res.get("resources") or [])
            if not names:
                raise ConfigError(f"resources[{i}].resources: required")
            provs = [_provider(p, f"resources[{i}].providers[{j}]") for j, p in enumerate(res.get("providers") or [])]
            if not provs:
                raise ConfigError(f"resources[{i}].providers: required")
            entries.append((names, Transformer(provs)))
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> "EncryptionConfig":
        return cls.parse(yaml.safe_load(Path(path).read_text()) or {})

    @classmethod
    def parse_bytes(cls, data: bytes) -> "EncryptionConfig":
        """A file's content; anything wrong with it (YAML, shape, keys) is a ``ConfigError``."""
        try:
            doc = yaml.safe_load(data)
            if not isinstance(doc, dict):
                raise ConfigError("not an EncryptionConfiguration object")
            return cls.parse(doc)
        except ConfigError:
            raise
        except (yaml.YAMLError, AttributeError, TypeError, ValueError) as e:
            raise ConfigError(f"invalid EncryptionConfiguration: {e}") from e

    def for_resource(self, group: str, resource: str) -> Transformer | None:
        """The transformer of ``resource`` in ``group`` ("" = core), first matching entry wins:
        ``secrets`` (core), ``deployments.apps``, ``*.apps`` (a group), ``*.`` (core), ``*.*``."""
        for names, t in self.entries:
            if names_match(names, group, resource):
                return t
        return None


def names_match(names: list[str], group: str, resource: str) -> bool:
    """Whether a ``resources`` list names ``resource`` of ``group`` ("" = core): ``secrets``,
    ``deployments.apps``, ``*.apps`` (a group), ``*.`` (core), ``*.*``."""
    gr = f"{resource}.{group}" if group else resource
    return any(n == gr or n == "*.*" or (n.startswith("*.") and n[2:] == group) or (n == "*." and not group)
               for n in names)


def new_config(resources: tuple[str, ...] = ("secrets",), provider: str = "aescbc") -> dict[str, Any]:
    secret = base64.b64encode(os.urandom(32)).decode()
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources),
                           "providers": [{provider: {"keys": [{"name": "key1", "secret": secret}]}},
                                         {"identity": {}}]}]}


def write_new_config(path: Path, **kw: Any) -> Path:
    from controlplane.pki.certs import write_file

    write_file(path, yaml.safe_dump(new_config(**kw), sort_keys=False).encode(), 0o600)
    return path
