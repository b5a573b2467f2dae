"""Pure pieces of issue 15's HA work (item 5), table-driven: the client-side apiserver balancer,
the server token and its encrypted bootstrap data, the apiserver endpoint list, the join's file
check, and snapshot pruning."""

from __future__ import annotations

import os
import time

import pytest

from controlplane.apiserver.server.endpoint_reconciler import address_of, desired_subsets
from controlplane.client.balancer import Balancer, endpoints_from
from controlplane.cmd import etcd_snapshot, serverjoin
from controlplane.pki import certs, servertoken

A, B, C = "https://127.0.0.1:1001", "https://127.0.0.1:1002", "https://127.0.0.1:1003"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


# each step: (event, url) with event failed/succeeded/probe-ok/probe-bad/discover; then the pick
@pytest.mark.parametrize("configured,steps,expect", [
    ([A], [], A),
    ([A, B], [("failed", A)], B),
    ([A, B], [("failed", A), ("probe-ok", A)], A),  # a configured endpoint healthy again: back to it
    ([A], [("discover", [A, B, C]), ("failed", A)], B),  # published ones serve when the configured fails
    ([A], [("discover", [A, B, C]), ("failed", A), ("failed", B)], C),
    ([A], [("discover", [A, B]), ("failed", A), ("failed", B)], A),  # none healthy: the one failed longest ago
    ([A], [("discover", [A, B]), ("failed", A), ("probe-ok", B), ("discover", [A, C])], C),  # B gone
    ([A, B], [("failed", A), ("failed", B), ("succeeded", B)], B),
], ids=["single", "failover", "back-to-configured", "discovered-failover", "second-failover",
        "all-unhealthy", "discovered-replaced", "success-heals"])
def test_balancer_picks(configured, steps, expect):
    b = Balancer(configured, clock=Clock())
    for ev, arg in steps:
        if ev == "failed":
            b.failed(arg)
        elif ev == "succeeded":
            b.succeeded(arg)
        elif ev == "probe-ok":
            b.probed(arg, True)
        elif ev == "probe-bad":
            b.probed(arg, False)
        elif ev == "discover":
            b.discovered(arg)
    assert b.pick() == expect


def test_balancer_others_orders_healthy_first_and_rejects_empty():
    b = Balancer([A], clock=Clock())
    b.discovered([B, C])
    b.failed(B)
    assert b.others(A) == [C, B]
    with pytest.raises(ValueError):
        Balancer([" ", ""])


@pytest.mark.parametrize("obj,expect", [
    ({}, []),
    ({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 6443}]}]},
     ["https://10.0.0.1:6443", "https://10.0.0.2:6443"]),
    ({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 443}]}]}, ["https://[fd00::1]:443"]),
    ({"subsets": [{"addresses": [{"hostname": "x"}], "ports": [{"port": 1}]}]}, []),
])
def test_endpoints_from(obj, expect):
    assert endpoints_from(obj, "https") == expect


@pytest.mark.parametrize("url,expect", [
    ("https://127.0.0.1:6443", ("127.0.0.1", 6443)),
    ("https://10.1.2.3", ("10.1.2.3", 443)),
    ("https://0.0.0.0:6443", None),
    ("https://localhost:6443", None),
    ("https://example.com:6443", None),
])
def test_endpoint_reconciler_address(url, expect):
    assert address_of(url) == expect


def test_endpoint_reconciler_subsets_one_per_port_sorted():
    got = desired_subsets([("127.0.0.2", 2), ("127.0.0.1", 1), ("127.0.0.3", 2)])
    assert got == [
        {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 1, "protocol": "TCP"}]},
        {"addresses": [{"ip": "127.0.0.2"}, {"ip": "127.0.0.3"}],
         "ports": [{"name": "https", "port": 2, "protocol": "TCP"}]}]


@pytest.fixture(scope="module")
def ca_pem() -> bytes:
    return certs.cert_pem(certs.new_ca("test-ca").cert)


