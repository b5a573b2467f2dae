"""OpenAPI v2 documents in gnostic's protobuf form (``openapi_v2.Document``).

client-go's ``OpenAPISchema()`` (kubectl's client-side validation, ``explain --output
plaintext-openapiv2``) asks ``/openapi/v2`` for
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and ``proto.Unmarshal``s the body
into gnostic's ``openapi_v2.Document``; it never reads the JSON form. kube-apiserver builds that
message from the JSON document with gnostic's compiler (kube-openapi ``ToProtoBinary``); so do we.

The message classes come from the ``protobuf`` runtime: the descriptor is built at import from
``openapiv2.proto`` beside this module (gnostic's messages, checked against the descriptor kubectl
embeds) by a small parser of the proto3 subset that file uses, so no protoc and no generated
``_pb2.py``. The mapping from JSON to messages is gnostic's: ``x-*`` keys become
``vendor_extension`` ``NamedAny``s whose ``Any.yaml`` holds the value as YAML (kube-openapi reads
``x-kubernetes-group-version-kind`` back with a YAML decoder), maps become ``Named*`` lists, and
the one-of wrappers (``ParametersItem``, ``Parameter``, ``SchemaItem``, ...) pick their branch the
way gnostic's compiler does. Neighbours: ``openapi_v2.py`` (builds the JSON document),
``encoding/protobuf.py`` (the Kubernetes protobuf *request* decoder, a different encoding).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

PACKAGE = "openapi.v2"
PROTO_FILE = Path(__file__).with_name("openapiv2.proto")
# what client-go sends (the "@" form) and what kube-openapi answers with (the "." form)
MEDIA_TYPE_REQUESTED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_SCALARS = {
    "double": FieldDescriptor.TYPE_DOUBLE, "float": FieldDescriptor.TYPE_FLOAT,
    "int64": FieldDescriptor.TYPE_INT64, "int32": FieldDescriptor.TYPE_INT32,
    "bool": FieldDescriptor.TYPE_BOOL, "string": FieldDescriptor.TYPE_STRING,
    "bytes": FieldDescriptor.TYPE_BYTES,
}
_TOKEN = re.compile(
    r"(?P<message>message\s+(?P<mname>\w+)\s*\{)"
    r"|(?P<oneof>oneof\s+(?P<oname>\w+)\s*\{)"
    r"|(?P<field>(?P<rep>repeated\s+)?(?P<ftype>[\w.]+)\s+(?P<fname>\w+)\s*=\s*(?P<num>\d+)\s*;)"
    r"|(?P<close>\})"
    r"|(?P<header>(?:syntax|package|import)\s+[^;]+;)"
    r"|(?P<space>\s+)"
)


def parse_proto(text: str) -> descriptor_pb2.FileDescriptorProto:
    """A ``FileDescriptorProto`` from proto3 text of top-level messages with scalar, message and
    repeated fields and one-ofs (what ``openapiv2.proto`` uses). Anything else is an error."""
    text = re.sub(r"//[^\n]*", "", text)
    fd = descriptor_pb2.FileDescriptorProto(name="openapiv2/OpenAPIv2.proto", syntax="proto3")
    message: descriptor_pb2.DescriptorProto | None = None
    oneof: int | None = None
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"openapiv2.proto: cannot parse at {text[pos:pos + 40]!r}")
        pos = m.end()
        if m["header"]:
            word, _, rest = m["header"].rstrip(";").partition(" ")
            value = rest.strip().strip('"')
            if word == "package":
                fd.package = value
            elif word == "import":
                fd.dependency.append(value)
        elif m["message"]:
            if message is not None:
                raise ValueError("openapiv2.proto: nested messages are not supported")
            message = fd.message_type.add(name=m["mname"])
        elif m["oneof"]:
            if message is None or oneof is not None:
                raise ValueError("openapiv2.proto: misplaced oneof")
            message.oneof_decl.add(name=m["oname"])
            oneof = len(message.oneof_decl) - 1
        elif m["field"]:
            if message is None:
                raise ValueError("openapiv2.proto: field outside a message")
            ftype = m["ftype"]
            f = message.field.add(name=m["fname"], number=int(m["num"]),
                                  label=(FieldDescriptor.LABEL_REPEATED if m["rep"]
                                         else FieldDescriptor.LABEL_OPTIONAL))
            if ftype in _SCALARS:
                f.type = _SCALARS[ftype]  # type: ignore[assignment]
            else:
                f.type = FieldDescriptor.TYPE_MESSAGE  # type: ignore[assignment]
                f.type_name = "." + (ftype if "." in ftype else f"{fd.package}.{ftype}")
            if oneof is not None:
                f.oneof_index = oneof
        elif m["close"]:
            if oneof is not None:
                oneof = None
            elif message is not None:
                message = None
            else:
                raise ValueError("openapiv2.proto: unbalanced '}'")
    if message is not None:
        raise ValueError("openapiv2.proto: unterminated message")
    return fd


@lru_cache(maxsize=1)
def messages() -> dict[str, type[Message]]:
    """gnostic's message classes by short name (``Document``, ``Schema``, ...)."""
    fd = parse_proto(PROTO_FILE.read_text())
    pool = descriptor_pool.DescriptorPool()
    any_fd = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_fd)
    pool.Add(any_fd)
    pool.Add(fd)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fd.package}.{m.name}"))
            for m in fd.message_type}


