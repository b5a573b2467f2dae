"""The three ways the kubelet serves node statistics, from one ``stats.NodeSample`` (pure):

- ``summary(sample)``: ``/stats/summary``, the Summary API (``stats/v1alpha1``): node CPU,
  memory, network, fs, image fs, rlimit; per pod CPU, memory, network, volumes,
  ephemeral-storage, process count, and per container CPU, memory, rootfs and logs.
- ``resource_metrics(sample)``: ``/metrics/resource`` with the kubelet's names and HELP texts
  (``node_cpu_usage_seconds_total``, ``node_memory_working_set_bytes``,
  ``pod_cpu_usage_seconds_total``, ``pod_memory_working_set_bytes``,
  ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
  ``container_start_time_seconds``, ``*_swap_usage_bytes``, ``resource_scrape_error``), each
  sample with its millisecond timestamp: what metrics-server scrapes.
- ``cadvisor_metrics(sample)``: ``/metrics/cadvisor`` with cAdvisor's names and labels
  (``container``, ``id`` = cgroup, ``image``, ``name``, ``namespace``, ``pod``; network series
  on the pod's cgroup with ``container=""`` and an ``interface`` label): CPU user/system/throttling,
  memory usage/working set/RSS/cache/page faults, OOM events, threads/processes, network
  bytes/packets/errors/drops, writable-layer bytes, start times, machine totals.

The simulated nodes write ``resource_metrics`` for their synthetic samples too.
"""

from __future__ import annotations

from typing import Any

from controlplane.agent.stats import NodeSample, PodSample, Usage
from controlplane.machinery.promtext import escape, family, fmt_value, sample as line
from controlplane.machinery.timestamps import rfc3339
from controlplane.runtime.netstats import NetDev


# --- Summary API ---------------------------------------------------------------------------

def _cpu(u: Usage) -> dict[str, Any]:
    d: dict[str, Any] = {"time": rfc3339(u.ts), "usageCoreNanoSeconds": u.cpu_ns}
    if u.nano_cores is not None:
        d["usageNanoCores"] = u.nano_cores
    return d


def _mem(u: Usage, available: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"time": rfc3339(u.ts), "usageBytes": u.usage_bytes, "workingSetBytes": u.working_set_bytes,
                         "rssBytes": u.rss_bytes, "pageFaults": u.page_faults, "majorPageFaults": u.major_page_faults}
    if available is not None:
        d["availableBytes"] = available
    elif u.memory_limit_bytes is not None:
        d["availableBytes"] = max(0, u.memory_limit_bytes - u.working_set_bytes)
    return d


def _iface(name: str, n: NetDev) -> dict[str, Any]:
    return {"name": name, "rxBytes": n.rx_bytes, "rxErrors": n.rx_errors, "txBytes": n.tx_bytes, "txErrors": n.tx_errors}


def _net(ts: float, ifaces: dict[str, NetDev], default: str | None) -> dict[str, Any] | None:
    real = {k: v for k, v in ifaces.items() if k != "lo"}
    if not real:
        return None
    name = default if default in real else ("eth0" if "eth0" in real else sorted(real)[0])
    return {"time": rfc3339(ts), **_iface(name, real[name]), "interfaces": [_iface(k, v) for k, v in sorted(real.items())]}


def _fs(ts: float, cap: int, avail: int, used: int, inodes: int | None = None, free: int | None = None,
        inodes_used: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"time": rfc3339(ts), "availableBytes": avail, "capacityBytes": cap, "usedBytes": used}
    if inodes is not None:
        d["inodes"] = inodes
    if free is not None:
        d["inodesFree"] = free
    if inodes_used is not None:
        d["inodesUsed"] = inodes_used
    return d


