"""``controlplane fuzz --kubeconfig F [--cases N]``: every endpoint of the served OpenAPI fuzzed
with PyPI ``schemathesis`` (issue 15 item 6; docs/reliability.md, "API fuzzing").

The apiserver serves OpenAPI v3 per group-version (``/openapi/v3`` lists them, as
kube-apiserver does); the documents are merged into one (paths and ``components.schemas``: the
schema names are global, ``io.k8s.api.core.v1.Pod`` ...) and handed to schemathesis. Each
operation gets ``N / operations`` generated cases (at least one; Hypothesis generates valid and
invalid parameters and bodies from the schemas), sent with the kubeconfig's credentials (an
admin, so authorization does not hide the handlers). Operations that stream (``watch=true``,
``follow``, exec/attach/portforward/proxy) get a short read timeout: a timeout there is the
stream staying open, not a failure.

Prints JSON: operations, cases run, answers by status class, the 5xx answers (target 0, each
with method, path and the body's first bytes) and transport errors. Exit status 1 when any 5xx
was answered. Run it against a throwaway apiserver: it creates and deletes whatever the schema
allows.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

from controlplane.cmd import bootstrap
from controlplane.log import get_logger

log = get_logger(__name__)
COMPONENT = bootstrap.Component("fuzz", metrics_port=False, uvloop=False)
STREAMING = ("/exec", "/attach", "/portforward", "/proxy", "/log")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fuzz", help="fuzz every endpoint of the served OpenAPI with schemathesis (JSON report)")
    p.add_argument("--kubeconfig", type=Path, required=True, help="an admin kubeconfig of a throwaway apiserver")
    p.add_argument("--cases", type=int, default=10_000, help="cases in all (spread over the operations)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--match", default="", help="only operations whose path contains this")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


class Target:
    """Where and as whom requests go (from a kubeconfig with client certificate or token)."""

    def __init__(self, kubeconfig: Path, work: Path) -> None:
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        self.url = cluster["server"].rstrip("/")
        self.verify: Any = True
        if cluster.get("certificate-authority-data"):
            ca = work / "ca.crt"
            ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
            self.verify = str(ca)
        elif cluster.get("certificate-authority"):
            self.verify = cluster["certificate-authority"]
        if cluster.get("insecure-skip-tls-verify"):
            self.verify = False
        self.cert: Any = None
        self.headers: dict[str, str] = {}
        if user.get("client-certificate-data"):
            crt, key = work / "client.crt", work / "client.key"
            crt.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            self.cert = (str(crt), str(key))
        elif user.get("client-certificate"):
            self.cert = (user["client-certificate"], user["client-key"])
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"


def merged_openapi(session: Any, target: Target) -> dict[str, Any]:
    """One OpenAPI v3 document from every group-version's."""
    index = session.get(target.url + "/openapi/v3", timeout=30).json()
    doc: dict[str, Any] = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1"}, "paths": {},
                           "components": {"schemas": {}}}
    for gv, entry in sorted((index.get("paths") or {}).items()):
        url = entry.get("serverRelativeURL") or f"/openapi/v3/{gv}"
        part = session.get(target.url + url, timeout=60).json()
        doc["paths"].update(part.get("paths") or {})
        doc["components"]["schemas"].update((part.get("components") or {}).get("schemas") or {})
        for k, v in ((part.get("components") or {}).get("securitySchemes") or {}).items():
            doc["components"].setdefault("securitySchemes", {})[k] = v
    return doc


def run(target: Target, doc: dict[str, Any], cases: int, seed: int | None, match: str, timeout: float) -> dict:
    import hypothesis
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase

    schema = schemathesis.openapi.from_dict(doc)
    ops = []
    errors_loading = 0
    for result in schema.get_all_operations():
        try:
            op = result.ok()
        except Exception:  # noqa: BLE001 - an operation schemathesis cannot load is counted, not fatal
            errors_loading += 1
            continue
        if match and match not in op.path:
            continue
        ops.append(op)
    per_op = max(1, -(-cases // max(1, len(ops))))  # at least ``cases`` in all
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies would override the kubeconfig's CA
    session.verify = target.verify
    session.cert = target.cert
    session.headers.update(target.headers)
    by_class: dict[str, int] = {}
    fives: list[dict[str, Any]] = []
    transport: dict[str, int] = {}
    total = 0
    t0 = time.monotonic()
    for op in ops:
        streaming = any(op.path.endswith(s) or s + "/" in op.path for s in STREAMING)

        @hypothesis.settings(max_examples=per_op, deadline=None, database=None, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=op.as_strategy())
        def one(case: Any) -> None:
            nonlocal total
            total += 1
            params = dict(case.query or {})
            quick = streaming or str(params.get("watch", "")).lower() in ("true", "1") or params.get("follow")
            try:
                resp = case.call(base_url=target.url, session=session, verify=target.verify, cert=target.cert,
                                 timeout=(5, 2 if quick else timeout), allow_redirects=False)
            except requests.exceptions.ReadTimeout:
                if not quick:
                    transport["timeout"] = transport.get("timeout", 0) + 1
                return
            except requests.exceptions.RequestException as e:
                name = type(e).__name__
                transport[name] = transport.get(name, 0) + 1
                return
            cls = f"{resp.status_code // 100}xx"
            by_class[cls] = by_class.get(cls, 0) + 1
            if resp.status_code >= 500 and len(fives) < 50:
                fives.append({"method": op.method.upper(), "path": case.formatted_path, "query": params,
                              "status": resp.status_code, "body": resp.text[:300]})
            elif resp.status_code >= 500:
                fives.append({"status": resp.status_code})

        if seed is not None:
            one = hypothesis.seed(seed)(one)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                one()
            except hypothesis.errors.Unsatisfiable:
                pass
            except Exception as e:  # noqa: BLE001 - generation trouble of one operation: counted
                key = f"generation:{type(e).__name__}"
                transport[key] = transport.get(key, 0) + 1
    return {"operations": len(ops), "operationsNotLoaded": errors_loading, "casesPerOperation": per_op,
            "cases": total, "answers": dict(sorted(by_class.items())), "5xx": len(fives),
            "5xxAnswers": [f for f in fives if "path" in f][:50], "transportErrors": transport,
            "seconds": round(time.monotonic() - t0, 1)}


async def _main(ctx: bootstrap.Context) -> int:
    import asyncio

    import requests

    a = ctx.args
    with tempfile.TemporaryDirectory(prefix="controlplane-fuzz-") as tmp:
        target = Target(a.kubeconfig, Path(tmp))
        s = requests.Session()
        s.trust_env = False
        s.verify, s.cert = target.verify, target.cert
        s.headers.update(target.headers)
        doc = await asyncio.to_thread(merged_openapi, s, target)
        out = await asyncio.to_thread(run, target, doc, a.cases, a.seed, a.match, a.timeout)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 1 if out["5xx"] else 0
