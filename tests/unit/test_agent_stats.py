"""The node agent's statistics, pure parts: cgroup v1 and v2 files read as cAdvisor reads
them (fake hierarchies on disk), /proc/net/dev parsing, the Prometheus text writer/parser,
and the three output formats (Summary API, /metrics/resource, /metrics/cadvisor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.agent import stats_format
from controlplane.agent.stats import ContainerSample, FsSample, NodeSample, PodSample, Usage, VolumeSample
from controlplane.machinery import promtext
from controlplane.runtime import cgroups
from controlplane.runtime.netstats import NetDev, disk_usage, parse_net_dev


def _write(root: Path, rel: str, files: dict[str, str]) -> None:
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    for k, v in files.items():
        (d / k).write_text(v)


def test_cgroup_v1_reads_like_cadvisor(tmp_path):
    rel = "controlplane/n1/podu1/c1"
    _write(tmp_path, f"memory/{rel}", {
        "memory.stat": "cache 10\nrss 5\ninactive_file 3\ntotal_cache 4096\ntotal_rss 8192\ntotal_inactive_file 1024\n"
                       "total_pgfault 77\ntotal_pgmajfault 2\n",
        "memory.usage_in_bytes": "20480\n", "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"})
    _write(tmp_path, f"cpuacct/{rel}", {"cpuacct.usage": "1500000000\n", "cpuacct.stat": "user 100\nsystem 50\n"})
    _write(tmp_path, f"cpu/{rel}", {"cpu.stat": "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n"})
    _write(tmp_path, f"pids/{rel}", {"pids.current": "7\n", "pids.max": "max\n"})
    st = cgroups.read("/" + rel, root=tmp_path)
    assert st is not None
    assert (st.cpu_usage_ns, st.memory_usage_bytes, st.working_set_bytes, st.rss_bytes) == (1500000000, 20480, 19456, 8192)
    assert (st.page_faults, st.major_page_faults, st.oom_events, st.pids) == (77, 2, 3, 7)
    assert st.memory_limit_bytes is None and st.pids_limit is None
    assert (st.throttled_periods, st.throttled_ns) == (4, 5000)
    assert cgroups.read("/controlplane/gone", root=tmp_path) is None


def test_cgroup_v2_reads_like_cadvisor(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    _write(tmp_path, "cp/pod/c", {
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_throttled 1\nthrottled_usec 30\n",
        "memory.current": "10000\n", "memory.stat": "anon 6000\nfile 3000\ninactive_file 2500\npgfault 9\npgmajfault 1\n",
        "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", "memory.max": "524288\n",
        "pids.current": "3\n", "pids.max": "100\n", "cgroup.procs": "12\n13\n"})
    assert cgroups.is_v2(tmp_path)
    st = cgroups.read("/cp/pod/c", root=tmp_path)
    assert st is not None
    assert (st.cpu_usage_ns, st.cpu_user_ns, st.working_set_bytes, st.rss_bytes) == (2_500_000_000, 2_000_000_000, 7500, 6000)
    assert (st.oom_events, st.pids, st.pids_limit, st.memory_limit_bytes) == (1, 3, 100, 524288)
    assert cgroups.process_count("/cp/pod", root=tmp_path) == 2


@pytest.mark.parametrize("usage,inactive,ws", [(100, 30, 70), (100, 130, 0), (0, 0, 0)])
def test_working_set_is_usage_minus_inactive_file_never_negative(tmp_path, usage, inactive, ws):
    _write(tmp_path, "memory/x", {"memory.usage_in_bytes": str(usage), "memory.stat": f"total_inactive_file {inactive}\n"})
    assert cgroups.read("/x", root=tmp_path).working_set_bytes == ws


def test_net_dev_parsing():
    text = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
            "    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n"
            "  eth0: 5000  40 1 2 0 0 0 0 7000 50 3 4 0 0 0 0\n")
    d = parse_net_dev(text)
    assert d["eth0"] == NetDev(5000, 40, 1, 2, 7000, 50, 3, 4)
    assert d["lo"].rx_bytes == 100


def test_disk_usage_counts_blocks_and_hard_links_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 50_000)
    (tmp_path / "d" / "link").hardlink_to(tmp_path / "a")
    used, inodes = disk_usage(tmp_path)
    assert used >= 150_000 and used < 200_000
    assert inodes == 4  # tmp_path, a, d, b (the hard link counted once)
    assert disk_usage(tmp_path / "missing") == (0, 0)


@pytest.mark.parametrize("labels,value", [
    ({"pod": "p", "namespace": "n"}, 1.5), ({"c": 'quote " back \\ nl \n brace }'}, 0), (None, 12345678.25)])
def test_promtext_round_trip(labels, value):
    text = promtext.family("m_total", "counter", "help", [promtext.sample("m_total", labels, value, 1700000000123)])
    assert list(promtext.parse(text)) == [("m_total", labels or {}, value, 1700000000123)]


@pytest.mark.parametrize("bad", ["m{a=\"x\"", "m{a=\"x\"}", "m abc"])
def test_promtext_rejects_malformed(bad):
    with pytest.raises(ValueError):
        list(promtext.parse(bad))


def _node() -> NodeSample:
    u = lambda cpu, ws, ts=1700000000.0: Usage(ts, cpu_ns=cpu, nano_cores=500_000_000, working_set_bytes=ws,  # noqa: E731
                                               usage_bytes=ws + 100, rss_bytes=ws // 2, pids=4)
    c = ContainerSample("burn", "abc-burn-0", "busybox", 1699999990.0, u(15_000_000_000, 4096), 8192, 3, 512, 2)
    pod = PodSample("default", "burn-1", "uid-1", 1699999989.0, u(15_100_000_000, 8192), [c],
                    {"eth0": NetDev(1000, 10, 0, 0, 2000, 20, 1, 0), "lo": NetDev(5, 1, 0, 0, 5, 1, 0, 0)},
                    [VolumeSample("data", 4096, 1, 10**9, 10**8),
                     VolumeSample("secret", 2048, 3, 2**26, 2**26 - 2048, local_ephemeral=False)], processes=2)
    fs = FsSample(10**10, 6 * 10**9, 4 * 10**9, 1000, 600)
    return NodeSample("n1", 1699990000.0, u(900_000_000_000, 2 * 2**30), 4 * 2**30, 2 * 2**30, fs, fs,
                      {"eth0": NetDev(1, 1, 0, 0, 1, 1, 0, 0)}, "eth0", 4194304, 300, 2, [pod])


def test_summary_shape():
    s = stats_format.summary(_node())
    n = s["node"]
    assert n["nodeName"] == "n1" and n["cpu"]["usageNanoCores"] == 500_000_000
    assert n["memory"]["availableBytes"] == 2 * 2**30 and n["rlimit"] == {"time": n["rlimit"]["time"], "maxpid": 4194304, "curproc": 300}
    p = s["pods"][0]
    assert p["podRef"] == {"name": "burn-1", "namespace": "default", "uid": "uid-1"}
    assert p["containers"][0]["rootfs"]["usedBytes"] == 8192 and p["containers"][0]["logs"]["usedBytes"] == 512
    assert p["network"]["name"] == "eth0" and p["network"]["txErrors"] == 1
    assert [i["name"] for i in p["network"]["interfaces"]] == ["eth0"]
    # a tmpfs volume (secret, projected, downwardAPI, emptyDir medium Memory) is listed with
    # its own capacity, but its bytes are memory: not the pod's ephemeral storage
    assert [v["name"] for v in p["volume"]] == ["data", "secret"] and p["volume"][1]["capacityBytes"] == 2**26
    assert p["ephemeral-storage"]["usedBytes"] == 8192 + 512 + 4096
    assert p["process_stats"] == {"process_count": 2}


def test_resource_metrics_names_labels_and_timestamps():
    text = stats_format.resource_metrics(_node())
    got = {(n, tuple(sorted(lab.items()))): (v, ts) for n, lab, v, ts in promtext.parse(text)}
    key = ("container", "burn"), ("namespace", "default"), ("pod", "burn-1")
    assert got[("container_cpu_usage_seconds_total", key)] == (15.0, 1700000000000)
    assert got[("container_memory_working_set_bytes", key)] == (4096, 1700000000000)
    assert got[("pod_cpu_usage_seconds_total", key[1:])][0] == 15.1
    assert got[("node_cpu_usage_seconds_total", ())][0] == 900.0
    assert got[("node_memory_working_set_bytes", ())][0] == 2 * 2**30
    assert got[("resource_scrape_error", ())] == (0, None)
    assert "# TYPE container_cpu_usage_seconds_total counter" in text


def test_cadvisor_metrics_network_on_pod_cgroup():
    text = stats_format.cadvisor_metrics(_node())
    rows = list(promtext.parse(text))
    rx = [r for r in rows if r[0] == "container_network_receive_bytes_total"]
    assert len(rx) == 1 and rx[0][1]["interface"] == "eth0" and rx[0][1]["container"] == "" and rx[0][2] == 1000
    assert rx[0][1]["id"] == "/poduid-1"
    tx_err = [r for r in rows if r[0] == "container_network_transmit_errors_total"]
    assert tx_err[0][2] == 1
    ws = {r[1]["container"]: r[2] for r in rows if r[0] == "container_memory_working_set_bytes" and r[1]["pod"]}
    assert ws == {"": 8192, "burn": 4096}
    assert any(r[0] == "container_fs_usage_bytes" and r[2] == 8192 for r in rows)
    assert any(r[0] == "machine_cpu_cores" and r[2] == 2 for r in rows)