def _pod_summary(p: PodSample, n: NodeSample) -> dict[str, Any]:
    ts = p.usage.ts
    fs = n.fs
    containers = []
    for c in p.containers:
        cd: dict[str, Any] = {"name": c.name, "startTime": rfc3339(c.start_time), "cpu": _cpu(c.usage),
                              "memory": _mem(c.usage), "swap": {"time": rfc3339(c.usage.ts), "swapUsageBytes": 0}}
        if c.rootfs_bytes is not None:
            cd["rootfs"] = _fs(ts, fs.capacity_bytes, fs.available_bytes, c.rootfs_bytes, fs.inodes, fs.inodes_free,
                               c.rootfs_inodes)
        if c.logs_bytes is not None:
            cd["logs"] = _fs(ts, fs.capacity_bytes, fs.available_bytes, c.logs_bytes, fs.inodes, fs.inodes_free,
                             c.logs_inodes)
        containers.append(cd)
    d: dict[str, Any] = {
        "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
        "startTime": rfc3339(p.start_time), "containers": containers,
        "cpu": _cpu(p.usage), "memory": _mem(p.usage),
        "volume": [{**_fs(ts, v.capacity_bytes, v.available_bytes, v.used_bytes, inodes_used=v.inodes_used),
                    "name": v.name} for v in p.volumes],
        "ephemeral-storage": _fs(ts, fs.capacity_bytes, fs.available_bytes, p.ephemeral_bytes),
        "process_stats": {"process_count": p.processes},
        "swap": {"time": rfc3339(ts), "swapUsageBytes": 0},
    }
    net = _net(ts, p.network, "eth0")
    if net is not None:
        d["network"] = net
    return d


def summary(n: NodeSample) -> dict[str, Any]:
    ts = n.usage.ts
    node: dict[str, Any] = {
        "nodeName": n.node, "startTime": rfc3339(n.start_time), "cpu": _cpu(n.usage),
        "memory": _mem(n.usage, n.memory_available_bytes),
        "fs": _fs(ts, n.fs.capacity_bytes, n.fs.available_bytes, n.fs.used_bytes, n.fs.inodes, n.fs.inodes_free,
                  n.fs.inodes - n.fs.inodes_free),
        "runtime": {"imageFs": _fs(ts, n.imagefs.capacity_bytes, n.imagefs.available_bytes, n.imagefs.used_bytes,
                                   n.imagefs.inodes, n.imagefs.inodes_free, n.imagefs.inodes - n.imagefs.inodes_free)},
        "rlimit": {"time": rfc3339(ts), "maxpid": n.max_pid, "curproc": n.processes},
        "swap": {"time": rfc3339(ts), "swapUsageBytes": 0},
    }
    net = _net(ts, n.network, n.default_interface)
    if net is not None:
        node["network"] = net
    return {"node": node, "pods": [_pod_summary(p, n) for p in n.pods]}


# --- /metrics/resource -------------------------------------------------------------------------

RESOURCE_HELP = {
    "container_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds"),
    "container_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the container in bytes"),
    "container_start_time_seconds": ("gauge", "[STABLE] Start time of the container since unix epoch in seconds"),
    "container_swap_usage_bytes": ("gauge", "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems"),
    "node_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the node in bytes"),
    "node_swap_usage_bytes": ("gauge", "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems"),
    "pod_cpu_usage_seconds_total": ("counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds"),
    "pod_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the pod in bytes"),
    "pod_swap_usage_bytes": ("gauge", "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems"),
    "resource_scrape_error": ("gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise"),
}


def _ms(ts: float) -> int:
    return int(ts * 1000)


