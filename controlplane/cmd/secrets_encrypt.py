"""``controlplane secrets-encrypt --data-dir DIR ACTION``: k3s's ``k3s secrets-encrypt`` for the
running server of ``DIR`` (docs/security.md, "Encryption at rest").

- ``status [-o json]``: k3s's report: ``Encryption Status``, ``Current Rotation Stage``, ``Server
  Encryption Hashes`` (whether every apiserver process serves the file on disk) and the keys;
  ``-o json`` is k3s's ``EncryptionState`` (``stage``, ``activekey``, ``enable``, ``hashmatch``,
  ``hasherror``, ``inactivekeys``).
- ``rotate-keys``: k3s's one-step rotation: a new aescbc (or the configured provider's) key in
  front of the old ones, wait until the apiserver reloaded the file, rewrite every object of
  the configured resources, check in etcd that each is under the new key, drop the old keys,
  wait for the reload again.
- k3s's older multi-step rotation, one reload between steps (k3s restarts its servers there):
  ``prepare`` (a new key behind the writing one; from stage ``start``/``reencrypt_finished``),
  ``rotate`` (that key moves in front; from ``prepare``), ``reencrypt [--skip]`` (rewrite every
  object, check etcd, drop the old keys unless ``--skip``; from ``rotate``). ``-f``/``--force``
  runs a step from any stage; a step out of order is refused with k3s's ``incorrect stage``.
- ``enable`` / ``disable``: the keyed provider (enable) or ``identity`` (disable) goes first,
  then every object is rewritten (encrypted, or in plaintext) and the stage goes back to
  ``start`` (k3s's ``reencryptAndRemoveKey`` with skip).

How we know the apiserver reloaded: k3s compares each server's encryption hash (an annotation
k3s writes once its apiserver's reload metrics moved); here the apiserver itself reports the
SHA-256 of the file content each of its processes serves with, in
``apiserver_encryption_config_controller_last_config_info{apiserver_id_hash, hash}`` on
``/metrics`` (``encryption/reload.py``; every worker process is a series), and a reload refused
shows in ``..._automatic_reloads_total{status="failure"}``. The stage is kept in
``DIR/server/secrets-encrypt.json`` (k3s's stage names); ``DIR/server/secrets-encrypt.lock``
(flock) is held while any changing action runs, so a second one is refused. Objects are
rewritten with an empty merge patch: the apiserver writes an unchanged object again when it was
read with an old key or provider (``EncryptingBackend.is_stale``), and skips it otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from controlplane.apiserver.persistence.encryption.backend import group_resource
from controlplane.apiserver.persistence.encryption.config import ConfigError, EncryptionConfig, names_match
from controlplane.apiserver.persistence.encryption.providers import DecryptError
from controlplane.apiserver.persistence.encryption.reload import LAST_CONFIG_INFO, config_hash
from controlplane.apiserver.persistence.encryption.rotation import (
    RotationError, add_key, append_key, drop_old_keys, enabled, encrypted_resources, key_listing, rotate_last_first,
    set_enabled,
)
from controlplane.client.resources import Resource
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.cmd import bootstrap
from controlplane.log import get_logger
from controlplane.pki.certs import write_file

log = get_logger(__name__)
COMPONENT = bootstrap.Component("secrets-encrypt", metrics_port=False, uvloop=False)
RELOADS = "apiserver_encryption_config_controller_automatic_reloads"
# k3s's stages: rotate-keys goes start -> reencrypt_request -> reencrypt_active -> reencrypt_finished;
# the multi-step flow start -> prepare -> rotate -> reencrypt_active -> reencrypt_finished (--skip: start)
START, PREPARE, ROTATE = "start", "prepare", "rotate"
REQUEST, ACTIVE, FINISHED = "reencrypt_request", "reencrypt_active", "reencrypt_finished"
IN_PROGRESS = (REQUEST, ACTIVE)
# the stages each step may follow without --force (k3s's verifyEncryptionHashAnnotation);
# enable/disable follow any stage
AFTER: dict[str, tuple[str, ...]] = {
    "prepare": (START, FINISHED), "rotate": (PREPARE,), "reencrypt": (ROTATE,), "rotate-keys": (START, FINISHED),
}
ACTIONS = ("status", "enable", "disable", "prepare", "rotate", "reencrypt", "rotate-keys")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("secrets-encrypt", help="status, key rotation and re-encryption of Secrets at rest (k3s's)")
    p.add_argument("--data-dir", "-d", type=Path, default=Path(".data"))
    p.add_argument("--reload-timeout", type=float, default=90.0,
                   help="seconds to wait for the apiserver to reload the configuration (k3s: 90)")
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main), force=False, skip=False, output="text")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {
        "status": "print the current status of secrets encryption",
        "enable": "enable secrets encryption (the key writes again; every object is rewritten encrypted)",
        "disable": "disable secrets encryption (identity writes; every object is rewritten in plaintext)",
        "prepare": "prepare for key rotation: a new key, read only for now",
        "rotate": "rotate secrets encryption keys: the prepared key writes",
        "reencrypt": "rewrite every object with the current key, then remove the old keys",
        "rotate-keys": "rotate the keys and re-encrypt in one step",
    }
    for name in ACTIONS:
        a = acts.add_parser(name, help=helps[name])
        # also accepted after the action, as k3s takes them
        a.add_argument("--data-dir", "-d", type=Path, default=argparse.SUPPRESS)
        a.add_argument("--reload-timeout", type=float, default=argparse.SUPPRESS)
        if name == "status":
            a.add_argument("--output", "-o", choices=["text", "json"], default="text",
                           help="status format (default text)")
        if name in AFTER:
            a.add_argument("--force", "-f", action="store_true",
                           help=f"run although the stage is not {' or '.join(AFTER[name])}")
        if name == "reencrypt":
            a.add_argument("--skip", action="store_true", help="skip removing the old keys")


class Refused(Exception):
    """What the command will not do, said to the user."""


# -- pure parts -------------------------------------------------------------------------------

@dataclass
class Reports:
    """What the apiserver's /metrics says of its encryption configuration, per process."""

    hashes: dict[str, str] = field(default_factory=dict)  # apiserver_id_hash -> config hash
    failures: dict[str, float] = field(default_factory=dict)  # apiserver_id_hash -> failed reloads


