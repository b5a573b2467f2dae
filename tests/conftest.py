"""Shared pytest set-up: fixture modules live in tests/fixtures/ (one per component, owned by
that component) and are loaded here as plugins."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)
