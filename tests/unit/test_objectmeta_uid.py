"""``new_uid``: what ``str(uuid.uuid4())`` gives (canonical form, version 4, RFC 4122 variant,
all of the variant's nibbles reachable), without building a ``uuid.UUID``."""

import uuid

from controlplane.apiserver.meta.objectmeta import new_uid


def test_new_uid_is_a_canonical_version4_uuid() -> None:
    seen = set()
    variants = set()
    for _ in range(5000):
        u = new_uid()
        parsed = uuid.UUID(u)
        assert str(parsed) == u
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        variants.add(u[19])
        seen.add(u)
    assert len(seen) == 5000
    assert variants == set("89ab")
