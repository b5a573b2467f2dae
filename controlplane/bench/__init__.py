"""Benchmarks (``controlplane bench <name>``), one module each; each prints one JSON object."""
