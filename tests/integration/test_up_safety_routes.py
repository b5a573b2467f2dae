"""The server's own safety routes (``up.start_safety_routes``): a ``controlplane up`` that
runs no agent still routes its cluster and service CIDRs ``unreachable`` on the host from
before its apiserver starts until it stops, tagged with its cluster's CA; a killed ``up``
leaves them for ``down``; another cluster asking for the same CIDRs is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controlplane.network import addressing as A
from controlplane.network.routes import cluster_id
from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.up import REPO, UpInstance

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not HAVE_RUNC, reason="needs root")]

LEAN = ["--disable-agent", "--disable", "registry,gitops-controller,dashboard,dns,ingress-controller",
        "--etcd-disable-snapshots"]


def _unreachable(inst: UpInstance) -> dict[str, int]:
    """The host's unreachable routes of the instance's cluster (its CA's tag): dst -> metric."""
    assert inst.net is not None
    nets = A.ClusterNetworks.parse(inst.net.cluster_cidr, inst.net.service_cidr)
    tag = nets.cluster_tag(cluster_id((inst.data_dir / "pki" / "ca.crt").read_bytes(), inst.url))
    routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "table", "main"], capture_output=True,
                                       text=True, check=True).stdout or "[]")
    return {r["dst"]: int(r["metric"]) for r in routes
            if r.get("type") == "unreachable" and str(r.get("protocol")) == str(A.ROUTE_PROTO)
            and A.metric_tag(int(r.get("metric") or 0)) == tag}


def test_a_server_without_an_agent_routes_its_cidrs_unreachable(up_factory, tmp_path):
    inst: UpInstance = up_factory("noagent", args=LEAN)
    assert inst.net is not None
    both = {inst.net.cluster_cidr, inst.net.service_cidr}
    assert set(_unreachable(inst)) == both

    # another cluster (its own CA) on the same CIDRs is refused before it starts anything
    r = subprocess.run([sys.executable, "-m", "controlplane", "up", "--data-dir", str(tmp_path / "other"),
                        "--port", "0", "--cluster-cidr", inst.net.cluster_cidr, "--service-cidr",
                        inst.net.service_cidr, *LEAN], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "already routed on this host by someone else" in r.stderr, r.stderr[-2000:]
    assert set(_unreachable(inst)) == both

    # a killed up leaves them (nothing may leave the host meanwhile); down removes them
    inst.kill()
    assert set(_unreachable(inst)) == both
    rep = inst.down()
    assert rep["rc"] == 0 and not rep["leftovers"] and not rep["errors"], rep
    assert _unreachable(inst) == {}

    # started again (same CA, same tag): installed again, removed by a clean stop
    inst.start()
    assert set(_unreachable(inst)) == both
    assert inst.stop() == 0
    assert _unreachable(inst) == {}