def resource_metrics(n: NodeSample, scrape_error: bool = False) -> str:
    """The page, built with one label string per container and pod (simulated nodes serve
    thousands of these per resolution period)."""
    fam: dict[str, list[str]] = {k: [] for k in RESOURCE_HELP}
    c_cpu, c_ws, c_start, c_swap = (fam["container_cpu_usage_seconds_total"], fam["container_memory_working_set_bytes"],
                                    fam["container_start_time_seconds"], fam["container_swap_usage_bytes"])
    p_cpu, p_ws, p_swap = fam["pod_cpu_usage_seconds_total"], fam["pod_memory_working_set_bytes"], fam["pod_swap_usage_bytes"]
    for p in n.pods:
        plab = f'namespace="{escape(p.namespace)}",pod="{escape(p.name)}"'
        for c in p.containers:
            lab = f'container="{escape(c.name)}",{plab}'
            t = _ms(c.usage.ts)
            c_cpu.append(f"container_cpu_usage_seconds_total{{{lab}}} {fmt_value(c.usage.cpu_ns / 1e9)} {t}")
            c_ws.append(f"container_memory_working_set_bytes{{{lab}}} {c.usage.working_set_bytes} {t}")
            c_start.append(f"container_start_time_seconds{{{lab}}} {fmt_value(round(c.start_time, 3))} {_ms(c.start_time)}")
            c_swap.append(f"container_swap_usage_bytes{{{lab}}} 0 {t}")
        t = _ms(p.usage.ts)
        p_cpu.append(f"pod_cpu_usage_seconds_total{{{plab}}} {fmt_value(p.usage.cpu_ns / 1e9)} {t}")
        p_ws.append(f"pod_memory_working_set_bytes{{{plab}}} {p.usage.working_set_bytes} {t}")
        p_swap.append(f"pod_swap_usage_bytes{{{plab}}} 0 {t}")
    t = _ms(n.usage.ts)
    fam["node_cpu_usage_seconds_total"].append(line("node_cpu_usage_seconds_total", None, n.usage.cpu_ns / 1e9, t))
    fam["node_memory_working_set_bytes"].append(line("node_memory_working_set_bytes", None, n.usage.working_set_bytes, t))
    fam["node_swap_usage_bytes"].append(line("node_swap_usage_bytes", None, 0, t))
    fam["resource_scrape_error"].append(line("resource_scrape_error", None, 1 if scrape_error else 0))
    return "".join(family(k, RESOURCE_HELP[k][0], RESOURCE_HELP[k][1], fam[k]) for k in sorted(fam))


# --- /metrics/cadvisor -------------------------------------------------------------------------

CADVISOR_HELP = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in seconds."),
    "container_cpu_user_seconds_total": ("counter", "Cumulative user cpu time consumed in seconds."),
    "container_cpu_system_seconds_total": ("counter", "Cumulative system cpu time consumed in seconds."),
    "container_cpu_cfs_throttled_periods_total": ("counter", "Number of throttled period intervals."),
    "container_cpu_cfs_throttled_seconds_total": ("counter", "Total time duration the container has been throttled."),
    "container_memory_usage_bytes": ("gauge", "Current memory usage in bytes, including all memory regardless of when it was accessed"),
    "container_memory_working_set_bytes": ("gauge", "Current working set in bytes."),
    "container_memory_rss": ("gauge", "Size of RSS in bytes."),
    "container_memory_cache": ("gauge", "Number of bytes of page cache memory."),
    "container_memory_failures_total": ("counter", "Cumulative count of memory allocation failures."),
    "container_oom_events_total": ("counter", "Count of out of memory events observed for the container"),
    "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
    "container_threads": ("gauge", "Number of threads running inside the container"),
    "container_processes": ("gauge", "Number of processes running inside the container."),
    "container_network_receive_bytes_total": ("counter", "Cumulative count of bytes received"),
    "container_network_receive_packets_total": ("counter", "Cumulative count of packets received"),
    "container_network_receive_errors_total": ("counter", "Cumulative count of errors encountered while receiving"),
    "container_network_receive_packets_dropped_total": ("counter", "Cumulative count of packets dropped while receiving"),
    "container_network_transmit_bytes_total": ("counter", "Cumulative count of bytes transmitted"),
    "container_network_transmit_packets_total": ("counter", "Cumulative count of packets transmitted"),
    "container_network_transmit_errors_total": ("counter", "Cumulative count of errors encountered while transmitting"),
    "container_network_transmit_packets_dropped_total": ("counter", "Cumulative count of packets dropped while transmitting"),
    "container_fs_usage_bytes": ("gauge", "Number of bytes that are consumed by the container on this filesystem."),
    "container_fs_inodes_total": ("gauge", "Number of Inodes"),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds."),
    "container_last_seen": ("gauge", "Last time a container was seen by the exporter"),
    "machine_cpu_cores": ("gauge", "Number of logical CPU cores."),
    "machine_memory_bytes": ("gauge", "Amount of memory installed on the machine."),
}
_NET = (("receive_bytes", "rx_bytes"), ("receive_packets", "rx_packets"), ("receive_errors", "rx_errors"),
        ("receive_packets_dropped", "rx_dropped"), ("transmit_bytes", "tx_bytes"), ("transmit_packets", "tx_packets"),
        ("transmit_errors", "tx_errors"), ("transmit_packets_dropped", "tx_dropped"))


