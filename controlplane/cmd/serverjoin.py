"""Several servers, the way k3s runs them (docs/reliability.md, "HA"): the server token, the
bootstrap data it opens, and a joining server's etcd membership. Used by ``cmd/up.py``.

- ``ensure_token``: the first server (``up --cluster-init``, or any ``up``) writes
  ``DATA_DIR/server/token`` (``K10<ca hash>::server:<password>``, k3s's
  ``/var/lib/rancher/k3s/server/token``) and the apiserver's ``--token-auth-file`` line that
  makes the password ``controlplane:server`` (``pki.servertoken``).
- ``publish``: every server with an apiserver keeps the encrypted bootstrap Secret
  (``kube-system/controlplane-server-bootstrap``: CAs and keys, ServiceAccount keys, the
  EncryptionConfiguration, the etcd client URLs) and the Role letting the servers' group read
  it current (written through the admin kubeconfig once the apiserver serves).
- ``fetch``: a joining server (``up --server URL --token T``) reads the cluster CA from
  ``kube-public/cluster-info`` and checks it against the token's hash, reads the Secret with
  the password as a bearer token, opens it with the password and writes the files under its
  own data dir; its ``pki.ClusterPKI.ensure`` then issues its own certificates from those CAs.
- ``join_etcd``: adds the new member as a learner through etcd's member add API (with an etcd
  client certificate it signed itself with the shared etcd CA) and sets the initial-cluster
  flags of its first start; ``promote_when_ready`` promotes it once etcd lets it (its log
  caught up), as k3s does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.agent.bootstrap import fetch_ca
from controlplane.client.resources import ROLEBINDINGS, ROLES, SECRETS
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.etcd_process import EtcdProcess, EtcdTLS, free_port
from controlplane.log import get_logger
from controlplane.pki import servertoken
from controlplane.pki.certs import write_file
from controlplane.pki.servertoken import Token
from controlplane.storage import etcd_admin

log = get_logger(__name__)

# what a joining server copies: relative to the data dir
BOOTSTRAP_FILES = ("pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/etcd/ca.key", "pki/sa.key", "pki/sa.pub",
                   "encryption-config.yaml")
NS = "kube-system"


class JoinError(Exception):
    pass


def server_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "server"


def token_path(data_dir: Path) -> Path:
    return server_dir(data_dir) / "token"


def token_auth_file(data_dir: Path) -> Path:
    return server_dir(data_dir) / "token-auth.csv"


def ensure_token(data_dir: Path, ca_pem: bytes, given: str | None) -> Token:
    """The server token of this data dir: the stored one, else ``given`` (its CA hash filled in
    or checked), else a new one; written with the apiserver's token-auth line."""
    path = token_path(data_dir)
    want_hash = servertoken.ca_hash(ca_pem)
    if path.exists():
        tok = servertoken.parse(path.read_text())
        if given:
            g = servertoken.parse(given)
            if g.password != tok.password:
                raise JoinError(f"--token differs from the server token already in {path}")
    elif given:
        tok = servertoken.parse(given)
    else:
        tok = servertoken.new_server_token(ca_pem)
    if not tok.is_server:
        raise JoinError("a server needs a server token (K10<hash>::server:<password>), not a bootstrap token")
    if tok.ca_hash and tok.ca_hash != want_hash:
        raise JoinError(f"the token's CA hash {tok.ca_hash} is not this cluster's CA ({want_hash})")
    tok = Token(want_hash, tok.credential)
    write_file(path, (str(tok) + "\n").encode(), 0o600)
    write_file(token_auth_file(data_dir), servertoken.token_file_line(tok).encode(), 0o600)
    return tok


# -- publishing (every server with an apiserver) -------------------------------------------

def _role() -> tuple[dict, dict]:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "controlplane:server-bootstrap", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                       "resourceNames": [servertoken.BOOTSTRAP_SECRET]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "controlplane:server-bootstrap", "namespace": NS},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "controlplane:server-bootstrap"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                             "name": servertoken.SERVERS_GROUP}]}
    return role, binding


def bootstrap_payload(data_dir: Path, etcd_endpoints: list[str]) -> dict[str, Any]:
    files = {rel: (Path(data_dir) / rel).read_bytes() for rel in BOOTSTRAP_FILES if (Path(data_dir) / rel).exists()}
    return {"files": servertoken.files_payload(files), "etcdEndpoints": sorted(etcd_endpoints)}