# ---------------------------------------------------------------- JSON -> messages (gnostic)


class _Encoder:
    def __init__(self) -> None:
        self.unknown: list[str] = []
        self._yaml: dict[str, str] = {}

    def yaml_of(self, value: Any) -> str:
        """gnostic keeps the YAML of an ``Any`` (yaml.v3, block style)."""
        key = json.dumps(value, sort_keys=False)
        out = self._yaml.get(key)
        if out is None:
            out = yaml.dump(value, Dumper=_DUMPER, default_flow_style=False, sort_keys=False,
                            allow_unicode=True, width=1 << 20)
            if out.endswith("\n...\n"):  # a scalar: yaml.v3 writes no document end
                out = out[:-4]
            self._yaml[key] = out
        return out

    def fill(self, target: Message, value: Any, where: str) -> None:
        special = _SPECIAL.get(target.DESCRIPTOR.name)
        if special is not None:
            special(self, target, value, where)
            return
        if not isinstance(value, dict):
            self.unknown.append(f"{where}: {target.DESCRIPTOR.name} is not an object")
            return
        fields = target.DESCRIPTOR.fields_by_name
        for key, v in value.items():
            if key.startswith("x-") and "vendor_extension" in fields:
                self.named_any(target.vendor_extension.add(), key, v)  # type: ignore[attr-defined]
                continue
            f = fields.get("_ref" if key == "$ref" else _snake(key))
            if f is None or f.name == "vendor_extension":
                self.unknown.append(f"{where}.{key}")
                continue
            self.set(target, f, v, f"{where}.{key}")

    def set(self, target: Message, f: FieldDescriptor, value: Any, where: str) -> None:
        if f.message_type is not None:
            if _repeated(f):
                rep = getattr(target, f.name)
                for i, item in enumerate(value if isinstance(value, list) else [value]):
                    self.fill(rep.add(), item, f"{where}[{i}]")
            else:
                sub = getattr(target, f.name)
                sub.SetInParent()
                self.fill(sub, value, where)
            return
        try:
            if _repeated(f):
                getattr(target, f.name).extend(_scalar(f, x) for x in (value if isinstance(value, list) else [value]))
            else:
                setattr(target, f.name, _scalar(f, value))
        except (TypeError, ValueError):
            self.unknown.append(f"{where}: {value!r} is not a {f.name}")

    def named_any(self, target: Message, name: str, value: Any) -> None:
        target.name = name  # type: ignore[attr-defined]
        target.value.yaml = self.yaml_of(value)  # type: ignore[attr-defined]


def _repeated(f: FieldDescriptor) -> bool:
    """``is_repeated`` (protobuf 5.28+; ``label`` is gone in 7)."""
    rep = getattr(f, "is_repeated", None)
    return bool(rep) if rep is not None else f.label == FieldDescriptor.LABEL_REPEATED


def _scalar(f: FieldDescriptor, value: Any) -> Any:
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if isinstance(value, bool):
            raise TypeError("bool")
        return float(value)
    if f.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError("not an integer")
        return int(value)
    if f.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise TypeError("not a bool")
        return value
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@lru_cache(maxsize=None)
def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# one-of wrappers, maps and the other shapes gnostic's compiler special-cases

Filler = Callable[[_Encoder, Message, Any, str], None]


def _any(enc: _Encoder, target: Any, value: Any, where: str) -> None:
    target.yaml = enc.yaml_of(value)


def _type_item(enc: _Encoder, target: Any, value: Any, where: str) -> None:
    target.value.extend([value] if isinstance(value, str) else [str(v) for v in value])


