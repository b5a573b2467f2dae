"""The runc runtime against real runc: exit codes, OOM kills, stop with grace, exec, logs,
hostname, env, limits in the cgroup, the pod network namespace, and cleanup."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path

import pytest

from controlplane.runtime import cgroups
from controlplane.runtime.interface import ContainerSpec, Mount, RuntimeError_, SandboxSpec
from controlplane.runtime.logs import read_log

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="session")]


async def sandbox(rt, name: str = "pod-a"):
    return await rt.create_sandbox(SandboxSpec(uid=str(uuid.uuid4()), name=name, namespace="default", hostname=name))


async def run_to_exit(rt, sb, rootfs: Path, args: list[str], **kw):
    cid = await rt.create_container(sb, ContainerSpec(name=kw.pop("name", "c"), rootfs=rootfs, args=args, **kw))
    await rt.start_container(cid)
    st = await asyncio.wait_for(rt.wait(cid), 20)
    return cid, st


@pytest.mark.parametrize("args,code", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "sleep 10 & kill -9 $!; wait $!"], 137),
])
async def test_exit_codes(runc_runtime, busybox_rootfs, args, code):
    sb = await sandbox(runc_runtime)
    cid, st = await run_to_exit(runc_runtime, sb, busybox_rootfs, args)
    assert st.exit_code == code
    assert st.reason == ("Completed" if code == 0 else "Error")
    assert not st.oom_killed
    await runc_runtime.remove_sandbox(sb)


async def test_logs_hostname_env_and_user(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime, "web-1")
    cid, st = await run_to_exit(
        runc_runtime, sb, busybox_rootfs,
        ["sh", "-c", "cat /etc/hostname; hostname; echo $GREETING; id -u; echo oops >&2; pwd"],
        env=["GREETING=hello"], uid=65534, gid=65534, cwd="/tmp")
    assert st.exit_code == 0
    text, _ = read_log(st.log_path)
    assert text.decode().splitlines() == ["web-1", "web-1", "hello", "65534", "oops", "/tmp"] or \
        sorted(text.decode().splitlines()) == sorted(["web-1", "web-1", "hello", "65534", "oops", "/tmp"])
    raw = st.log_path.read_text().splitlines()
    assert any(" stderr F oops" in line for line in raw)
    # RFC3339Nano: UTC as "Z" (containerd) or "+00:00" (conmon's k8s-file driver, as CRI-O writes)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) std(out|err) [FP] ", line)
               for line in raw)
    tail, _ = read_log(st.log_path, tail=1)
    assert len(tail.decode().splitlines()) == 1
    stamped, _ = read_log(st.log_path, timestamps=True)
    assert stamped.decode().splitlines()[0].split(" ", 1)[0].endswith("Z")


async def test_memory_limit_oom_killed(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime)
    cid = await runc_runtime.create_container(sb, ContainerSpec(
        name="hog", rootfs=busybox_rootfs, memory_limit=16 * 1024 * 1024,
        args=["sh", "-c", "x=a; while true; do x=$x$x; done"]))
    # the limit is in the container's memory cgroup while it exists
    mem = Path("/sys/fs/cgroup/memory") / runc_runtime._ctrs[cid].cg_path.lstrip("/") / "memory.limit_in_bytes"
    assert int(mem.read_text()) == 16 * 1024 * 1024
    await runc_runtime.start_container(cid)
    st = await asyncio.wait_for(runc_runtime.wait(cid), 30)
    assert st.exit_code == 137
    assert st.oom_killed and st.reason == "OOMKilled"


async def test_cpu_and_pids_limits_in_cgroup(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime)
    cid = await runc_runtime.create_container(sb, ContainerSpec(
        name="lim", rootfs=busybox_rootfs, args=["sleep", "30"], cpu_limit_milli=500, cpu_request_milli=250,
        pids_limit=64))
    cg = runc_runtime._ctrs[cid].cg_path.lstrip("/")
    assert int(Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.cfs_quota_us").read_text()) == 50000
    assert int(Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.shares").read_text()) == 256
    assert int(Path(f"/sys/fs/cgroup/pids/{cg}/pids.max").read_text()) == 64
    await runc_runtime.start_container(cid)
    stats = await runc_runtime.stats(cid)
    assert stats.pids >= 1
    await runc_runtime.remove_sandbox(sb)
    assert cgroups.existing("/" + cg) == []


async def test_stop_with_grace_then_kill(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime)
    # a shell as PID 1 ignores SIGTERM: stop must escalate to SIGKILL after the grace period
    cid = await runc_runtime.create_container(sb, ContainerSpec(name="s", rootfs=busybox_rootfs, args=["sleep", "300"]))
    await runc_runtime.start_container(cid)
    st = await runc_runtime.stop_container(cid, grace=0.5)
    assert st.state == "exited" and st.exit_code == 137
    # a process that traps TERM exits with its own code within the grace period
    cid2 = await runc_runtime.create_container(sb, ContainerSpec(
        name="t", rootfs=busybox_rootfs, args=["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"]))
    await runc_runtime.start_container(cid2)
    await asyncio.sleep(0.3)
    st2 = await runc_runtime.stop_container(cid2, grace=10)
    assert st2.exit_code == 7


async def test_stop_ends_a_monitor_that_outlives_its_container(runc_runtime, busybox_rootfs, monkeypatch):
    """Seen in CI: the container's cgroup empty, its conmon asleep and never exiting, so the
    container never counted as exited. A stopped conmon plays that part here: stop kills the
    container, finds its cgroup empty, SIGKILLs the monitor and reports 137."""
    monkeypatch.setattr(runc_runtime, "kill_wait", 1.0)
    sb = await sandbox(runc_runtime)
    cid = await runc_runtime.create_container(sb, ContainerSpec(name="m", rootfs=busybox_rootfs, args=["sleep", "300"]))
    await runc_runtime.start_container(cid)
    conmon = runc_runtime._ctrs[cid].conmon_pid
    os.kill(conmon, signal.SIGSTOP)
    try:
        st = await asyncio.wait_for(runc_runtime.stop_container(cid, grace=0.2), 30)
    finally:
        try:
            os.kill(conmon, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert st.state == "exited" and st.exit_code == 137
    assert cgroups.proc_state(conmon) == "gone"
    await runc_runtime.remove_container(cid)


async def test_exec_and_shared_network_namespace(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime)
    server = await runc_runtime.create_container(sb, ContainerSpec(
        name="srv", rootfs=busybox_rootfs, args=["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && httpd -f -p 8080 -h /www"]))
    await runc_runtime.start_container(server)
    other = await runc_runtime.create_container(sb, ContainerSpec(name="cli", rootfs=busybox_rootfs, args=["sleep", "60"]))
    await runc_runtime.start_container(other)
    for _ in range(50):
        code, out, _ = await runc_runtime.exec_sync(other, ["wget", "-qO-", "http://127.0.0.1:8080/index.html"], 5)
        if code == 0:
            break
        await asyncio.sleep(0.1)
    assert out == b"hi\n"
    code, out, _ = await runc_runtime.exec_sync(other, ["sh", "-c", "ip -4 addr show eth0 | grep inet"], 5)
    assert sb.ip in out.decode()
    code, out, err = await runc_runtime.exec_sync(other, ["sh", "-c", "echo E >&2; exit 4"], 5)
    assert (code, err) == (4, b"E\n")
    await runc_runtime.kill_container(other, signal.SIGKILL)
    st = await asyncio.wait_for(runc_runtime.wait(other), 10)
    assert st.exit_code == 137


async def test_orphan_of_a_killed_exec_does_not_hold_the_container(runc_runtime, busybox_rootfs):
    """A probe's ``runc exec`` killed (timeout, cancel) orphans its process to the runtime, a
    subreaper; when the container's init dies the kernel kills that process, and the init
    cannot finish exiting until the zombie is reaped. Before ``reap_orphans`` nothing reaped
    it: the container never exited (the stop fell back to killing conmon) and ``runc delete``
    failed with "container init still running", leaving runc's state (a CI teardown failure)."""
    from controlplane.runtime import reaper

    sb = await sandbox(runc_runtime)
    cid = await runc_runtime.create_container(sb, ContainerSpec(name="c", rootfs=busybox_rootfs,
                                                                args=["sleep", "600"]))
    await runc_runtime.start_container(cid)
    proc = await runc_runtime.exec_process(cid, ["sleep", "300"], stdin=False)
    for _ in range(100):  # the exec'd sleep is in the container: init + it
        if len(cgroups.pids(runc_runtime._ctrs[cid].cg_path)) >= 2:
            break
        await asyncio.sleep(0.05)
    orphan = next(iter(reaper.children(proc.pid)))
    proc.kill()  # as a cancelled probe does; its child lives on, re-parented to this process
    await proc.wait()
    assert os.getpid() in (int(line.split()[1]) for line in Path(f"/proc/{orphan}/status").read_text().splitlines()
                           if line.startswith("PPid:"))
    st = await asyncio.wait_for(runc_runtime.stop_container(cid, 0), 30)
    assert st.exit_code == 137
    assert not Path(f"/proc/{orphan}").exists(), "the orphan was reaped"
    await runc_runtime.remove_container(cid)
    r = await asyncio.create_subprocess_exec("runc", "--root", str(runc_runtime.state_dir), "list", "-q",
                                             stdout=asyncio.subprocess.PIPE)
    out, _ = await r.communicate()
    assert cid not in out.decode().split(), "runc delete worked: no state left"