def parse_reports(text: str) -> Reports:
    r = Reports()
    for fam in text_string_to_metric_families(text):
        if fam.name == LAST_CONFIG_INFO:
            for s in fam.samples:
                if s.value == 1:
                    r.hashes[s.labels.get("apiserver_id_hash", "")] = s.labels.get("hash", "")
        elif fam.name == RELOADS:
            for s in fam.samples:
                if s.name.endswith("_total") and s.labels.get("status") == "failure":
                    r.failures[s.labels.get("apiserver_id_hash", "")] = s.value
    return r


def hash_verdict(file_hash: str, reported: dict[str, str]) -> tuple[bool, str]:
    """(all match, the words k3s prints after ``Server Encryption Hashes:``)."""
    if not reported:
        return False, ("hashes differ: the apiserver reports no encryption configuration hash (it runs without "
                       "--encryption-provider-config-automatic-reload; restart it with controlplane up)")
    differ = sorted(i for i, h in reported.items() if h != file_hash)
    if not differ:
        return True, "All hashes match"
    shown = ", ".join(f"{i[:19]}… serves {reported[i][:12]}…" for i in differ)
    return False, (f"hashes differ: {len(differ)} of {len(reported)} apiserver processes do not serve the file's "
                   f"configuration ({file_hash[:12]}…): {shown}")


def format_status(enabled_: bool | None, stage: str, hashes: str, active: list[tuple[str, str]],
                  inactive: list[tuple[str, str]]) -> str:
    """k3s's ``secrets-encrypt status`` text (``enabled_`` None: no configuration file)."""
    if enabled_ is None:
        return "Encryption Status: Disabled, no configuration file found\n"
    rows = [("Active", "Key Type", "Name"), ("------", "--------", "----")]
    rows += [(" *", t, n) for t, n in active] + [("", t, n) for t, n in inactive]
    w0, w1 = (max(len(r[i]) for r in rows) + 2 for i in (0, 1))
    table = "".join(f"{a:<{w0}}{b:<{w1}}{c}".rstrip() + "\n" for a, b, c in rows)
    return (f"Encryption Status: {'Enabled' if enabled_ else 'Disabled'}\n"
            f"Current Rotation Stage: {stage}\n"
            f"Server Encryption Hashes: {hashes}\n\n{table}")


