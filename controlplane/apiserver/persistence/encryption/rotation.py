"""Key rotation edits of an EncryptionConfiguration document, as ``k3s secrets-encrypt
rotate-keys`` makes them (pure functions on the parsed YAML; ``cmd/secrets_encrypt.py`` writes
the file and waits for the apiserver to reload it):

1. ``add_key``: a new random key, named as k3s names it (``aescbckey-<RFC 3339 time>``), in
   front of the first provider's keys of every resource entry that encrypts; the old keys stay
   behind it, so everything written before still reads.
2. (every object is rewritten: it is then under the new key)
3. ``drop_old_keys``: the first provider of each such entry keeps its first key only; the other
   providers (``identity``, which reads data from before encryption was on) are kept.

k3s's older multi-step flow (``secrets-encrypt prepare | rotate | reencrypt``), one apiserver
reload between steps so that every server can read with a key before any writes with it:

1. ``append_key``: a new key *behind* the writing key (k3s's ``AppendNewEncryptionKey``): read
   only for now;
2. ``rotate_last_first``: that last key moves in front (k3s's "right rotate"): it writes;
3. (every object is rewritten) then ``drop_old_keys``.

``set_enabled`` is ``secrets-encrypt enable | disable``: ``identity`` moves in front of the
keyed provider (disable: written in plaintext, the keys still read) or behind it (enable).

``key_listing`` is what ``secrets-encrypt status`` prints (k3s's key type names). Neighbours:
``config`` (parsing and validation), ``reload`` (the apiserver side).
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import os
from typing import Any, Callable

# k3s's key type names (status output); identity is not a key
KEY_TYPES = {"aescbc": "AES-CBC", "aesgcm": "AES-GCM", "secretbox": "SecretBox"}
KEY_BYTES = 32


class RotationError(ValueError):
    pass


def _first_provider(entry: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(kind, body) of an entry's writing provider when it is a keyed one; None for identity."""
    providers = entry.get("providers") or []
    if not providers or not isinstance(providers[0], dict) or len(providers[0]) != 1:
        return None
    kind, body = next(iter(providers[0].items()))
    if kind not in KEY_TYPES:
        return None
    if body is None:
        body = providers[0][kind] = {}
    return kind, body


def enabled(doc: dict[str, Any]) -> bool:
    """Whether any resource is written encrypted (k3s: Enabled / Disabled)."""
    return any(_first_provider(e) is not None for e in doc.get("resources") or [])


def key_name(kind: str, now: _dt.datetime) -> str:
    """k3s's name of a key made at ``now``: ``aescbckey-2026-12-07T22:40:00Z``."""
    return f"{kind}key-{now.astimezone(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _new_key(doc: dict[str, Any], now: _dt.datetime, secret: Callable[[int], bytes],
             first: bool) -> tuple[dict[str, Any], list[str]]:
    """The document with a new key in every encrypting entry's first provider, first or last;
    (new doc, new key names)."""
    out = copy.deepcopy(doc)
    names: list[str] = []
    for entry in out.get("resources") or []:
        fp = _first_provider(entry)
        if fp is None:
            continue
        kind, body = fp
        keys = list(body.get("keys") or [])
        taken = {k.get("name") for k in keys}
        name, n = key_name(kind, now), 1
        while name in taken:  # two rotations within one second
            name, n = f"{key_name(kind, now)}-{n}", n + 1
        key = {"name": name, "secret": base64.b64encode(secret(KEY_BYTES)).decode()}
        body["keys"] = [key, *keys] if first else [*keys, key]
        names.append(name)
    if not names:
        raise RotationError("encryption is disabled: no resource is written with an aescbc, aesgcm or secretbox key")
    return out, names


def add_key(doc: dict[str, Any], now: _dt.datetime,
            secret: Callable[[int], bytes] = os.urandom) -> tuple[dict[str, Any], list[str]]:
    """The document with a new first key in every encrypting entry; (new doc, new key names)."""
    return _new_key(doc, now, secret, first=True)