async def publish(kubeconfig: Path, data_dir: Path, token: Token, etcd_endpoints: list[str]) -> bool:
    """Keep the bootstrap Secret and its Role current; True when the Secret was (re)written."""
    payload = bootstrap_payload(data_dir, etcd_endpoints)
    async with RestClient.from_kubeconfig(kubeconfig, user_agent="controlplane-up") as c:
        for res, obj in zip((ROLES, ROLEBINDINGS), _role()):
            await c.patch(res, obj["metadata"]["name"], json.dumps(obj), NS, patch_type="apply",
                          field_manager="controlplane-up", force=True)
        try:
            cur = await c.get(SECRETS, servertoken.BOOTSTRAP_SECRET, NS)
        except ApiStatusError as e:
            if not e.not_found:
                raise
            cur = None
        if cur is not None:
            try:
                old = servertoken.decrypt_bootstrap(
                    token.password, base64.b64decode((cur.get("data") or {}).get(servertoken.BOOTSTRAP_KEY, "")))
                if old == payload:
                    return False
            except servertoken.TokenError:
                pass
        blob = servertoken.encrypt_bootstrap(token.password, payload)
        body = {"apiVersion": "v1", "kind": "Secret", "type": "controlplane.io/server-bootstrap",
                "metadata": {"name": servertoken.BOOTSTRAP_SECRET, "namespace": NS},
                "data": {servertoken.BOOTSTRAP_KEY: base64.b64encode(blob).decode()}}
        if cur is None:
            try:
                await c.create(SECRETS, body, NS)
                return True
            except ApiStatusError as e:
                if not e.already_exists:
                    raise
                cur = await c.get(SECRETS, servertoken.BOOTSTRAP_SECRET, NS)
        body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        try:
            await c.update(SECRETS, body)
        except ApiStatusError as e:
            if not e.conflict:
                raise
            return False  # another server wrote it meanwhile; the next start looks again
        return True


# -- joining ---------------------------------------------------------------------------------

async def fetch(server: str, token: Token) -> tuple[bytes, dict[str, Any]]:
    """(cluster CA PEM, bootstrap payload) from the server at ``server``."""
    if not token.is_server:
        raise JoinError("joining a server needs the server token (DATA_DIR/server/token of a server)")
    ca = await fetch_ca(server, token.ca_hash)
    ctx = ssl.create_default_context(cadata=ca.decode())
    async with RestClient(server, headers={"Authorization": f"Bearer {token.password}"}, ssl_ctx=ctx,
                          user_agent="controlplane-up (join)") as c:
        try:
            sec = await c.get(SECRETS, servertoken.BOOTSTRAP_SECRET, NS)
        except ApiStatusError as e:
            if e.code in (401, 403):
                raise JoinError(f"the server refused the token ({e.code} {e.reason})") from e
            raise
    blob = base64.b64decode((sec.get("data") or {}).get(servertoken.BOOTSTRAP_KEY, ""))
    return ca, servertoken.decrypt_bootstrap(token.password, blob)


def write_bootstrap(data_dir: Path, payload: dict[str, Any]) -> list[str]:
    """Write the bootstrap files; refuse when the data dir already holds another cluster's CA."""
    files = servertoken.payload_files(payload.get("files") or {})
    unknown = sorted(set(files) - set(BOOTSTRAP_FILES))
    if unknown:  # never a path the server chose (../ and the like)
        raise JoinError(f"the bootstrap data names files a server never sends: {unknown}")
    mine = Path(data_dir) / "pki/ca.crt"
    if mine.exists() and "pki/ca.crt" in files and mine.read_bytes() != files["pki/ca.crt"]:
        raise JoinError(f"{data_dir} already belongs to another cluster (its pki/ca.crt differs)")
    written = []
    for rel, data in files.items():
        path = Path(data_dir) / rel
        if path.exists() and path.read_bytes() == data:
            continue
        write_file(path, data, 0o600 if rel.endswith((".key", ".yaml")) else 0o644)
        written.append(rel)
    return written


@dataclass
class EtcdSettings:
    """The embedded member's name, ports and address, kept in ``DATA_DIR/server/etcd.json`` so
    its peer URL (registered in the cluster's member list) stays the same across restarts of
    ``up`` (and ``controlplane etcd-snapshot`` finds the member)."""

    name: str
    client_port: int
    peer_port: int
    host: str = "127.0.0.1"

    @classmethod
    def load_or_new(cls, data_dir: Path, default_name: str, host: str = "127.0.0.1") -> "EtcdSettings":
        path = server_dir(data_dir) / "etcd.json"
        if path.exists():
            d = json.loads(path.read_text())
            s = cls(d["name"], int(d["clientPort"]), int(d["peerPort"]), d.get("host", host))
        else:
            # a data dir from before: its member was called "controlplane"
            name = "controlplane" if (Path(data_dir) / "etcd" / "member").exists() else default_name
            s = cls(name, free_port(), free_port(), host)
        if s.host != host:
            log.warning("the etcd member's address changed; its peer URL in the member list is the old one",
                        old=s.host, new=host)
        s.host = host
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": s.name, "clientPort": s.client_port, "peerPort": s.peer_port,
                                    "host": s.host}) + "\n")
        return s