def _items_item(enc: _Encoder, target: Any, value: Any, where: str) -> None:
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        enc.fill(target.schema.add(), item, f"{where}[{i}]")


def _additional_properties_item(enc: _Encoder, target: Any, value: Any, where: str) -> None:
    if isinstance(value, bool):
        target.boolean = value
    else:
        target.schema.SetInParent()
        enc.fill(target.schema, value, where)


def _map(enc: _Encoder, target: Any, value: Any, where: str) -> None:
    """``{k: v}`` -> ``additional_properties: [Named*{name: k, value: v}]``."""
    if not isinstance(value, dict):
        enc.unknown.append(f"{where}: {target.DESCRIPTOR.name} is not an object")
        return
    for k, v in value.items():
        entry = target.additional_properties.add()
        entry.name = k
        enc.set(entry, entry.DESCRIPTOR.fields_by_name["value"], v, f"{where}.{k}")


def _named_with_extensions(field: str) -> Filler:
    """``Paths`` and ``Responses``: named entries plus ``x-*`` vendor extensions."""
    def fill(enc: _Encoder, target: Any, value: Any, where: str) -> None:
        for k, v in value.items():
            if k.startswith("x-"):
                enc.named_any(target.vendor_extension.add(), k, v)
                continue
            entry = getattr(target, field).add()
            entry.name = k
            enc.set(entry, entry.DESCRIPTOR.fields_by_name["value"], v, f"{where}.{k}")
    return fill


def _one_of(choose: Callable[[Any], str]) -> Filler:
    def fill(enc: _Encoder, target: Any, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            enc.unknown.append(f"{where}: {target.DESCRIPTOR.name} is not an object")
            return
        branch = getattr(target, choose(value))
        branch.SetInParent()
        enc.fill(branch, value, where)
    return fill


_NON_BODY = {"header": "header_parameter_sub_schema", "formData": "form_data_parameter_sub_schema",
             "query": "query_parameter_sub_schema", "path": "path_parameter_sub_schema"}
_OAUTH2 = {"implicit": "oauth2_implicit_security", "password": "oauth2_password_security",
           "application": "oauth2_application_security", "accessCode": "oauth2_access_code_security"}


def _security_kind(v: dict[str, Any]) -> str:
    if v.get("type") == "basic":
        return "basic_authentication_security"
    if v.get("type") == "oauth2":
        return _OAUTH2.get(v.get("flow", ""), "oauth2_implicit_security")
    return "api_key_security"


_SPECIAL: dict[str, Filler] = {
    "Any": _any,
    "TypeItem": _type_item,
    "ItemsItem": _items_item,
    "AdditionalPropertiesItem": _additional_properties_item,
    **{name: _map for name in ("Definitions", "Properties", "ParameterDefinitions", "ResponseDefinitions",
                               "SecurityDefinitions", "SecurityRequirement", "Headers", "Examples",
                               "Default", "Oauth2Scopes", "VendorExtension")},
    "StringArray": lambda enc, t, v, w: t.value.extend(str(x) for x in v),  # type: ignore[attr-defined]
    "Paths": _named_with_extensions("path"),
    "Responses": _named_with_extensions("response_code"),
    "ParametersItem": _one_of(lambda v: "json_reference" if "$ref" in v else "parameter"),
    "ResponseValue": _one_of(lambda v: "json_reference" if "$ref" in v else "response"),
    "Parameter": _one_of(lambda v: "body_parameter" if v.get("in") == "body" else "non_body_parameter"),
    "NonBodyParameter": _one_of(lambda v: _NON_BODY.get(v.get("in", ""), "query_parameter_sub_schema")),
    "SchemaItem": _one_of(lambda v: "file_schema" if v.get("type") == "file" else "schema"),
    "SecurityDefinitionsItem": _one_of(_security_kind),
}


def to_message(doc: dict[str, Any]) -> tuple[Message, list[str]]:
    """The ``openapi_v2.Document`` of a Swagger 2.0 JSON document, and the keys that have no place
    in it (gnostic refuses a document with such keys; the caller logs them)."""
    enc = _Encoder()
    msg = messages()["Document"]()
    enc.fill(msg, doc, "$root")
    return msg, enc.unknown


def encode(doc: dict[str, Any]) -> tuple[bytes, list[str]]:
    """``to_message`` serialized (deterministic field order)."""
    msg, unknown = to_message(doc)
    return msg.SerializeToString(deterministic=True), unknown
