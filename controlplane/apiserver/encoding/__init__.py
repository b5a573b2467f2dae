"""Decoding request bodies: JSON, YAML and Kubernetes protobuf (``body``, ``protobuf``,
``protobuf_schema``). Above ``meta`` only; used by ``endpoints``."""
