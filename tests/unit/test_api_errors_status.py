"""The ``Status`` bodies errors render (``apiserver/meta/errors.py``): Kubernetes' shape,
table-driven."""

from __future__ import annotations

import pytest

from controlplane.apiserver.meta import errors


@pytest.mark.parametrize("err,details", [
    # a route or subresource that does not exist: NotFound with empty details, as NewNotFound
    # gives (kubectl debug reads details.name of it unchecked)
    (errors.ApiError(404, "NotFound", "the server could not find the requested resource"), {}),
    (errors.not_found("pods", "web"), {"name": "web", "group": "", "kind": "pods"}),
    (errors.bad_request("bad"), None),                      # no details at all
    (errors.ApiError(500, "", "boom"), None),
])
def test_details(err, details):
    st = err.status()
    assert st["kind"] == "Status" and st["status"] == "Failure" and st["code"] == err.code
    assert st.get("details") == details