def status_json(enabled_: bool | None, stage: str, match: bool, hash_error: str, active: list[tuple[str, str]],
                inactive: list[tuple[str, str]]) -> str:
    """k3s's ``secrets-encrypt status -o json``: its ``EncryptionState`` as Go's
    ``json.MarshalIndent(status, "", "\\t")`` writes it (``omitempty`` fields left out when empty).
    k3s has one active key; with several encrypting resource entries the others are listed
    after it in ``activekeys`` (ours)."""
    out: dict[str, Any] = {"stage": stage, "activekey": " ".join(active[0]) if active else ""}
    if enabled_ is not None:
        out["enable"] = enabled_
    if match:
        out["hashmatch"] = True
    if hash_error:
        out["hasherror"] = hash_error
    if inactive:
        out["inactivekeys"] = [" ".join(k) for k in inactive]
    if len(active) > 1:
        out["activekeys"] = [" ".join(k) for k in active]
    return json.dumps(out, indent="\t", ensure_ascii=False) + "\n"


def stage_refusal(action: str, stage: str, force: bool, node: str) -> str | None:
    """Why ``action`` may not follow ``stage`` (k3s's words, then ours); None when it may."""
    wanted = AFTER.get(action)
    if force or wanted is None or stage in wanted:
        return None
    why = f"incorrect stage {stage} found on node {node}"
    if stage in IN_PROGRESS:
        return (f"{why}: a previous re-encryption stopped half-way (interrupted?); run again with --force to go on "
                "(the old keys are still in the configuration)")
    before = {"rotate": "secrets-encrypt prepare", "reencrypt": "secrets-encrypt rotate"}.get(action)
    if before:
        return f"{why}: {action} follows {' or '.join(wanted)}; run {before} first (or -f to go on anyway)"
    return (f"{why}: a rotation is under way (stage {stage}); finish it with secrets-encrypt "
            f"{'rotate' if stage == PREPARE else 'reencrypt'} (or -f to start over)")


def etcd_prefixes(names: list[str]) -> list[str]:
    """The etcd key prefixes covering the named resources (``*.*``: everything)."""
    out: set[str] = set()
    for n in names:
        if n == "*.*":
            return ["/registry/"]
        if n.startswith("*."):
            out.add(f"/registry/{n[2:] or 'core'}/")
        else:
            res, _, group = n.partition(".")
            out.add(f"/registry/{group or 'core'}/{res}/")
    return sorted(p for p in out if not any(p != q and p.startswith(q) for q in out))


def not_current(config: EncryptionConfig, key: str, value: bytes) -> str | None:
    """Why the stored ``value`` of ``key`` is not under the current write key or provider (None
    when it is -- in plaintext when ``identity`` writes -- or when no entry names its resource)."""
    gr = group_resource(key)
    t = config.for_resource(*gr) if gr is not None else None
    if t is None or not value:
        return None
    try:
        _, stale = t.from_storage(value, key.encode())
    except DecryptError as e:
        return f"unreadable: {e}"
    return "written with an older key or provider" if stale else None


# -- the data dir ---------------------------------------------------------------------------