async def test_missing_command_is_a_clear_error(runc_runtime, busybox_rootfs):
    sb = await sandbox(runc_runtime)
    with pytest.raises(RuntimeError_) as ei:
        await runc_runtime.create_container(sb, ContainerSpec(name="x", rootfs=busybox_rootfs, args=["/no/such/cmd"]))
    assert "no/such/cmd" in ei.value.message
    assert list((runc_runtime.bundles).iterdir()) == []


async def test_readonly_rootfs_and_volume_mount(runc_runtime, busybox_rootfs, tmp_path):
    sb = await sandbox(runc_runtime)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "key").write_text("value")
    cid, st = await run_to_exit(runc_runtime, sb, busybox_rootfs,
                                ["sh", "-c", "cat /cfg/key; touch /x 2>/dev/null && echo writable || echo readonly"],
                                readonly_rootfs=True, mounts=[Mount("/cfg", str(vol), readonly=True)])
    text, _ = read_log(st.log_path)
    assert text == b"valuereadonly\n"


@pytest.mark.parametrize("add,drop,expect", [
    ([], ["ALL"], 0),
    (["NET_ADMIN"], ["ALL"], 1 << 12),
    (["KILL"], ["ALL"], 1 << 5),
])
async def test_capabilities_applied(runc_runtime, busybox_rootfs, add, drop, expect):
    sb = await sandbox(runc_runtime)
    cid, st = await run_to_exit(runc_runtime, sb, busybox_rootfs, ["sh", "-c", "grep CapEff /proc/self/status"],
                                cap_add=add, cap_drop=drop)
    text, _ = read_log(st.log_path)
    assert int(text.decode().split()[1], 16) == expect
