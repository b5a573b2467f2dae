"""Turning a pod spec into what the runtime needs: environment (literal values with ``$(VAR)``
expansion, ConfigMap/Secret key refs, ``envFrom``, the downward API), command/args, volumes
(emptyDir, configMap, secret, hostPath under an allowed root, projected, downwardAPI,
persistentVolumeClaim: the bound PersistentVolume's path; ``fsGroup`` ownership of the ones the
agent makes: ``volume_ownership.py``; the memory-backed ones on a tmpfs sized by
``memory_volumes.py``), mounts (``subPath``, ``subPathExpr`` expanded from the
container's environment) and cgroup limits. Reads ConfigMaps/Secrets through ``controlplane.client``.
Errors are ``ConfigError`` (reason ``CreateContainerConfigError``). Caller: ``pod_worker.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path

from controlplane.client.resources import CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SECRETS
from controlplane.agent.memory_volumes import MEMORY_BACKED_API_DATA, memory_backed_size
from controlplane.agent.security import fs_user_from
from controlplane.agent.tokens import TokenError, TokenManager
from controlplane.agent.volume_ownership import RO_MASK, set_volume_ownership
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.machinery.quantity import bytes_, cpu_millis
from controlplane.runtime.interface import Mount

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
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


def field_ref(pod: dict, path: str, node: str, pod_ip: str | None, host_ip: str | None = None) -> str:
    md, spec, st = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"), "metadata.uid": md.get("uid"),
        "spec.nodeName": spec.get("nodeName") or node, "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip or st.get("podIP"), "status.hostIP": host_ip or st.get("hostIP") or "127.0.0.1",
    }
    if path in ("status.podIPs", "status.hostIPs"):  # the kubelet gives the primary one
        return simple["status.podIP" if path == "status.podIPs" else "status.hostIP"] or ""
    if path in simple:
        return simple[path] or ""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):
        return "\n".join(f'{k}="{v}"' for k, v in sorted((md.get(path.split(".")[1]) or {}).items()))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resource_ref(container: dict, ref: dict, allocatable: dict[str, str] | None = None) -> str:
    """A ``resourceFieldRef`` value, rounded up in units of its ``divisor``; a limit the
    container does not set is the node's allocatable (the kubelet's
    ``MergeContainerResourceLimits``), a request it does not set is 0."""
    res = container.get("resources") or {}
    kind, _, name = ref.get("resource", "").partition(".")
    val = (res.get(kind) or {}).get(name)
    if val is None and kind == "limits":
        val = (allocatable or {}).get(name)
    if val is None:
        return "0"
    div = ref.get("divisor") or "1"
    # a zero divisor (what the apiserver stores for an unset one) is 1, as ``ExtractContainerResourceValue``
    if name == "cpu":
        return str(-(-cpu_millis(str(val)) // (cpu_millis(str(div)) or 1000)))
    return str(-(-bytes_(str(val)) // max(1, bytes_(str(div)))))


def _mode(value: object, default: int = 0o644) -> int:
    return int(value) & 0o777 if isinstance(value, int) and not isinstance(value, bool) else default


# The volume directory's own mode, as the kubelet's wrapped emptyDir leaves it: a configMap's
# on disk (0777), the memory-backed ones with the tmpfs's sticky 1777 (``drwxrwxrwt``)
_ROOT_MODE = {"configmap": 0o777, "secret": 0o1777, "downwardAPI": 0o1777, "projected": 0o1777}
# the volume kinds the kubelet always mounts read-only (API data)
_API_DATA = ("configMap", "secret", "downwardAPI", "projected")


class PodConfig:
    def __init__(self, client: RestClient, pod: dict, node: str, pod_ip: str | None, tokens: TokenManager | None = None,
                 allocatable: dict[str, str] | None = None, host_ip: str | None = None) -> None:
        self.client = client
        self.allocatable = allocatable or {}
        self.host_ip = host_ip
        self.tokens = tokens
        self.pod = pod
        self.ns = pod["metadata"].get("namespace") or "default"
        self.node = node
        self.pod_ip = pod_ip
        self._cache: dict[tuple[str, str], dict | None] = {}
        # (reason, message) of the Warning Events the caller records (skipped envFrom keys)
        self.warnings: list[tuple[str, str]] = []
        # the messages of the volumes a refresh could not bring up to date (``prepare_volumes``)
        self.failed_mounts: list[str] = []

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
                    invalid = []
                    for k, v in (data or {}).items():
                        if not _ENV_NAME.fullmatch(prefix + k):  # the kubelet's IsEnvVarName
                            invalid.append(prefix + k)
                            continue
                        env[prefix + k] = v.decode(errors="replace")
                    if invalid:
                        self.warnings.append(("InvalidEnvironmentVariableNames",
                                              f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom "
                                              f"{'configMap' if kind == 'configmap' else 'secret'} "
                                              f"{self.ns}/{ref['name']} were skipped since they are considered "
                                              "invalid environment variable names."))
        for e in container.get("env") or []:
            name = e["name"]
            if "valueFrom" not in e:
                env[name] = expand(e.get("value") or "", {**svc, **env})
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[name] = field_ref(self.pod, vf["fieldRef"]["fieldPath"], self.node, self.pod_ip, self.host_ip)
            elif "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"]
                # the named container's (``containerResourceRuntimeValue``), else this one's
                target = self._container(ref["containerName"]) if ref.get("containerName") else container
                env[name] = resource_ref(target, ref, self.allocatable)
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
        mounts them once; the file volumes each time they are written). The first failure
        raises, unless ``refresh`` (the periodic remount of API data, as the kubelet's
        reconciler): then every volume is tried, one that fails keeps what it had and its
        ``MountVolume.SetUp failed ...`` message goes to ``failed_mounts``."""
        out: dict[str, Path] = {}
        psc = (self.pod.get("spec") or {}).get("securityContext") or {}
        fs_group = int(psc["fsGroup"]) if psc.get("fsGroup") is not None else None
        policy = psc.get("fsGroupChangePolicy")
        for v in (self.pod.get("spec") or {}).get("volumes") or []:
            try:
                await self._prepare_volume(v, vol_dir, host_path_root, owned_root, refresh, fs_group, policy, out)
            except ConfigError as e:
                err = e
                if "persistentVolumeClaim" not in v and e.reason == "CreateContainerConfigError":
                    err = ConfigError(f'MountVolume.SetUp failed for volume "{v["name"]}" : {e.message}',
                                      reason="ContainerCreating")
                if not refresh:
                    raise err from e
                self.failed_mounts.append(err.message)
        return out

    async def _prepare_volume(self, v: dict, vol_dir: Path, host_path_root: Path | None, owned_root: Path | None,
                              refresh: bool, fs_group: int | None, policy: str | None, out: dict[str, Path]) -> None:
        name = v["name"]
        target = vol_dir / name
        if "hostPath" in v:
            out[name] = self._host_path(v["hostPath"], host_path_root)
            return
        if "persistentVolumeClaim" in v:
            out[name] = path = await self._claim_path(v["persistentVolumeClaim"] or {})
            if fs_group is not None and not refresh and owned_root is not None and owned_root in path.parents:
                ro = bool((v["persistentVolumeClaim"] or {}).get("readOnly"))
                await asyncio.to_thread(set_volume_ownership, path, fs_group, policy, ro)
            return
        if any(k in v for k in MEMORY_BACKED_API_DATA) and not os.path.ismount(target):
            # as the kubelet's memory-backed wrapper: secrets never reach the node's disk
            target.mkdir(parents=True, exist_ok=True)
            await mount_tmpfs(target, self._memory_size(None))
        if "emptyDir" in v:
            if not target.exists():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, 0o777)  # the kubelet's emptyDir mode, whatever the umask
            ed = v["emptyDir"] or {}
            if ed.get("medium") == "Memory" and not os.path.ismount(target):
                await mount_tmpfs(target, self._memory_size(ed.get("sizeLimit")))
            if fs_group is not None and not refresh:
                await asyncio.to_thread(set_volume_ownership, target, fs_group, policy, False)
        elif "configMap" in v or "secret" in v:
            src = v.get("configMap") or v.get("secret")
            kind = "configmap" if "configMap" in v else "secret"
            name_ = src.get("name") or src.get("secretName", "")
            data = await self._data(kind, name_, bool(src.get("optional")))
            mode = _mode(src.get("defaultMode"))
            await asyncio.to_thread(write_atomic, target, self._select(data or {}, src.get("items"), mode, kind,
                                                                          bool(src.get("optional"))), _ROOT_MODE[kind],
                                    None, None, fs_group)
        elif "downwardAPI" in v:
            mode = _mode(v["downwardAPI"].get("defaultMode"))
            await asyncio.to_thread(write_atomic, target, self._downward(v["downwardAPI"].get("items") or [], mode),
                                    _ROOT_MODE["downwardAPI"], None, None, fs_group)
        elif "projected" in v:
            mode = _mode(v["projected"].get("defaultMode"))
            files: dict[str, tuple[bytes, int]] = {}
            owners: dict[str, int] = {}
            fs_user = fs_user_from(self.pod)
            for s in v["projected"].get("sources") or []:
                if "configMap" in s or "secret" in s:
                    src = s.get("configMap") or s.get("secret")
                    kind = "configmap" if "configMap" in s else "secret"
                    data = await self._data(kind, src.get("name", ""), bool(src.get("optional"))) or {}
                    files.update(self._select(data, src.get("items"), mode, kind, bool(src.get("optional"))))
                elif "downwardAPI" in s:
                    files.update(self._downward(s["downwardAPI"].get("items") or [], mode))
                elif "serviceAccountToken" in s:
                    # the kubelet's projected plugin: 0600 whenever an fsUser or fsGroup is
                    # known (the fsGroup walk below then makes it 0640), the file owned by the
                    # fsUser (every container's runAsUser, when they agree)
                    path = s["serviceAccountToken"].get("path", "token")
                    files[path] = (await self._sa_token(s["serviceAccountToken"]),
                                   0o600 if fs_user is not None or fs_group is not None else mode)
                    if fs_user is not None:
                        owners[path] = fs_user
            await asyncio.to_thread(write_atomic, target, files, _ROOT_MODE["projected"], None, owners, fs_group)
        else:
            raise ConfigError(f"volume {name!r}: unsupported volume type", reason="CreateContainerConfigError")
        if fs_group is not None and "emptyDir" not in v:
            # configMap, secret, downwardAPI, projected: read-only kinds, walked whatever the
            # fsGroupChangePolicy (their plugins pass none, as each write makes new files)
            await asyncio.to_thread(set_volume_ownership, target, fs_group, None, True)
        out[name] = target

    def _memory_size(self, size_limit: object) -> int | None:
        """The tmpfs size of a memory-backed volume of this pod (``memory_volumes``)."""
        return memory_backed_size(self.pod.get("spec") or {}, self.allocatable.get("memory"), size_limit)

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
        if kind == "DirectoryOrCreate" and not path.exists():
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o644)
        failed = host_path_type_error(path, kind)
        if failed:
            raise ConfigError(f"hostPath type check failed: {path} {failed}")
        return path

    def _downward(self, items: list[dict], default_mode: int) -> dict[str, tuple[bytes, int]]:
        """A downwardAPI volume's files: ``fieldRef`` and ``resourceFieldRef`` (of the named
        container, with its ``divisor``), each with its own ``mode`` or the volume's."""
        out: dict[str, tuple[bytes, int]] = {}
        for it in items:
            if "fieldRef" in it:
                value = field_ref(self.pod, it["fieldRef"]["fieldPath"], self.node, self.pod_ip, self.host_ip)
            elif "resourceFieldRef" in it:
                ref = it["resourceFieldRef"]
                value = resource_ref(self._container(ref.get("containerName") or ""), ref, self.allocatable)
            else:
                continue
            out[it["path"]] = (value.encode(), _mode(it.get("mode"), default_mode))
        return out

    def _container(self, name: str) -> dict:
        """The container a ``resourceFieldRef`` names, as the kubelet's ``findContainerInPod``
        (regular containers, then init containers; its error)."""
        spec = self.pod.get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if isinstance(c, dict) and c.get("name") == name:
                return c
        raise ConfigError(f"container {name} not found")

    @staticmethod
    def _select(data: dict[str, bytes], items: list[dict] | None, default_mode: int = 0o644,
                kind: str = "configmap", optional: bool = False) -> dict[str, tuple[bytes, int]]:
        """The files of a configMap/secret source: every key, or the ``items`` (key → path,
        each with its own ``mode`` or the volume's ``defaultMode``); an item whose key is
        missing is an error (the kubelet's words) unless the source is ``optional``."""
        if not items:
            return {k: (v, default_mode) for k, v in data.items()}
        out = {}
        for it in items:
            if it["key"] not in data:
                if optional:
                    continue
                raise ConfigError(f'configmap references non-existent config key: {it["key"]}' if kind == "configmap"
                                  else f'references non-existent secret key: {it["key"]}')
            out[it.get("path") or it["key"]] = (data[it["key"]], _mode(it.get("mode"), default_mode))
        return out

    def mounts(self, container: dict, volumes: dict[str, Path], env: list[str] | None = None) -> list[Mount]:
        """The container's volume mounts; ``subPathExpr`` is expanded from ``env`` (its
        environment, ``NAME=value`` entries) as the kubelet's ``ExpandContainerVolumeMounts``."""
        out = []
        # a claim mounted ``readOnly`` in the pod's volume is read-only in every container
        # and API data (configMap, secret, downwardAPI, projected) always is, as the kubelet mounts it
        ro_claims = {v.get("name") for v in (self.pod.get("spec") or {}).get("volumes") or []
                     if isinstance(v, dict) and ((v.get("persistentVolumeClaim") or {}).get("readOnly")
                                                 or any(k in v for k in _API_DATA))}
        for vm in container.get("volumeMounts") or []:
            src = volumes.get(vm["name"])
            if src is None:
                raise ConfigError(f'volume "{vm["name"]}" not found in the pod spec')
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand_sub_path(vm["subPathExpr"], env or [])
            if sub:
                root, src = src, Path(os.path.normpath(src / check_sub_path(sub)))
                if src.is_symlink() and root.name == vm["name"] and (root / DATA_DIR).is_symlink():
                    # an API data volume's file: bind the file of the current payload, which
                    # later updates replace (a subPath mount does not follow them)
                    real = Path(os.path.realpath(src))
                    if Path(os.path.realpath(root)) in real.parents:
                        src = real
                if not src.exists():
                    # with the volume root's mode (so an fsGroup volume's sub-path is group
                    # writable too), as the kubelet's SafeMakeDir
                    mode = stat.S_IMODE(os.stat(root).st_mode) if root.is_dir() else 0o755
                    src.mkdir(parents=True, exist_ok=True)
                    os.chmod(src, mode)
            out.append(Mount(vm["mountPath"], str(src), readonly=bool(vm.get("readOnly")) or vm["name"] in ro_claims))
        return out


