"""Turning a pod spec into what the runtime needs: environment (literal values with ``$(VAR)``
expansion, ConfigMap/Secret key refs, ``envFrom``, the downward API), command/args, volumes
(emptyDir, configMap, secret, hostPath under an allowed root, projected, downwardAPI,
persistentVolumeClaim: the bound PersistentVolume's path; ``fsGroup`` ownership of the ones the
agent makes: ``volume_ownership.py``), mounts (``subPath``, ``subPathExpr`` expanded from the
container's environment) and cgroup limits. Reads ConfigMaps/Secrets through ``controlplane.client``.
Errors are ``ConfigError`` (reason ``CreateContainerConfigError``). Caller: ``pod_worker.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import stat
from pathlib import Path

from controlplane.client.resources import CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SECRETS
from controlplane.agent.tokens import TokenError, TokenManager
from controlplane.agent.volume_ownership import set_volume_ownership
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.machinery.quantity import bytes_, cpu_millis
from controlplane.runtime.interface import Mount

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class ConfigError(Exception):
    def __init__(self, message: str, reason: str = "CreateContainerConfigError") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known vars replaced, ``$$`` escapes, unknown kept."""
    def rep(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(rep, s)


def field_ref(pod: dict, path: str, node: str, pod_ip: str | None) -> str:
    md, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"), "metadata.uid": md.get("uid"),
        "spec.nodeName": spec.get("nodeName") or node, "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip or st.get("podIP"), "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return simple[path] or ""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        return "\n".join(f'{k}="{v}"' for k, v in sorted((md.get(path.split(".")[1]) or {}).items()))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resource_ref(container: dict, ref: dict) -> str:
    res = container.get("resources") or {}
    kind, _, name = ref.get("resource", "").partition(".")
    val = (res.get(kind) or {}).get(name)
    if val is None:
        return "0"
    div = ref.get("divisor") or "1"
    if name == "cpu":
        return str(-(-cpu_millis(str(val)) // cpu_millis(str(div))))
    return str(-(-bytes_(str(val)) // max(1, bytes_(str(div)))))


class PodConfig:
    def __init__(self, client: RestClient, pod: dict, node: str, pod_ip: str | None, tokens: TokenManager | None = None) -> None:
        self.client = client
        self.tokens = tokens
        self.pod = pod
        self.ns = pod["metadata"].get("namespace") or "default"
        self.node = node
        self.pod_ip = pod_ip
        self._cache: dict[tuple[str, str], dict | None] = {}

    async def _get(self, kind: str, name: str, optional: bool) -> dict | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                self._cache[key] = await self.client.get(CONFIGMAPS if kind == "configmap" else SECRETS, name, self.ns)
            except ApiStatusError as e:
                if not e.not_found:
                    raise ConfigError(f"reading {kind} {name!r}: {e.message}") from e
                self._cache[key] = None
        obj = self._cache[key]
        if obj is None and not optional:
            raise ConfigError(f'{kind} "{name}" not found')
        return obj

    async def _data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        obj = await self._get(kind, name, optional)
        if obj is None:
            return None
        if kind == "secret":
            out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            out.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
            return out
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    async def env(self, container: dict, service_env: dict[str, str] | None = None) -> list[str]:
        """The container's environment; ``service_env`` (``service_env.service_env``) comes
        last and never overrides, but ``$(VAR)`` may refer to it (the kubelet's order)."""
        svc = service_env or {}
        env: dict[str, str] = {}
        for src in container.get("envFrom") or []:
            prefix = src.get("prefix") or ""
            for kind, ref in (("configmap", src.get("configMapRef")), ("secret", src.get("secretRef"))):
                if ref:
                    data = await self._data(kind, ref["name"], bool(ref.get("optional")))
                    for k, v in (data or {}).items():
                        env[prefix + k] = v.decode(errors="replace")
        for e in container.get("env") or []:
            name = e["name"]
            if "valueFrom" not in e:
                env[name] = expand(e.get("value") or "", {**svc, **env})
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[name] = field_ref(self.pod, vf["fieldRef"]["fieldPath"], self.node, self.pod_ip)
            elif "resourceFieldRef" in vf:
                env[name] = resource_ref(container, vf["resourceFieldRef"])
            else:
                kind = "configmap" if "configMapKeyRef" in vf else "secret"
                ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef") or {}
                optional = bool(ref.get("optional"))
                data = await self._data(kind, ref.get("name", ""), optional)
                if data is None:
                    continue
                if ref.get("key") not in data:
                    if optional:
                        continue
                    raise ConfigError(f'couldn\'t find key {ref.get("key")} in {"ConfigMap" if kind == "configmap" else "Secret"} {self.ns}/{ref.get("name")}')
                env[name] = data[ref["key"]].decode(errors="replace")
        for k, v in svc.items():
            env.setdefault(k, v)
        return [f"{k}={v}" for k, v in env.items()]

    @staticmethod
    def command(container: dict, image_config: dict, env: list[str]) -> list[str]:
        envd = dict(e.split("=", 1) for e in env)
        entry = container.get("command")
        args = container.get("args")
        if entry is None:
            entry = image_config.get("Entrypoint") or []
            if args is None:
                args = image_config.get("Cmd") or []
        argv = [expand(a, envd) for a in list(entry) + list(args or [])]
        if not argv:
            raise ConfigError("no command specified", reason="CreateContainerError")
        return argv

    # -- volumes ---------------------------------------------------------------------------
    async def prepare_volumes(self, vol_dir: Path, host_path_root: Path | None, owned_root: Path | None = None,
                              refresh: bool = False) -> dict[str, Path]:
        """Materialise every volume of the pod; returns name → host path. With the pod's
        ``fsGroup`` the volumes the agent makes get its group (emptyDir and the claims under
        ``owned_root``, the agent's local-path storage, only when first set up, as the kubelet
        mounts them once; the file volumes each time they are written)."""
        out: dict[str, Path] = {}
        psc = (self.pod.get("spec") or {}).get("securityContext") or {}
        fs_group = int(psc["fsGroup"]) if psc.get("fsGroup") is not None else None
        policy = psc.get("fsGroupChangePolicy")
        for v in (self.pod.get("spec") or {}).get("volumes") or []:
            name = v["name"]
            target = vol_dir / name
            if "hostPath" in v:
                out[name] = self._host_path(v["hostPath"], host_path_root)
                continue
            if "persistentVolumeClaim" in v:
                out[name] = path = await self._claim_path(v["persistentVolumeClaim"] or {})
                if fs_group is not None and not refresh and owned_root is not None and owned_root in path.parents:
                    ro = bool((v["persistentVolumeClaim"] or {}).get("readOnly"))
                    await asyncio.to_thread(set_volume_ownership, path, fs_group, policy, ro)
                continue
            if "emptyDir" in v:
                if not target.exists():
                    target.mkdir(parents=True, exist_ok=True)
                    os.chmod(target, 0o777)  # the kubelet's emptyDir mode, whatever the umask
                ed = v["emptyDir"] or {}
                if ed.get("medium") == "Memory" and not os.path.ismount(target):
                    await mount_tmpfs(target, ed.get("sizeLimit"))
                if fs_group is not None and not refresh:
                    await asyncio.to_thread(set_volume_ownership, target, fs_group, policy, False)
            elif "configMap" in v or "secret" in v:
                src = v.get("configMap") or v.get("secret")
                kind = "configmap" if "configMap" in v else "secret"
                name_ = src.get("name") or src.get("secretName", "")
                data = await self._data(kind, name_, bool(src.get("optional")))
                self._write_files(target, data or {}, src.get("items"), src.get("defaultMode", 0o644))
            elif "downwardAPI" in v:
                self._write_files(target, self._downward(v["downwardAPI"].get("items") or []), None,
                                  v["downwardAPI"].get("defaultMode", 0o644))
            elif "projected" in v:
                files: dict[str, bytes] = {}
                for s in v["projected"].get("sources") or []:
                    if "configMap" in s or "secret" in s:
                        src = s.get("configMap") or s.get("secret")
                        kind = "configmap" if "configMap" in s else "secret"
                        data = await self._data(kind, src.get("name", ""), bool(src.get("optional"))) or {}
                        files.update(self._select(data, src.get("items")))
                    elif "downwardAPI" in s:
                        files.update(self._downward(s["downwardAPI"].get("items") or []))
                    elif "serviceAccountToken" in s:
                        files[s["serviceAccountToken"].get("path", "token")] = await self._sa_token(s["serviceAccountToken"])
                self._write_files(target, files, None, v["projected"].get("defaultMode", 0o644))
            else:
                raise ConfigError(f"volume {name!r}: unsupported volume type", reason="CreateContainerConfigError")
            if fs_group is not None:  # configMap, secret, downwardAPI, projected: read-only kinds
                await asyncio.to_thread(set_volume_ownership, target, fs_group, policy, True)
            out[name] = target
        return out

    async def _sa_token(self, source: dict) -> bytes:
        """A token bound to this pod (TokenRequest), refreshed by the token manager."""
        if self.tokens is None:
            raise ConfigError("serviceAccountToken volumes need the agent's token manager")
        try:
            return (await self.tokens.get(self.pod, source)).encode()
        except (ApiStatusError, TokenError) as e:
            raise ConfigError(f"failed to fetch token: {e}", reason="CreateContainerConfigError") from e

    async def _claim_path(self, source: dict) -> Path:
        """A ``persistentVolumeClaim`` volume: the claim's bound PersistentVolume, its
        ``hostPath`` or ``local`` path on this node (the kubelet's volume manager waits, with
        the pod ContainerCreating, until the claim is bound). A volume's path is the
        administrator's (or the local-path provisioner's) choice: not limited to the hostPath
        root pods may name."""
        name = source.get("claimName") or ""
        try:
            claim = await self.client.get(PERSISTENTVOLUMECLAIMS, name, self.ns)
        except ApiStatusError as e:
            if e.not_found:
                raise ConfigError(f'persistentvolumeclaim "{name}" not found', reason="ContainerCreating") from e
            raise ConfigError(f'error reading persistentvolumeclaim "{name}": {e}', reason="ContainerCreating") from e
        vn = (claim.get("spec") or {}).get("volumeName") or ""
        phase = (claim.get("status") or {}).get("phase") or ""
        if phase != "Bound" or not vn:
            raise ConfigError(f"PVC {self.ns}/{name} has non-bound phase ({json.dumps(phase)}) or empty "
                              f"pvc.Spec.VolumeName ({json.dumps(vn)})", reason="ContainerCreating")
        try:
            pv = await self.client.get(PERSISTENTVOLUMES, vn)
        except ApiStatusError as e:
            raise ConfigError(f'error reading persistentvolume "{vn}": {e}', reason="ContainerCreating") from e
        spec = pv.get("spec") or {}
        if isinstance(spec.get("hostPath"), dict):
            hp = spec["hostPath"]
            path = Path(os.path.normpath(hp.get("path", "")))
            kind = hp.get("type") or ""
        elif isinstance(spec.get("local"), dict):
            path, kind = Path(os.path.normpath(spec["local"].get("path", ""))), "Directory"
        else:
            raise ConfigError(f'persistentvolume "{vn}": unsupported volume source', reason="ContainerCreating")
        if kind == "DirectoryOrCreate":
            await asyncio.to_thread(path.mkdir, 0o777, True, True)
        elif not await asyncio.to_thread(path.exists):
            raise ConfigError(f'persistentvolume "{vn}": path {path} does not exist on the node',
                              reason="ContainerCreating")
        return path

    def _host_path(self, hp: dict, root: Path | None) -> Path:
        path = Path(os.path.normpath(hp.get("path", "")))
        if root is None or not (path == root or root in path.parents):
            raise ConfigError(f'hostPath "{path}" is outside the allowed root {root}', reason="CreateContainerConfigError")
        kind = hp.get("type") or ""
        if kind in ("DirectoryOrCreate",) and not path.exists():
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        elif kind in ("Directory", "File") and not path.exists():
            raise ConfigError(f'hostPath type check failed: {path} does not exist')
        return path

    def _downward(self, items: list[dict]) -> dict[str, bytes]:
        out = {}
        for it in items:
            if "fieldRef" in it:
                out[it["path"]] = field_ref(self.pod, it["fieldRef"]["fieldPath"], self.node, self.pod_ip).encode()
        return out

    @staticmethod
    def _select(data: dict[str, bytes], items: list[dict] | None) -> dict[str, bytes]:
        if not items:
            return dict(data)
        out = {}
        for it in items:
            if it["key"] not in data:
                raise ConfigError(f'configmap/secret key "{it["key"]}" not found')
            out[it.get("path") or it["key"]] = data[it["key"]]
        return out

    def _write_files(self, target: Path, data: dict[str, bytes], items: list[dict] | None, mode: int) -> None:
        """Write the files in place (each atomically) and drop stale ones: the directory keeps
        its inode, so containers that bind-mount it see updates."""
        target.mkdir(parents=True, exist_ok=True)
        wanted: set[Path] = set()
        for rel, content in self._select(data, items).items():
            p = Path(os.path.normpath(target / rel))
            if target not in p.parents:
                raise ConfigError(f"volume item path {rel!r} escapes the volume")
            p.parent.mkdir(parents=True, exist_ok=True)
            wanted.add(p)
            try:
                if p.read_bytes() == content:
                    continue
            except OSError:
                pass
            tmp = p.with_name(f".{p.name}.tmp")
            tmp.write_bytes(content)
            os.chmod(tmp, mode)
            os.replace(tmp, p)
        for dirpath, _, files in os.walk(target):
            for f in files:
                fp = Path(dirpath) / f
                if fp not in wanted:
                    fp.unlink(missing_ok=True)

    def mounts(self, container: dict, volumes: dict[str, Path], env: list[str] | None = None) -> list[Mount]:
        """The container's volume mounts; ``subPathExpr`` is expanded from ``env`` (its
        environment, ``NAME=value`` entries) as the kubelet's ``ExpandContainerVolumeMounts``."""
        out = []
        # a claim mounted ``readOnly`` in the pod's volume is read-only in every container
        ro_claims = {v.get("name") for v in (self.pod.get("spec") or {}).get("volumes") or []
                     if isinstance(v, dict) and (v.get("persistentVolumeClaim") or {}).get("readOnly")}
        for vm in container.get("volumeMounts") or []:
            src = volumes.get(vm["name"])
            if src is None:
                raise ConfigError(f'volume "{vm["name"]}" not found in the pod spec')
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand_sub_path(vm["subPathExpr"], env or [])
            if sub:
                root, src = src, Path(os.path.normpath(src / check_sub_path(sub)))
                if not src.exists():
                    # with the volume root's mode (so an fsGroup volume's sub-path is group
                    # writable too), as the kubelet's SafeMakeDir
                    mode = stat.S_IMODE(os.stat(root).st_mode) if root.is_dir() else 0o755
                    src.mkdir(parents=True, exist_ok=True)
                    os.chmod(src, mode)
            out.append(Mount(vm["mountPath"], str(src), readonly=bool(vm.get("readOnly")) or vm["name"] in ro_claims))
        return out


def expand_sub_path(expr: str, env: list[str]) -> str:
    """``ExpandContainerVolumeMounts``: every ``$(VAR)`` must name a non-empty variable."""
    envd = dict(e.split("=", 1) for e in env if "=" in e)
    missing = sorted({m.group(1) for m in _VAR.finditer(expr) if m.group(1) and not envd.get(m.group(1))})
    if missing:
        raise ConfigError(f"missing value for {', '.join(missing)}")
    return expand(expr, envd)


def check_sub_path(sub: str) -> str:
    """The kubelet's checks on a (possibly expanded) sub-path before it is mounted."""
    if sub.startswith("/"):
        raise ConfigError(f"error SubPath `{sub}` must not be an absolute path")
    if ".." in sub.split("/"):
        raise ConfigError(f"unable to provision SubPath `{sub}`: must not contain '..'")
    return sub


async def mount_tmpfs(target: Path, size_limit: str | None) -> None:
    """emptyDir ``medium: Memory``: a tmpfs (bounded by ``sizeLimit``), unmounted with the pod."""
    import asyncio

    opts = "mode=1777" + (f",size={bytes_(str(size_limit))}" if size_limit else "")
    proc = await asyncio.create_subprocess_exec("mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target),
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise ConfigError(f"emptyDir tmpfs on {target}: {err.decode().strip()}")


def limits(container: dict) -> dict[str, int | None]:
    res = container.get("resources") or {}
    lim, req = res.get("limits") or {}, res.get("requests") or {}
    return {
        "memory_limit": bytes_(str(lim["memory"])) if "memory" in lim else None,
        "cpu_limit_milli": cpu_millis(str(lim["cpu"])) if "cpu" in lim else None,
        "cpu_request_milli": cpu_millis(str(req["cpu"])) if "cpu" in req else None,
    }