def append_key(doc: dict[str, Any], now: _dt.datetime,
               secret: Callable[[int], bytes] = os.urandom) -> tuple[dict[str, Any], list[str]]:
    """``prepare``: a new key last in every encrypting entry's first provider; (new doc, names)."""
    return _new_key(doc, now, secret, first=False)


def rotate_last_first(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``rotate``: each encrypting entry's last key moves in front (k3s's right rotation);
    (new doc, the names that now write)."""
    out = copy.deepcopy(doc)
    names: list[str] = []
    for entry in out.get("resources") or []:
        fp = _first_provider(entry)
        if fp is None:
            continue
        keys = list(fp[1].get("keys") or [])
        if keys:
            fp[1]["keys"] = [keys[-1], *keys[:-1]]
            names.append(str(keys[-1].get("name")))
    if not names:
        raise RotationError("encryption is disabled: no resource is written with an aescbc, aesgcm or secretbox key")
    return out, names


def _keyed(p: Any) -> bool:
    return isinstance(p, dict) and len(p) == 1 and next(iter(p)) in KEY_TYPES


def set_enabled(doc: dict[str, Any], enable: bool) -> tuple[dict[str, Any], bool]:
    """``enable``/``disable``: in every entry with a keyed provider, that provider (enable) or
    ``identity`` (disable; added when the entry has none) goes first, the others keep their
    order; (new doc, whether anything changed)."""
    out = copy.deepcopy(doc)
    changed = keyed_any = False
    for entry in out.get("resources") or []:
        providers = list(entry.get("providers") or [])
        keyed = [i for i, p in enumerate(providers) if _keyed(p)]
        if not keyed:
            continue
        keyed_any = True
        if enable:
            if keyed[0] != 0:
                providers.insert(0, providers.pop(keyed[0]))
                changed = True
        elif _keyed(providers[0]):
            ident = [i for i, p in enumerate(providers) if isinstance(p, dict) and "identity" in p]
            providers.insert(0, providers.pop(ident[0]) if ident else {"identity": {}})
            changed = True
        entry["providers"] = providers
    if not keyed_any:
        raise RotationError("unable to enable/disable secrets encryption, unknown configuration "
                            "(no resource has an aescbc, aesgcm or secretbox key)")
    return out, changed


def drop_old_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with only the first key of each encrypting entry's first provider."""
    out = copy.deepcopy(doc)
    for entry in out.get("resources") or []:
        fp = _first_provider(entry)
        if fp is not None:
            fp[1]["keys"] = list(fp[1].get("keys") or [])[:1]
    return out


def key_listing(doc: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(active, inactive) keys as (type, name): each encrypting entry's writing key is active,
    every other key of a keyed provider is inactive (read only); each listed once."""
    active: list[tuple[str, str]] = []
    inactive: list[tuple[str, str]] = []
    for entry in doc.get("resources") or []:
        writer = _first_provider(entry)
        for i, prov in enumerate(entry.get("providers") or []):
            if not isinstance(prov, dict) or len(prov) != 1:
                continue
            kind, body = next(iter(prov.items()))
            if kind not in KEY_TYPES:
                continue
            for j, k in enumerate((body or {}).get("keys") or []):
                item = (KEY_TYPES[kind], str(k.get("name")))
                if writer is not None and i == 0 and j == 0:
                    if item not in active:
                        active.append(item)
                elif item not in inactive:
                    inactive.append(item)
    inactive = [k for k in inactive if k not in active]
    return active, inactive


def encrypted_resources(doc: dict[str, Any]) -> list[str]:
    """The resource names (``secrets``, ``*.apps``, ``*.*``, ...) of the entries that encrypt
    or read with keys: what a re-encryption must rewrite."""
    out: list[str] = []
    for entry in doc.get("resources") or []:
        keyed = any(isinstance(p, dict) and next(iter(p), None) in KEY_TYPES for p in entry.get("providers") or [])
        if keyed:
            out += [n for n in entry.get("resources") or [] if n not in out]
    return out
