"""The component bootstrap's flags (``controlplane.cmd.bootstrap``) and the CLI's choice of
which subcommand module to load (``controlplane.cli``)."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from controlplane import cli
from controlplane.cmd import bootstrap

ELECTED = bootstrap.Component("scheduler", lease="kube-scheduler")


def _parse(comp: bootstrap.Component, *argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    bootstrap.add_flags(p, comp)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("argv,elect", [
    ((), True), (("--leader-elect",), True), (("--leader-elect=false",), False), (("--leader-elect=true",), True),
    (("--leader-elect", "0"), False), (("--leader-elect=False",), False),
], ids=["default-on", "bare", "false", "true", "zero", "capital"])
def test_leader_elect_flag(argv, elect):
    args = _parse(ELECTED, *argv)
    assert args.leader_elect is elect
    cfg = bootstrap.leader_election_config(args)
    assert (cfg is not None) is elect
    if cfg:
        assert (cfg.name, cfg.namespace, cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == \
            ("kube-scheduler", "kube-system", 15.0, 10.0, 2.0)
        assert cfg.identity  # HOSTNAME_PID by default


@pytest.mark.parametrize("lease,renew,retry,ok", [
    (15.0, 10.0, 2.0, True),  # Kubernetes' defaults
    (10.0, 7.0, 2.0, True),  # what `up` passes (cmd/up.py LEADER_ELECTION)
    (10.0, 10.0, 2.0, False),  # renew deadline must be shorter than the lease
    (10.0, 2.4, 2.0, False),  # and longer than retry period * 1.2 (client-go's JitterFactor)
], ids=["kubernetes", "up", "renew-not-shorter", "retry-too-long"])
def test_leader_election_timings_are_validated(lease, renew, retry, ok):
    from controlplane.client.leaderelection import LeaderElectionConfig, LeaderElector
    from controlplane.cmd.up import LEADER_ELECTION
    LeaderElector(None, LeaderElectionConfig(name="x", **LEADER_ELECTION))  # type: ignore[arg-type]  # up's own pass
    cfg = LeaderElectionConfig(name="x", lease_duration=lease, renew_deadline=renew, retry_period=retry)
    if ok:
        LeaderElector(None, cfg)  # type: ignore[arg-type]  # no request is made at construction
    else:
        with pytest.raises(ValueError):
            LeaderElector(None, cfg)  # type: ignore[arg-type]


def test_bad_boolean_is_a_usage_error():
    with pytest.raises(SystemExit):
        _parse(ELECTED, "--leader-elect=maybe")


@pytest.mark.parametrize("comp,has_metrics,has_lease", [
    (bootstrap.Component("controller-manager", lease="kube-controller-manager"), True, True),
    (bootstrap.Component("agent"), True, False),
    (bootstrap.Component("apiserver", metrics_port=False), False, False),
], ids=["controller-manager", "agent", "apiserver"])
def test_flags_per_component(comp, has_metrics, has_lease):
    args = _parse(comp)
    assert hasattr(args, "metrics_port") is has_metrics and hasattr(args, "leader_elect") is has_lease
    if has_metrics:
        assert args.metrics_port == 0 and args.data_dir is None  # 0: a free port; no file unless a dir is given


async def test_run_leading_without_election_runs_work_on_the_stop_event():
    stop = asyncio.Event()
    ctx = bootstrap.Context(ELECTED, _parse(ELECTED, "--leader-elect=false"), stop)
    seen = []

    async def work(ev: asyncio.Event) -> None:
        seen.append(ev)

    assert await ctx.run_leading(None, work) == 0  # type: ignore[arg-type] - no client needed
    assert seen == [stop]


@pytest.mark.parametrize("argv,chosen", [
    (["scheduler", "--kubeconfig", "k"], "scheduler"),
    (["--log-format", "json", "agent"], "agent"),
    (["--log-level=debug", "up"], "up"),
    (["--help"], None),
    ([], None),
], ids=["plain", "global-with-value", "global-equals", "help", "empty"])
def test_cli_loads_only_the_chosen_subcommand(argv, chosen):
    assert cli._chosen(argv) == chosen