class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.config = self.path / "encryption-config.yaml"
        self.state = self.path / "server" / "secrets-encrypt.json"
        self.lock_path = self.path / "server" / "secrets-encrypt.lock"
        self._lock_fd: int | None = None

    def stage(self) -> str:
        try:
            return str(json.loads(self.state.read_text())["stage"])
        except (OSError, ValueError, KeyError):
            return START

    def set_stage(self, stage: str) -> None:
        write_file(self.state, json.dumps({"stage": stage, "time": int(time.time())}).encode(), 0o600)

    def read_config(self) -> tuple[dict[str, Any], bytes]:
        raw = self.config.read_bytes()
        return yaml.safe_load(raw) or {}, raw

    def write_config(self, doc: dict[str, Any]) -> str:
        data = yaml.safe_dump(doc, sort_keys=False).encode()
        EncryptionConfig.parse_bytes(data)  # never write what the apiserver would refuse
        write_file(self.config, data, 0o600)
        return config_hash(data)

    def lock(self) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise Refused(f"another secrets-encrypt rotation is in progress on {self.path} (pid {holder}); "
                          "wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# -- talking to the server ------------------------------------------------------------------

async def reports(client: RestClient) -> Reports:
    return parse_reports(await client.request("GET", "/metrics"))


async def require_server(client: RestClient, dd: DataDir) -> None:
    try:
        await client.request("GET", "/readyz")
    except ApiStatusError as e:
        raise Refused(f"the server of {dd.path} is not running or not ready ({client.base_url}: {e}); "
                      f"start it with controlplane up --data-dir {dd.path}") from None
    try:
        ep = await client.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    except ApiStatusError:
        return
    addrs = {a.get("ip") for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
    if len(addrs) > 1:
        raise Refused(f"{len(addrs)} apiservers serve this cluster: rotating keys on several servers is not "
                      "supported (each server has its own DATA_DIR/encryption-config.yaml)")


async def wait_reload(client: RestClient, want: str, before: Reports, timeout: float) -> None:
    """Until every apiserver process reports ``want``; a refused reload ends it at once."""
    deadline = time.monotonic() + timeout
    while True:
        now = await reports(client)
        if now.hashes and all(h == want for h in now.hashes.values()):
            return
        refused = [i for i, n in now.failures.items() if n > before.failures.get(i, 0)]
        if refused:
            raise RotationError(f"the apiserver refused the new configuration ({len(refused)} process(es) counted a "
                                "failed reload; see its log, DATA_DIR/logs/apiserver.log)")
        if time.monotonic() > deadline:
            raise RotationError(f"the apiserver did not reload the configuration within {timeout:.0f} s: "
                                f"{hash_verdict(want, now.hashes)[1]}")
        await asyncio.sleep(0.5)


async def resources_to_rewrite(client: RestClient, names: list[str]) -> list[Resource]:
    out: list[Resource] = []
    seen: set[tuple[str, str]] = set()
    for gv, r in await client.discover():
        group, _, version = gv.rpartition("/")
        plural = r.get("name", "")
        verbs = set(r.get("verbs") or [])
        if "/" in plural or not {"list", "patch"} <= verbs or (group, plural) in seen:
            continue
        if names_match(names, group, plural):
            seen.add((group, plural))
            out.append(Resource(group, version, plural, r.get("kind", ""), bool(r.get("namespaced"))))
    return out


async def rewrite_all(client: RestClient, names: list[str]) -> tuple[int, list[str]]:
    """Rewrite every object of the named resources (an empty merge patch); (objects, errors)."""
    count, errors = 0, []
    for res in await resources_to_rewrite(client, names):
        lst = await client.list_all(res)
        for obj in lst.get("items") or []:
            md = obj.get("metadata") or {}
            try:
                await client.patch(res, md["name"], {}, md.get("namespace") if res.namespaced else None)
                count += 1
            except ApiStatusError as e:
                if not e.not_found:  # deleted meanwhile: nothing to rewrite
                    errors.append(f"{res.group_resource} {md.get('namespace', '')}/{md.get('name')}: {e}")
    return count, errors


async def check_etcd(dd: DataDir, doc: dict[str, Any]) -> list[str] | None:
    """Keys of the encrypted resources not under the current key, read straight from this
    server's etcd member (None when ``up`` runs no embedded etcd: nothing to check with)."""
    from controlplane.cmd.etcd_snapshot import member_of
    from controlplane.storage.etcd import EtcdBackend

    if not (dd.path / "server" / "etcd.json").exists():
        return None
    member = member_of(dd.path)
    tls = member.tls
    backend = EtcdBackend(member.local_endpoint, cafile=str(tls.ca) if tls else None,
                          certfile=str(tls.client_cert) if tls else None, keyfile=str(tls.client_key) if tls else None)
    config = EncryptionConfig.parse(doc)
    bad: list[str] = []
    await backend.start()
    try:
        for prefix in etcd_prefixes(encrypted_resources(doc)):
            start: str | None = None
            while True:
                page = await backend.list(prefix, limit=500, start_key=start)
                for kv in page.items:
                    why = not_current(config, kv.key, kv.value)
                    if why is not None:
                        bad.append(f"{kv.key}: {why}")
                if not page.more or not page.items:
                    break
                start = page.items[-1].key + "\0"
    finally:
        await backend.close()
    return bad


async def reencrypt(client: RestClient, dd: DataDir, doc: dict[str, Any]) -> int:
    """Rewrite, then check etcd; one more pass for objects written meanwhile by an old key."""
    names = encrypted_resources(doc)
    total = 0
    for attempt in range(2):
        count, errors = await rewrite_all(client, names)
        total += count
        for e in errors:
            log.warning("object not rewritten", error=e)
        bad = await check_etcd(dd, doc)
        if bad is None:
            if errors:
                raise RotationError(f"{len(errors)} objects could not be rewritten: {errors[:3]}")
            print(f"rewrote {count} objects of {', '.join(names)} (no embedded etcd: not checked in etcd)")
            return total
        if not bad:
            print(f"rewrote {count} objects of {', '.join(names)}; every one is under the current key (or in plaintext where identity writes) in etcd")
            return total
    raise RotationError(f"{len(bad)} objects are not under the current key after re-encryption (the old keys are "
                        f"kept): {bad[:3]}")


# -- the actions ------------------------------------------------------------------------------

async def status(client: RestClient, dd: DataDir, output: str = "text") -> int:
    if not dd.config.exists():
        sys.stdout.write(status_json(None, "", False, "", [], []) if output == "json"
                         else format_status(None, "", "", [], []))
        return 0
    doc, raw = dd.read_config()
    active, inactive = key_listing(doc)
    rc = 0
    try:
        match, hashes = hash_verdict(config_hash(raw), (await reports(client)).hashes)
    except ApiStatusError as e:
        match, hashes, rc = False, f"unknown: the server is not running ({client.base_url}: {e})", 1
    if output == "json":
        sys.stdout.write(status_json(enabled(doc), dd.stage(), match, "" if match else hashes, active, inactive))
    else:
        sys.stdout.write(format_status(enabled(doc), dd.stage(), hashes, active, inactive))
    return rc


async def preflight(client: RestClient, dd: DataDir, action: str, force: bool,
                    need_enabled: bool = True) -> tuple[dict[str, Any], Reports]:
    """The checks before changing anything; holds the lock on success."""
    if not dd.config.exists():
        raise Refused(f"encryption is disabled: {dd.config} does not exist")
    dd.lock()
    why = stage_refusal(action, dd.stage(), force, socket.gethostname())
    if why:
        raise Refused(why)
    await require_server(client, dd)
    doc, raw = dd.read_config()
    if need_enabled and not enabled(doc):
        raise Refused("encryption is disabled: no resource is written with a key (secrets-encrypt enable first)")
    before = await reports(client)
    ok, words = hash_verdict(config_hash(raw), before.hashes)
    if not ok:
        raise Refused(f"the apiserver does not serve {dd.config}: {words}")
    return doc, before


async def install(client: RestClient, dd: DataDir, doc: dict[str, Any], before: Reports, timeout: float) -> None:
    """Write ``doc`` and wait until every apiserver process serves it."""
    want = dd.write_config(doc)
    await wait_reload(client, want, before, timeout)


async def rotate_keys(client: RestClient, dd: DataDir, args: argparse.Namespace) -> int:
    doc, before = await preflight(client, dd, "rotate-keys", args.force)
    dd.set_stage(REQUEST)
    new_doc, names = add_key(doc, _dt.datetime.now(_dt.timezone.utc))
    print(f"added key {', '.join(sorted(set(names)))} in front; waiting for the apiserver to reload")
    await install(client, dd, new_doc, before, args.reload_timeout)
    dd.set_stage(ACTIVE)
    await reencrypt(client, dd, new_doc)
    final = drop_old_keys(new_doc)
    print("removed the old keys; waiting for the apiserver to reload")
    await install(client, dd, final, await reports(client), args.reload_timeout)
    dd.set_stage(FINISHED)
    print("keys rotated, reencryption finished")
    return 0


async def prepare_action(client: RestClient, dd: DataDir, args: argparse.Namespace) -> int:
    doc, before = await preflight(client, dd, "prepare", args.force)
    new_doc, names = append_key(doc, _dt.datetime.now(_dt.timezone.utc))
    print(f"added key {', '.join(sorted(set(names)))} behind the current one; waiting for the apiserver to reload")
    await install(client, dd, new_doc, before, args.reload_timeout)
    dd.set_stage(PREPARE)
    print("prepare completed successfully")
    return 0


async def rotate_action(client: RestClient, dd: DataDir, args: argparse.Namespace) -> int:
    doc, before = await preflight(client, dd, "rotate", args.force)
    new_doc, names = rotate_last_first(doc)
    print(f"key {', '.join(sorted(set(names)))} now writes; waiting for the apiserver to reload")
    await install(client, dd, new_doc, before, args.reload_timeout)
    dd.set_stage(ROTATE)
    print("rotate completed successfully")
    return 0


async def reencrypt_action(client: RestClient, dd: DataDir, args: argparse.Namespace) -> int:
    doc, _ = await preflight(client, dd, "reencrypt", args.force, need_enabled=False)
    dd.set_stage(ACTIVE)
    await reencrypt(client, dd, doc)
    if args.skip:  # k3s: back to the start, no key removed
        dd.set_stage(START)
        print("reencryption finished (old keys kept: --skip)")
        return 0
    final = drop_old_keys(doc)
    if final != doc:
        print("removed the old keys; waiting for the apiserver to reload")
        await install(client, dd, final, await reports(client), args.reload_timeout)
    dd.set_stage(FINISHED)
    print("reencryption finished")
    return 0


async def enable_action(client: RestClient, dd: DataDir, args: argparse.Namespace) -> int:
    enable = args.action == "enable"
    word = "enabled" if enable else "disabled"
    doc, before = await preflight(client, dd, args.action, False, need_enabled=False)
    new_doc, changed = set_enabled(doc, enable)
    if changed:
        print(f"{'the key' if enable else 'identity'} now writes; waiting for the apiserver to reload")
        await install(client, dd, new_doc, before, args.reload_timeout)
    elif dd.stage() not in IN_PROGRESS:
        print(f"secrets encryption already {word}")
        return 0
    # (else a previous enable/disable stopped while rewriting: finish it)
    dd.set_stage(ACTIVE)
    await reencrypt(client, dd, new_doc)
    dd.set_stage(START)
    print(f"secrets-encryption {word}")
    return 0


RUN = {"rotate-keys": rotate_keys, "prepare": prepare_action, "rotate": rotate_action, "reencrypt": reencrypt_action,
       "enable": enable_action, "disable": enable_action}


async def _main(ctx: bootstrap.Context) -> int:
    a = ctx.args
    dd = DataDir(a.data_dir)
    kubeconfig = dd.path / "kubeconfig"
    if not kubeconfig.exists():
        sys.stderr.write(f"{kubeconfig} does not exist: no server was ever started on {dd.path}\n")
        return 1
    client = RestClient.from_kubeconfig(kubeconfig, user_agent="controlplane-secrets-encrypt", discover=False,
                                        request_timeout=30.0)
    try:
        if a.action == "status":
            return await status(client, dd, a.output)
        return await RUN[a.action](client, dd, a)
    except Refused as e:
        sys.stderr.write(f"refused: {e}\n")
        return 1
    except (RotationError, ConfigError) as e:
        sys.stderr.write(f"failed: {e}\n")
        return 1
    except ApiStatusError as e:
        again = "run it again" if a.action in ("enable", "disable") else "run again with --force"
        sys.stderr.write(f"failed: the server stopped answering ({client.base_url}: {e}); stage {dd.stage()}, "
                         f"the configuration keeps every key it had: {again} once it is back\n")
        return 1
    finally:
        dd.unlock()
        await client.close()
