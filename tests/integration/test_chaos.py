"""Issue 15 item 6, the short CI version of ``controlplane chaos`` (the long soak is
``controlplane chaos --duration 600``, figures in the README): a three-server cluster under mixed
load (client and kubectl writes, a rolling Deployment, open watches) while the etcd leader, an
apiserver and the agent are killed at random; the checker must find nothing lost, duplicated or
reordered and the Deployment converged. (Leader kills of the controller-manager and scheduler take a
Lease expiry each, 15 s: the long run has them.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.apiserver import REPO
from tests.fixtures.network import allocate_test_net

pytestmark = pytest.mark.integration


def test_chaos_short_run_loses_nothing(tmp_path):
    # this worker's own CIDRs: the servers run without an agent and route neither, so CIDRs that
    # `up --pick-cidrs` chose could be handed to another test before the third server starts
    net = allocate_test_net()
    r = subprocess.run([sys.executable, "-m", "controlplane", "chaos", "--duration", "25", "--fault-interval", "3",
                        "--faults", "etcd-leader,apiserver,agent", "--seed", "7", "--data-dir", str(tmp_path / "w"),
                        "--cluster-cidr", net.cluster_cidr, "--service-cidr", net.service_cidr],
                       cwd=REPO, capture_output=True, text=True, timeout=540)
    assert r.stdout.strip(), r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps(res))
    ops, watch = res["operations"], res["watch"]
    assert ops["acknowledged"] > 100 and ops["lost"] == 0 and ops["conflicts"] == 0, ops
    assert watch["lost"] == watch["duplicated"] == watch["reordered"] == watch["stateMismatch"] == 0, watch
    assert watch["caughtUp"] == watch["watchers"] == 3
    assert res["faults"]["injected"] >= 2, res["faults"]
    for kind, rec in res["recoveryS"].items():
        assert rec["unrecovered"] == 0, (kind, rec)
        assert rec["n"] == res["faults"]["byKind"][kind]
    assert res["deployment"]["converged"] and res["deployment"]["orphanPods"] == 0, res["deployment"]
    assert res["ok"] is True and r.returncode == 0
    # nothing of the run is left running
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "w")], capture_output=True, text=True).stdout.split()
    assert not left, left