_HOST_PATH_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"), "DirectoryOrCreate": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"), "FileOrCreate": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"), "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def host_path_type_error(path: Path, kind: str) -> str | None:
    """The kubelet's ``checkType`` of a hostPath volume (after ``*OrCreate`` made it): the end
    of ``hostPath type check failed: <path> ...``, or None when it passes (``""`` checks nothing)."""
    check = _HOST_PATH_CHECKS.get(kind)
    if check is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return check[1]
    return None if check[0](mode) else check[1]


DATA_DIR = "..data"


def write_atomic(target: Path, payload: dict[str, tuple[bytes, int]], root_mode: int = 0o777,
                 now: datetime | None = None, owners: dict[str, int] | None = None,
                 fs_group: int | None = None) -> bool:
    """The kubelet's ``AtomicWriter``: the files live in a timestamped directory
    ``..2006_01_02_15_04_05.<random>`` (0755), ``..data`` is a symlink to it, and each
    top-level path is a symlink ``name -> ..data/name``. A new payload is written to a new
    directory and ``..data`` renamed over at once, so a reader never sees half an update, and
    a ``subPath`` bind mount of a file keeps the old file. ``owners`` gives the uid of the
    files that have one (a ``FileProjection``'s ``FsUser``: ``os.Chown(path, uid, -1)``; the
    others stay the agent's). With ``fs_group`` the new directory gets the group (read-only
    kinds: ``volume_ownership``) before ``..data`` points to it (the writer's ``setPerms``), so
    the files compare as the walk leaves them. Returns whether it wrote.
    Hand-written: no library does this layout."""
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, root_mode)
    clean: dict[str, tuple[bytes, int]] = {}
    uids: dict[str, int] = {}
    for rel, (content, mode) in payload.items():
        norm = os.path.normpath(rel)
        if os.path.isabs(rel) or norm == "." or norm.split("/")[0] in ("..", "") or norm.startswith(".."):
            raise ConfigError(f"volume item path {rel!r} escapes the volume")
        clean[norm] = (content, mode)
        uids[norm] = (owners or {}).get(rel, os.geteuid())
    data_link = target / DATA_DIR
    old_dir = os.readlink(data_link) if data_link.is_symlink() else None
    if fs_group is not None:  # what the fsGroup walk makes of each mode
        clean = {rel: (content, mode | RO_MASK) for rel, (content, mode) in clean.items()}
    if old_dir is not None and _payload_unchanged(target / old_dir, clean, uids):
        _link_user_visible(target, clean)
        return False
    stamp = (now or datetime.now(timezone.utc)).strftime("..%Y_%m_%d_%H_%M_%S.")
    while True:  # Go's os.MkdirTemp: the pattern and a random decimal number
        ts_dir = target / f"{stamp}{secrets.randbelow(1 << 32)}"
        try:
            ts_dir.mkdir()
            break
        except FileExistsError:
            continue
    os.chmod(ts_dir, 0o755)
    for rel, (content, mode) in clean.items():
        p = ts_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
        if uids[rel] != os.geteuid():
            os.chown(p, uids[rel], -1)
    set_volume_ownership(ts_dir, fs_group, None, True)
    tmp_link = target / (DATA_DIR + "_tmp")
    tmp_link.unlink(missing_ok=True)
    os.symlink(ts_dir.name, tmp_link)
    os.replace(tmp_link, data_link)
    _link_user_visible(target, clean)
    if old_dir is not None and old_dir != ts_dir.name:
        shutil.rmtree(target / old_dir, ignore_errors=True)
    return True


