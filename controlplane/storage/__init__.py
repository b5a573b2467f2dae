"""Storage layer: the one small interface the apiserver talks to (``Backend``), and its etcd
implementation. Only ``controlplane.apiserver`` may import this package."""

from controlplane.storage.interface import (  # noqa: F401
    Backend,
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    StorageError,
    WatchEvent,
)
