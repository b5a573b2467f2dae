"""How the fixtures next to this file were made: a loopback HTTP server that answers just
enough (``/version``, legacy discovery, OpenAPI v3) for real kubectl v1.32 to POST objects,
and saves every request body it receives. Run:

    .venv/bin/python tests/unit/data/protobuf/capture.py OUTDIR

It runs the ``kubectl create …`` commands below against it and writes ``OUTDIR/<n>-<resource>.bin``
(raw body) and ``.json`` (path, content type, and the same command's
``--dry-run=client -o json`` output as ``expected``: kubectl's own JSON rendering of the
object it sent). Not used by tests; its output is committed as the fixtures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from controlplane.apiserver.discovery import documents as discovery
from controlplane.apiserver.discovery import openapi
from controlplane.apiserver.strategy.builtins import builtin_registry

REG = builtin_registry()
_last_resource = [""]
COMMANDS = [
    ["create", "namespace", "team-a"],
    ["create", "configmap", "cfg", "-n", "default", "--from-literal=a=1", "--from-literal=b.txt=two"],
    ["create", "secret", "generic", "sec", "-n", "default", "--from-literal=user=admin",
     "--from-literal=pw=s3cr3t"],
    ["create", "secret", "docker-registry", "reg", "-n", "default", "--docker-server=r.io",
     "--docker-username=u", "--docker-password=p"],
    ["create", "deployment", "web", "-n", "default", "--image=nginx:1.27", "--replicas=3",
     "--port=8080"],
    ["create", "deployment", "multi", "-n", "default", "--image=busybox", "--image=nginx"],
    ["create", "configmap", "bin", "-n", "default", "--from-file=blob.bin={BLOB}"],
    ["create", "service", "clusterip", "svc", "-n", "default", "--tcp=80:8080", "--tcp=443:https"],
    ["create", "service", "nodeport", "np", "-n", "default", "--tcp=80:8080", "--node-port=30080"],
    ["create", "serviceaccount", "robot", "-n", "default"],
    ["create", "job", "once", "-n", "default", "--image=busybox", "--", "sh", "-c", "echo hi"],
    ["create", "deployment", "zero", "-n", "default", "--image=busybox", "--replicas=0"],
    ["run", "pod1", "-n", "default", "--image=nginx", "--port=80", "--env=A=1", "--labels=x=y"],
    ["create", "priorityclass", "high", "--value=1000", "--description=important"],
    ["create", "poddisruptionbudget", "pdb1", "-n", "default", "--selector=app=x", "--min-available=50%"],
    ["create", "cronjob", "tick", "-n", "default", "--image=busybox", "--schedule=*/1 * * * *", "--", "date"],
    ["create", "cronjob", "nightly", "-n", "default", "--image=busybox", "--schedule=@daily", "--restart=Never"],
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    counter = [0]
    current: list[list[str]] = [[]]

    class H(BaseHTTPRequestHandler):
        def _send(self, code: int, obj: object) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            p = self.path.split("?")[0]
            if p == "/version":
                return self._send(200, discovery.VERSION_INFO)
            if p == "/api":
                return self._send(200, discovery.api_versions())
            if p == "/apis":
                return self._send(200, discovery.api_group_list(REG))
            if p == "/openapi/v3":
                return self._send(200, openapi.v3_root(REG))
            if p.startswith("/openapi/v3/"):
                parts = p.split("/")[3:]
                g, v = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
                return self._send(200, openapi.v3_group_version(REG, g, v))
            parts = p.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                return self._send(200, discovery.api_resource_list(REG, "", parts[1]))
            if parts[0] == "apis" and len(parts) == 3:
                return self._send(200, discovery.api_resource_list(REG, parts[1], parts[2]))
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                             "reason": "NotFound", "message": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            counter[0] += 1
            _last_resource[0] = self.path.split('?')[0].rstrip('/').rsplit('/', 1)[-1]
            name = f"{counter[0]}-{_last_resource[0]}"
            (out / f"{name}.bin").write_bytes(body)
            (out / f"{name}.json").write_text(json.dumps(
                {"path": self.path, "content_type": self.headers.get("Content-Type"),
                 "command": current[0]}, indent=1))
            self._send(201, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    with tempfile.TemporaryDirectory() as tmp:
        kc = Path(tmp) / "kubeconfig"
        kc.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
users: [{{name: u, user: {{}}}}]
current-context: c
""")
        blob = Path(tmp) / "blob.bin"
        blob.write_bytes(bytes(range(256)))
        for cmd in COMMANDS:
            cmd = [c.replace("{BLOB}", str(blob)) for c in cmd]
            base = ["kubectl", "--kubeconfig", str(kc), "--cache-dir", f"{tmp}/cache"]
            current[0] = cmd
            r = subprocess.run([*base, *cmd], capture_output=True, text=True, timeout=60)
            sys.stdout.write(f"{' '.join(cmd)} -> {r.returncode} {r.stderr.strip()[:200]}\n")
            dry = subprocess.run([*base, *cmd[:1], "--dry-run=client", "-o", "json", *cmd[1:]],
                                 capture_output=True, text=True, timeout=60)
            meta = out / f"{counter[0]}-{_last_resource[0]}.json"
            if meta.exists():
                d = json.loads(meta.read_text())
                d["expected"] = json.loads(dry.stdout)
                meta.write_text(json.dumps(d, indent=1, sort_keys=True))
    srv.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
