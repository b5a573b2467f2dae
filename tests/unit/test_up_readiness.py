"""``up``'s readiness probe of its components (``cmd/up.http_ok``): a URL read from an address
file that is still being written (empty, partial) is "not ready", never an error that ends
``up``'s start-up (it did: ``unknown url type: '/healthz'`` in a CI run, two instances side by side)."""

from __future__ import annotations

import pytest

from controlplane.cmd.up import http_ok


@pytest.mark.parametrize("url", ["/healthz", "http//127.0.0.1/healthz", "", "http://127.0.0.1:1/healthz"])
def test_not_ready_is_false_not_an_error(url):
    assert http_ok(url) is False