def cadvisor_metrics(n: NodeSample, pod_cgroup: Any = None, container_cgroup: Any = None) -> str:
    """``pod_cgroup(uid)`` / ``container_cgroup(uid, cid)`` give the ``id`` label (the cgroup
    path); without them the id is ``/pod<uid>`` and ``/pod<uid>/<cid>``."""
    fam: dict[str, list[str]] = {k: [] for k in CADVISOR_HELP}

    def add(name: str, lab: dict[str, str], v: float, t: int) -> None:
        fam[name].append(line(name, lab, v, t))

    def usage(lab: dict[str, str], u: Usage) -> None:
        t = _ms(u.ts)
        add("container_cpu_usage_seconds_total", lab, u.cpu_ns / 1e9, t)
        add("container_cpu_user_seconds_total", lab, u.cpu_user_ns / 1e9, t)
        add("container_cpu_system_seconds_total", lab, u.cpu_system_ns / 1e9, t)
        add("container_cpu_cfs_throttled_periods_total", lab, u.throttled_periods, t)
        add("container_cpu_cfs_throttled_seconds_total", lab, u.throttled_ns / 1e9, t)
        add("container_memory_usage_bytes", lab, u.usage_bytes, t)
        add("container_memory_working_set_bytes", lab, u.working_set_bytes, t)
        add("container_memory_rss", lab, u.rss_bytes, t)
        add("container_memory_cache", lab, u.cache_bytes, t)
        for ftype, v in (("pgfault", u.page_faults), ("pgmajfault", u.major_page_faults)):
            add("container_memory_failures_total", {**lab, "failure_type": ftype, "scope": "container"}, v, t)
        add("container_oom_events_total", lab, u.oom_events, t)
        add("container_spec_memory_limit_bytes", lab, u.memory_limit_bytes or 0, t)
        add("container_threads", lab, u.pids, t)
        add("container_last_seen", lab, round(u.ts), t)

    root = {"container": "", "id": "/", "image": "", "name": "", "namespace": "", "pod": ""}
    usage(root, n.usage)
    t = _ms(n.usage.ts)
    for p in n.pods:
        pid = pod_cgroup(p.uid) if pod_cgroup else f"/pod{p.uid}"
        plab = {"container": "", "id": pid, "image": "", "name": "", "namespace": p.namespace, "pod": p.name}
        usage(plab, p.usage)
        pt = _ms(p.usage.ts)
        add("container_processes", plab, p.processes, pt)
        add("container_start_time_seconds", plab, round(p.start_time, 3), pt)
        for iface, nd in sorted(p.network.items()):
            if iface == "lo":
                continue
            for metric, attr in _NET:
                add(f"container_network_{metric}_total", {**plab, "interface": iface}, getattr(nd, attr), pt)
        for c in p.containers:
            cid = container_cgroup(p.uid, c.cid) if container_cgroup else f"{pid}/{c.cid}"
            clab = {"container": c.name, "id": cid, "image": c.image, "name": c.cid, "namespace": p.namespace,
                    "pod": p.name}
            usage(clab, c.usage)
            ct = _ms(c.usage.ts)
            add("container_start_time_seconds", clab, round(c.start_time, 3), ct)
            if c.rootfs_bytes is not None:
                add("container_fs_usage_bytes", {**clab, "device": "rootfs"}, c.rootfs_bytes, ct)
                add("container_fs_inodes_total", {**clab, "device": "rootfs"}, c.rootfs_inodes or 0, ct)
    fam["machine_cpu_cores"].append(line("machine_cpu_cores", None, n.cpu_cores, t))
    fam["machine_memory_bytes"].append(line("machine_memory_bytes", None, n.memory_capacity_bytes, t))
    return "".join(family(k, CADVISOR_HELP[k][0], CADVISOR_HELP[k][1], fam[k]) for k in sorted(fam) if fam[k])