def _payload_unchanged(ts_dir: Path, payload: dict[str, tuple[bytes, int]], uids: dict[str, int]) -> bool:
    have: set[str] = set()
    for dirpath, _, files in os.walk(ts_dir):
        for f in files:
            have.add(os.path.relpath(os.path.join(dirpath, f), ts_dir))
    if have != set(payload):
        return False
    for rel, (content, mode) in payload.items():
        p = ts_dir / rel
        try:
            st = p.lstat()
            if stat.S_IMODE(st.st_mode) != mode or st.st_uid != uids[rel] or p.read_bytes() != content:
                return False
        except OSError:
            return False
    return True


def _link_user_visible(target: Path, payload: dict[str, tuple[bytes, int]]) -> None:
    """``name -> ..data/name`` for each top-level path; anything else (a stale link, a plain
    file of the in-place layout an older agent wrote) goes."""
    tops = {rel.split("/")[0] for rel in payload}
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        p = target / entry
        want = f"{DATA_DIR}/{entry}"
        if entry in tops and p.is_symlink() and os.readlink(p) == want:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    for top in tops:
        p = target / top
        if not p.is_symlink():
            os.symlink(f"{DATA_DIR}/{top}", p)
    for entry in os.listdir(target):  # timestamped directories an interrupted write left
        if entry.startswith("..") and entry not in (DATA_DIR, os.readlink(target / DATA_DIR)):
            p = target / entry
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


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


async def mount_tmpfs(target: Path, size: int | None) -> None:
    """A memory-backed volume (emptyDir ``medium: Memory``, and the secret, downwardAPI and
    projected ones): a tmpfs of ``size`` bytes (``memory_volumes.memory_backed_size``; None:
    the kernel's default), unmounted with the pod."""
    opts = "mode=1777" + (f",size={size}" if size else "")
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