@pytest.mark.parametrize("text,server,bootstrap,password", [
    ("K10" + "a" * 64 + "::server:pw1", True, False, "pw1"),
    ("K10" + "b" * 64 + "::abcdef.0123456789abcdef", False, True, "abcdef.0123456789abcdef"),
    ("abcdef.0123456789abcdef", False, True, "abcdef.0123456789abcdef"),
    ("plainpassword", True, False, "plainpassword"),  # k3s: a bare --token is the server password
])
def test_token_parse(text, server, bootstrap, password):
    t = servertoken.parse(text)
    assert (t.is_server, t.is_bootstrap, t.password) == (server, bootstrap, password)
    assert servertoken.parse(str(t)) == t


@pytest.mark.parametrize("text", ["", "K10abc::server:x", "K10" + "a" * 64 + "::", "K10" + "a" * 64 + "::server:",
                                  "pass word", "a,b"])
def test_token_parse_rejects(text):
    with pytest.raises(servertoken.TokenError):
        servertoken.parse(text)


def test_bootstrap_data_opens_only_with_the_token(ca_pem):
    tok = servertoken.new_server_token(ca_pem)
    assert tok.ca_hash == servertoken.ca_hash(ca_pem) and tok.is_server
    data = {"files": servertoken.files_payload({"pki/ca.crt": ca_pem}), "etcdEndpoints": ["https://127.0.0.1:1"]}
    blob = servertoken.encrypt_bootstrap(tok.password, data)
    assert ca_pem not in blob
    assert servertoken.decrypt_bootstrap(tok.password, blob) == data
    with pytest.raises(servertoken.TokenError):
        servertoken.decrypt_bootstrap("another", blob)
    with pytest.raises(servertoken.TokenError):
        servertoken.decrypt_bootstrap(tok.password, blob[:10])


def test_ensure_token_keeps_checks_and_writes_the_auth_line(tmp_path, ca_pem):
    t1 = serverjoin.ensure_token(tmp_path, ca_pem, None)
    assert serverjoin.ensure_token(tmp_path, ca_pem, None) == t1  # kept
    assert serverjoin.ensure_token(tmp_path, ca_pem, str(t1)) == t1
    line = serverjoin.token_auth_file(tmp_path).read_text()
    assert line.startswith(t1.password + ",controlplane:server,") and "controlplane:servers" in line
    with pytest.raises(serverjoin.JoinError):  # another password than the stored one
        serverjoin.ensure_token(tmp_path, ca_pem, "server:other")
    other = tmp_path / "other"
    with pytest.raises(serverjoin.JoinError):  # a token pinned to another CA
        serverjoin.ensure_token(other, ca_pem, "K10" + "0" * 64 + "::server:x")
    with pytest.raises(serverjoin.JoinError):  # a bootstrap token cannot make a server
        serverjoin.ensure_token(other, ca_pem, "abcdef.0123456789abcdef")
    chosen = serverjoin.ensure_token(other, ca_pem, "mypassword")  # a first server may choose its password
    assert chosen.password == "mypassword" and chosen.ca_hash == servertoken.ca_hash(ca_pem)


def test_write_bootstrap_refuses_other_paths_and_other_clusters(tmp_path, ca_pem):
    evil = {"files": servertoken.files_payload({"../../escape": b"x"})}
    with pytest.raises(serverjoin.JoinError):
        serverjoin.write_bootstrap(tmp_path / "d", evil)
    assert not (tmp_path / "escape").exists()
    ok = {"files": servertoken.files_payload({"pki/ca.crt": ca_pem, "pki/sa.pub": b"pub"})}
    assert sorted(serverjoin.write_bootstrap(tmp_path / "d", ok)) == ["pki/ca.crt", "pki/sa.pub"]
    assert serverjoin.write_bootstrap(tmp_path / "d", ok) == []  # nothing new
    other = {"files": servertoken.files_payload({"pki/ca.crt": b"another CA"})}
    with pytest.raises(serverjoin.JoinError):
        serverjoin.write_bootstrap(tmp_path / "d", other)


