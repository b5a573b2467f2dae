"""Shared pytest set-up: fixture modules live in tests/fixtures/ (one per component, owned by
that component) and are loaded here as plugins."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)


# The slowest files (measured with --durations, 2026-12-07: the openb ones are CPU-bound for
# 1-8 minutes), dispatched first: with `--dist loadfile` a file runs whole on one worker in
# collection order, so a long file collected late made the run's tail (longest first is the
# classic remedy). Files not listed keep their order after these.
SLOW_FIRST = (
    "tests/integration/test_openb_fidelity.py",
    "tests/integration/test_openb_ddqn_margin.py",
    "tests/integration/test_reliability_up.py",
    "tests/integration/test_ha_cluster.py",
    "tests/integration/test_chaos.py",
    "tests/integration/test_up_safety_routes.py",
    "tests/integration/test_metrics_autoscaling.py",
    "tests/integration/test_kopf_examples.py",
    "tests/integration/test_controllers_rc_cronjob.py",
    "tests/integration/test_agent_cluster.py",
    "tests/integration/test_agent_features.py",
)


def pytest_collection_modifyitems(session, config, items):  # noqa: ARG001 - pytest's hook signature
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    root = Path(__file__).resolve().parent.parent

    def key(item) -> int:
        try:
            rel = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        except ValueError:
            return len(SLOW_FIRST)
        return rank.get(rel, len(SLOW_FIRST))

    items[:] = sorted(items, key=key)  # stable: the order inside a file and among the rest is kept
