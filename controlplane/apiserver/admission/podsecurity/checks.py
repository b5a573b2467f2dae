"""The Pod Security Standards checks (``k8s.io/pod-security-admission/policy``), each returning
Kubernetes' ``ForbiddenReason`` and ``ForbiddenDetail`` word for word, and the evaluator that
runs the checks of a level (baseline; restricted = baseline without the checks it overrides,
plus its own) at a version, in Kubernetes' order: baseline checks first, then restricted ones,
each group sorted by check ID. Pure functions over pod specs; the plugin is ``plugin.py``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

Obj = dict[str, Any]
Result = tuple[str, str] | None  # (reason, detail) when forbidden

LATEST = (1, 32)


def _plural(one: str, many: str, n: int) -> str:
    return one if n == 1 else many


def _quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def _sc(c: Obj) -> Obj:
    sc = c.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _pod_sc(spec: Obj) -> Obj:
    sc = spec.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


# ---------------------------------------------------------------------------------- baseline

def host_namespaces(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    return ("host namespaces", ", ".join(bad)) if bad else None


def privileged(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    if bad:
        return "privileged", f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must not set " \
                             "securityContext.privileged=true"
    return None


_CAPS_BASELINE = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                  "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def capabilities_baseline(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        add = ((_sc(c).get("capabilities") or {}).get("add")) or []
        wrong = [str(x) for x in add if str(x) not in _CAPS_BASELINE]
        if wrong:
            bad.append(c.get("name", ""))
            caps.update(wrong)
    if bad:
        return "non-default capabilities", f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must not " \
                                           f"include {_quote(sorted(caps))} in securityContext.capabilities.add"
    return None


def host_path_volumes(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad = [str(vol.get("name", "")) for vol in spec.get("volumes") or [] if isinstance(vol, dict) and vol.get("hostPath")]
    return ("hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_quote(bad)}") if bad else None


def host_ports(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad: list[str] = []
    ports: set[str] = set()
    for c in _containers(spec):
        used = [str(p["hostPort"]) for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports.update(used)
    if bad:
        return "hostPort", f"{_plural('container', 'containers', len(bad))} {_quote(bad)} " \
                           f"{_plural('uses', 'use', len(bad))} {_plural('hostPort', 'hostPorts', len(ports))} " \
                           f"{', '.join(sorted(ports))}"
    return None


_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_ok(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def app_armor(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    setters: list[str] = []
    values: set[str] = set()
    pt = _pod_sc(spec).get("appArmorProfile")
    if isinstance(pt, dict) and pt.get("type") == "Unconfined":
        setters.append("pod")
        values.add("Unconfined")
    names = []
    for c in _containers(spec):
        ct = _sc(c).get("appArmorProfile")
        if isinstance(ct, dict) and ct.get("type") == "Unconfined":
            names.append(c.get("name", ""))
            values.add("Unconfined")
    if names:
        setters.append(f"{_plural('container', 'containers', len(names))} {_quote(names)}")
    bad_values = sorted(values)
    ann = sorted(f'{k}="{val}"' for k, val in (meta.get("annotations") or {}).items()
                 if k.startswith(_APPARMOR_PREFIX) and not _apparmor_ok(str(val)))
    if ann:
        bad_values += ann
        setters.append(_plural("annotation", "annotations", len(ann)))
    if setters:
        return _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad_values)), \
            f"{' and '.join(setters)} must not set AppArmor profile type to {_quote(bad_values)}"
    return None


def _selinux_types(v: tuple[int, int]) -> set[str]:
    types = {"", "container_t", "container_init_t", "container_kvm_t"}
    if v >= (1, 31):
        types.add("container_engine_t")
    return types


def selinux_options(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    allowed = _selinux_types(v)
    setters: list[str] = []
    bad_types: set[str] = set()
    set_user = set_role = False

    def check(opts: Any) -> bool:
        nonlocal set_user, set_role
        if not isinstance(opts, dict):
            return True
        ok = True
        if str(opts.get("type", "")) not in allowed:
            bad_types.add(str(opts.get("type", "")))
            ok = False
        if opts.get("user"):
            set_user, ok = True, False
        if opts.get("role"):
            set_role, ok = True, False
        return ok

    if not check(_pod_sc(spec).get("seLinuxOptions")):
        setters.append("pod")
    names = [c.get("name", "") for c in _containers(spec) if not check(_sc(c).get("seLinuxOptions"))]
    if names:
        setters.append(f"{_plural('container', 'containers', len(names))} {_quote(names)}")
    if not setters:
        return None
    data: list[str] = []
    if bad_types:
        data.append(f"{_plural('type', 'types', len(bad_types))} {_quote(sorted(bad_types))}")
    if set_user:
        data.append("user may not be set")
    if set_role:
        data.append("role may not be set")
    return "seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}"


def proc_mount(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad: list[str] = []
    values: list[str] = []
    for c in _containers(spec):
        pm = _sc(c).get("procMount")
        if pm not in (None, "", "Default"):
            bad.append(c.get("name", ""))
            values.append(str(pm))
    if bad:
        return "procMount", f"{_plural('container', 'containers', len(bad))} {_quote(bad)} must not set " \
                            f"securityContext.procMount to {_quote(values)}"
    return None


def _seccomp(profile: Any) -> str | None:
    return str(profile.get("type", "")) if isinstance(profile, dict) else None


def seccomp_baseline(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    setters: list[str] = []
    t = _seccomp(_pod_sc(spec).get("seccompProfile"))
    if t is not None and t == "Unconfined":
        setters.append(f'pod must not set securityContext.seccompProfile.type to "{t}"')
    names, types = [], []
    for c in _containers(spec):
        ct = _seccomp(_sc(c).get("seccompProfile"))
        if ct is not None and ct == "Unconfined":
            names.append(c.get("name", ""))
            types.append(ct)
    if names:
        setters.append(f"{_plural('container', 'containers', len(names))} {_quote(names)} must not set "
                       f"securityContext.seccompProfile.type to {_quote(types)}")
    return ("seccompProfile", "; ".join(setters)) if setters else None


def _allowed_sysctls(v: tuple[int, int]) -> set[str]:
    s = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
         "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
    if v >= (1, 27):
        s.add("net.ipv4.ip_local_reserved_ports")
    if v >= (1, 29):
        s.update({"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                  "net.ipv4.tcp_keepalive_probes"})
    return s


def sysctls(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    allowed = _allowed_sysctls(v)
    bad = [str(s.get("name", "")) for s in _pod_sc(spec).get("sysctls") or []
           if isinstance(s, dict) and str(s.get("name", "")) not in allowed]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def windows_host_process(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    pod = ((_pod_sc(spec).get("windowsOptions") or {}).get("hostProcess")) is True
    names = [c.get("name", "") for c in _containers(spec) if ((_sc(c).get("windowsOptions") or {}).get("hostProcess")) is True]
    if not pod and not names:
        return None
    who = []
    if pod:
        who.append("pod")
    if names:
        who.append(f"{_plural('container', 'containers', len(names))} {_quote(names)}")
    return "hostProcess", f"{' and '.join(who)} must not set securityContext.windowsOptions.hostProcess=true"


# -------------------------------------------------------------------------------- restricted

def allow_privilege_escalation(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    if v >= (1, 25) and _windows(spec):
        return None
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", f"{_plural('container', 'containers', len(bad))} {_quote(bad)} " \
                                                    "must set securityContext.allowPrivilegeEscalation=false"
    return None


def capabilities_restricted(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    if v >= (1, 25) and _windows(spec):
        return None
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        cap = _sc(c).get("capabilities")
        if not isinstance(cap, dict):
            missing_drop.append(c.get("name", ""))
            continue
        if "ALL" not in [str(x) for x in cap.get("drop") or []]:
            missing_drop.append(c.get("name", ""))
        wrong = [str(x) for x in cap.get("add") or [] if str(x) != "NET_BIND_SERVICE"]
        if wrong:
            adding.append(c.get("name", ""))
            caps.update(wrong)
    details = []
    if missing_drop:
        details.append(f"{_plural('container', 'containers', len(missing_drop))} {_quote(missing_drop)} must set "
                       'securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_plural('container', 'containers', len(adding))} {_quote(adding)} must not include "
                       f"{_quote(sorted(caps))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


_RESTRICTED_VOLUME_OK = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                         "projected", "secret")
_VOLUME_TYPES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
                 "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
                 "azureDisk", "portworxVolume", "photonPersistentDisk", "scaleIO", "storageos", "image")


def restricted_volumes(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    bad: list[str] = []
    types: set[str] = set()
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        keys = [k for k in vol if k != "name"]
        if not keys or any(k in _RESTRICTED_VOLUME_OK for k in keys):
            continue
        bad.append(str(vol.get("name", "")))
        types.add(next((t for t in _VOLUME_TYPES if t in vol), "unknown"))
    if bad:
        return "restricted volume types", f"{_plural('volume', 'volumes', len(bad))} {_quote(bad)} " \
                                          f"{_plural('uses', 'use', len(bad))} " \
                                          f"{_plural('restricted volume type', 'restricted volume types', len(types))} " \
                                          f"{_quote(sorted(types))}"
    return None


def run_as_non_root(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    if v >= (1, 25) and _windows(spec):
        return None
    setters: list[str] = []
    pod_ok = False
    pv = _pod_sc(spec).get("runAsNonRoot")
    if pv is not None:
        if not pv:
            setters.append("pod")
        else:
            pod_ok = True
    explicit, implicit = [], []
    for c in _containers(spec):
        cv = _sc(c).get("runAsNonRoot")
        if cv is not None:
            if not cv:
                explicit.append(c.get("name", ""))
        elif not pod_ok:
            implicit.append(c.get("name", ""))
    if explicit:
        setters.append(f"{_plural('container', 'containers', len(explicit))} {_quote(explicit)}")
    if setters:
        return "runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
    if implicit:
        return "runAsNonRoot != true", f"pod or {_plural('container', 'containers', len(implicit))} " \
                                       f"{_quote(implicit)} must set securityContext.runAsNonRoot=true"
    return None


def run_as_user(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    if v >= (1, 25) and _windows(spec):
        return None
    setters = ["pod"] if _pod_sc(spec).get("runAsUser") == 0 else []
    names = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if names:
        setters.append(f"{_plural('container', 'containers', len(names))} {_quote(names)}")
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def seccomp_restricted(meta: Obj, spec: Obj, v: tuple[int, int]) -> Result:
    if v >= (1, 25) and _windows(spec):
        return None
    ok = ("RuntimeDefault", "Localhost")
    setters: list[str] = []
    pod_set = False
    t = _seccomp(_pod_sc(spec).get("seccompProfile"))
    if t is not None:
        if t not in ok:
            setters.append(f'pod must not set securityContext.seccompProfile.type to "{t}"')
        else:
            pod_set = True
    explicit, types, implicit = [], [], []
    for c in _containers(spec):
        ct = _seccomp(_sc(c).get("seccompProfile"))
        if ct is not None:
            if ct not in ok:
                explicit.append(c.get("name", ""))
                types.append(ct)
        elif not pod_set:
            implicit.append(c.get("name", ""))
    if explicit:
        setters.append(f"{_plural('container', 'containers', len(explicit))} {_quote(explicit)} must not set "
                       f"securityContext.seccompProfile.type to {_quote(types)}")
    if implicit:
        setters.append(f"pod or {_plural('container', 'containers', len(implicit))} {_quote(implicit)} must set "
                       'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return ("seccompProfile", "; ".join(setters)) if setters else None


Check = Callable[[Obj, Obj, tuple[int, int]], Result]

# (ID, level, check, minimum version, IDs it overrides)
CHECKS: tuple[tuple[str, str, Check, tuple[int, int], tuple[str, ...]], ...] = (
    ("appArmorProfile", "baseline", app_armor, (1, 0), ()),
    ("capabilities_baseline", "baseline", capabilities_baseline, (1, 0), ()),
    ("hostNamespaces", "baseline", host_namespaces, (1, 0), ()),
    ("hostPathVolumes", "baseline", host_path_volumes, (1, 0), ()),
    ("hostPorts", "baseline", host_ports, (1, 0), ()),
    ("privileged", "baseline", privileged, (1, 0), ()),
    ("procMount", "baseline", proc_mount, (1, 0), ()),
    ("seLinuxOptions", "baseline", selinux_options, (1, 0), ()),
    ("seccompProfile_baseline", "baseline", seccomp_baseline, (1, 19), ()),
    ("sysctls", "baseline", sysctls, (1, 0), ()),
    ("windowsHostProcess", "baseline", windows_host_process, (1, 0), ()),
    ("allowPrivilegeEscalation", "restricted", allow_privilege_escalation, (1, 8), ()),
    ("capabilities_restricted", "restricted", capabilities_restricted, (1, 22), ("capabilities_baseline",)),
    ("restrictedVolumes", "restricted", restricted_volumes, (1, 0), ("hostPathVolumes",)),
    ("runAsNonRoot", "restricted", run_as_non_root, (1, 0), ()),
    ("runAsUser", "restricted", run_as_user, (1, 23), ()),
    ("seccompProfile_restricted", "restricted", seccomp_restricted, (1, 19), ("seccompProfile_baseline",)),
)
_ORDER = sorted(c for c in CHECKS if c[1] == "baseline") + sorted(c for c in CHECKS if c[1] == "restricted")


def evaluate(level: str, version: tuple[int, int], meta: Obj, spec: Obj) -> list[tuple[str, str]]:
    """The (reason, detail) of every failed check of ``level`` at ``version``."""
    if level == "privileged":
        return []
    active = [c for c in _ORDER if c[1] == "baseline" or level == "restricted"]
    overridden = {o for c in active if c[3] <= version for o in c[4]} if level == "restricted" else set()
    out: list[tuple[str, str]] = []
    for cid, _, check, minimum, _ in active:
        if cid in overridden or version < minimum:
            continue
        r = check(meta, spec, version)
        if r is not None:
            out.append(r)
    return out
