"""Issue 15 item 6, API fuzzing, short CI version: ``controlplane fuzz`` (PyPI ``schemathesis``
over the served OpenAPI) sends generated valid and invalid requests to every operation of a
private apiserver; none may be answered with a 5xx. The long run (``--cases 10000``) is a command
whose figures are in the README."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.apiserver import REPO

pytestmark = pytest.mark.integration


def test_every_operation_fuzzed_without_a_5xx(fresh_apiserver):
    r = subprocess.run([sys.executable, "-m", "controlplane", "fuzz", "--kubeconfig", str(fresh_apiserver.kubeconfig),
                        "--cases", "1", "--seed", "1"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.stdout.strip(), r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in res.items() if k != "5xxAnswers"}))
    assert res["operations"] > 150 and res["cases"] >= res["operations"], res
    assert res["5xx"] == 0, json.dumps(res["5xxAnswers"], indent=1)
    assert r.returncode == 0