def etcd_tls_tuple(tls: EtcdTLS | None) -> etcd_admin.TLS:
    return (str(tls.ca), str(tls.client_cert), str(tls.client_key)) if tls is not None else None


async def join_etcd(proc: EtcdProcess, endpoints: list[str]) -> int | None:
    """Make ``proc`` a new member of the cluster at ``endpoints`` (a learner); its member id,
    or None when its data dir already holds a member (a restart: nothing to do)."""
    if (proc.data_dir / "member").exists():
        return None
    tls = etcd_tls_tuple(proc.tls)
    mems = await etcd_admin.members(endpoints, tls)
    mine = next((m for m in mems if proc.peer_url in m.peer_urls), None)
    if mine is None:
        mine, mems = await _add_learner(endpoints, tls, proc.peer_url)
        log.info("etcd member added (learner)", member=f"{mine.id:x}", peer_url=proc.peer_url)
    parts = []
    for m in mems:
        name = proc.name if m.id == mine.id else m.name
        if not name:
            continue  # another member added but never started: etcd takes it from the member list
        parts += [f"{name}={u}" for u in m.peer_urls]
    proc.initial_cluster = ",".join(parts)
    proc.initial_cluster_state = "existing"
    return mine.id


async def _add_learner(endpoints: list[str], tls: etcd_admin.TLS, peer_url: str,
                       timeout: float = 120.0) -> tuple[etcd_admin.Member, list[etcd_admin.Member]]:
    """Member add, retried while etcd refuses it for now: "unhealthy cluster" (a member joined
    or restarted less than 5 s ago: etcd's strict reconfiguration check), "too many learners"
    (another server is joining), no leader."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.5
    while True:
        try:
            return await etcd_admin.add_learner(endpoints, tls, peer_url)
        except etcd_admin.EtcdAdminError as e:
            if loop.time() + delay > deadline:
                raise JoinError(f"etcd did not accept this server as a member within {timeout:.0f}s: {e}") from e
            log.info("etcd member add refused for now; retrying", reason=str(e), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def peers_path(data_dir: Path) -> Path:
    return server_dir(data_dir) / "etcd-peers.json"


def load_peers(data_dir: Path) -> list[str]:
    """The other members' client URLs last seen (written at the join and when they change)."""
    try:
        return [str(u) for u in json.loads(peers_path(data_dir).read_text())]
    except (OSError, ValueError, TypeError):
        return []


def save_peers(data_dir: Path, urls: list[str]) -> None:
    path = peers_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sorted(set(urls))) + "\n")


async def ensure_voter(proc: EtcdProcess, peers: list[str], stop: asyncio.Event) -> None:
    """When this member is still a learner (a join, or an ``up`` stopped before its promotion),
    promote it through the other members (a learner serves neither the member list nor
    member promote) once etcd lets it."""
    if not peers:
        return
    tls = etcd_tls_tuple(proc.tls)
    st = await etcd_admin.status(proc.local_endpoint, tls)
    if not st.is_learner:
        return
    await promote_when_ready(peers, tls, st.member_id, stop)


async def promote_when_ready(endpoints: list[str], tls: etcd_admin.TLS, member_id: int,
                             stop: asyncio.Event, interval: float = 1.0) -> None:
    """Promote the learner once etcd accepts it (its log caught up with the leader's);
    ``endpoints``: voting members."""
    while not stop.is_set():
        try:
            mems = await etcd_admin.members(endpoints, tls)
            me = next((m for m in mems if m.id == member_id), None)
            if me is None or not me.is_learner:
                return
            await etcd_admin.promote(endpoints, tls, member_id)
            log.info("etcd member promoted to voter", member=f"{member_id:x}")
            return
        except etcd_admin.EtcdAdminError as e:
            log.info("etcd learner not promoted yet", member=f"{member_id:x}", reason=str(e))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


async def client_urls(endpoints: list[str], tls: etcd_admin.TLS, local: str, own: str) -> list[str]:
    """Client URLs of the started voting members, this member's loopback URL ``local`` first
    (in place of its advertised ``own``): the apiserver's ``--etcd-endpoints``."""
    mems = await etcd_admin.members(endpoints, tls)
    urls = [u for m in mems if m.started and not m.is_learner for u in m.client_urls]
    return [local] + [u for u in urls if u not in (local, own)]