def test_snapshot_prune_keeps_the_newest_scheduled(tmp_path):
    now = time.time()
    names = [f"etcd-snapshot-h-{i}" for i in range(6)] + ["on-demand-h-1"]
    for i, n in enumerate(names):
        p = tmp_path / n
        p.write_bytes(b"s")
        os.utime(p, (now + i, now + i))
    (tmp_path / "etcd-snapshot-h-9.part").write_bytes(b"partial")
    gone = etcd_snapshot.prune(tmp_path, 2)
    assert sorted(os.path.basename(g) for g in gone) == [f"etcd-snapshot-h-{i}" for i in range(4)]
    assert [s["name"] for s in etcd_snapshot.listing(tmp_path)] == ["etcd-snapshot-h-4", "etcd-snapshot-h-5",
                                                                    "on-demand-h-1"]


# -- the chaos checker (controlplane.cmd.chaos) ----------------------------------------------------

from controlplane.cmd.chaos import WatchLog, check_state, check_watch, percentile  # noqa: E402


@pytest.mark.parametrize("events,gaps,acked,expect", [
    ([("ADDED", 11, "w0-k0", "a"), ("MODIFIED", 12, "w0-k0", "b")], [], [(11, "w0-k0", 0), (12, "w0-k0", 0)],
     {"duplicated": 0, "reordered": 0, "lost": 0}),
    # one transaction, two keys, one revision: not a duplicate
    ([("ADDED", 11, "w0-k0", "a"), ("ADDED", 11, "w0-k1", "a")], [], [], {"duplicated": 0, "reordered": 0, "lost": 0}),
    ([("ADDED", 11, "w0-k0", "a"), ("ADDED", 11, "w0-k0", "a")], [], [], {"duplicated": 1, "reordered": 0, "lost": 0}),
    ([("ADDED", 12, "w0-k0", "a"), ("ADDED", 11, "w0-k1", "a")], [], [], {"duplicated": 0, "reordered": 1, "lost": 0}),
    ([("ADDED", 11, "w0-k0", "a"), ("MODIFIED", 14, "w0-k0", "c")], [], [(11, "w0-k0", 0), (13, "w0-k0", 0)],
     {"duplicated": 0, "reordered": 0, "lost": 1}),
    # inside a relist window (410): not counted; before the watch started or after its end: neither
    ([("ADDED", 11, "w0-k0", "a"), ("MODIFIED", 14, "w0-k0", "c")], [(11, 13)],
     [(9, "w0-k0", 0), (13, "w0-k0", 0), (20, "w0-k0", 0)], {"duplicated": 0, "reordered": 0, "lost": 0}),
], ids=["clean", "shared-revision", "duplicate", "reordered", "lost", "windows"])
def test_check_watch(events, gaps, acked, expect):
    got = check_watch(WatchLog(events=events, start_rv=10, gaps=gaps), acked, {})
    assert {k: got[k] for k in expect} == expect


def test_check_watch_state_and_check_state():
    wl = WatchLog(events=[], start_rv=1, state={"w0-k0": "a", "kc-1": None, "chaos-probe": "x"})
    assert check_watch(wl, [], {"w0-k0": "a"})["stateMismatch"] == 0
    assert check_watch(wl, [], {"w0-k0": "b", "kc-1": "1"})["stateMismatch"] == 2
    expect = {"w0-k0": "a", "w0-k1": None, "kc-1": "?", "kc-2": "2"}
    assert check_state(expect, {"w0-k0": "a", "kc-1": "1", "kc-2": "2"}) == []
    assert check_state(expect, {"w0-k0": "old", "w0-k1": "zombie"}) == ["kc-2", "w0-k0", "w0-k1"]


@pytest.mark.parametrize("values,q,expect", [([], 50, None), ([3.0], 99, 3.0), ([1, 2, 3, 4], 50, 2),
                                             ([1, 2, 3, 4], 99, 4), (list(range(1, 101)), 99, 99)])
def test_percentile(values, q, expect):
    assert percentile(values, q) == expect
