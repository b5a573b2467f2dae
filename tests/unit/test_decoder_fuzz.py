"""Hypothesis fuzzing of the request body decoders (issue 15 item 6): JSON, YAML (bounded alias
expansion) and Kubernetes protobuf answer any bytes with an object or Kubernetes' 400/413/415,
never another exception (which the apiserver would answer with a 500); JSON-shaped values survive
a round trip through the JSON and YAML decoders. The patch engines have their own property tests
(test_patch_*.py)."""

from __future__ import annotations

import json

import yaml
from hypothesis import given, settings, strategies as st

from controlplane.apiserver.encoding import body, protobuf
from controlplane.apiserver.meta.errors import ApiError

MEDIA = [body.JSON, "application/yaml", body.PROTOBUF, "application/merge-patch+json", "text/plain"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=25)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


@st.composite
def protobuf_bodies(draw) -> bytes:
    """The Unknown envelope around a known or unknown kind, the raw message random bytes or
    random length-delimited fields (the decoder walks them by its schema)."""
    kind = draw(st.sampled_from(["Pod", "ConfigMap", "Secret", "Nope", ""]))
    type_meta = _field(1, b"v1") + _field(2, kind.encode())
    raw = draw(st.one_of(st.binary(max_size=64),
                         st.lists(st.tuples(st.integers(1, 20), st.binary(max_size=16)), max_size=6).map(
                             lambda fs: b"".join(_field(n, p) for n, p in fs))))
    extra = draw(st.sampled_from([b"", _field(3, b"gzip"), _field(4, b"application/json")]))
    return protobuf.MAGIC + _field(1, type_meta) + _field(2, raw) + extra


def _decodes_or_kubernetes_error(data: bytes, media: str) -> None:
    try:
        obj = body.decode(data, media)
    except ApiError as e:
        assert e.code in (400, 413, 415), (e.code, str(e))
        return
    assert isinstance(obj, dict)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256), media=st.sampled_from(MEDIA))
def test_any_bytes_get_an_object_or_a_kubernetes_error(data, media):
    _decodes_or_kubernetes_error(data, media)
    _decodes_or_kubernetes_error(protobuf.MAGIC + data, body.PROTOBUF)


@settings(max_examples=300, deadline=None)
@given(data=protobuf_bodies())
def test_protobuf_envelopes_get_an_object_or_a_kubernetes_error(data):
    _decodes_or_kubernetes_error(data, body.PROTOBUF)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#,? \n\t0.")), max_size=80))
def test_yaml_like_text_gets_an_object_or_a_kubernetes_error(text):
    _decodes_or_kubernetes_error(text.encode(), "application/yaml")


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_json_shaped_objects_round_trip(value):
    assert body.decode(json.dumps(value).encode(), body.JSON) == value
    if value:
        assert body.decode(yaml.safe_dump(value).encode(), "application/yaml") == value
