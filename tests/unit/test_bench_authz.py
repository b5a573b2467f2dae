"""``controlplane bench authz`` runs and prints its figures (tiny sizes; no timing asserted)."""

import json
import argparse

from controlplane.bench import authz


def test_bench_authz_runs(capsys):
    authz.run(argparse.Namespace(bindings=200, namespaces=20, requests=500, seed=3))
    out = json.loads(capsys.readouterr().out)
    assert out["role_bindings"] == 200 and 0 < out["allowed"] < 500
    assert out["uncached_decisions_per_s"] > 0 and out["cached_decisions_per_s"] > 0
