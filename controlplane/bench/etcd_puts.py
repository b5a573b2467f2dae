"""Raw etcd write throughput through the project's own storage client (``EtcdBackend``).

``controlplane bench api`` reports it as ``etcd_put_per_s`` next to the apiserver's create rate
(their ratio shows what the API layer costs). Creates of distinct keys, ``concurrency`` at a
time, ``value_size`` bytes each; the keys are deleted afterwards. Neighbours:
``controlplane.storage.etcd`` (the client measured), ``controlplane.bench.api`` (the caller).

API:
    await etcd_put_per_s(endpoint, n=5000, concurrency=32, value_size=1024) -> float
"""

from __future__ import annotations

import asyncio
import time
import uuid

from controlplane.storage.etcd import EtcdBackend


async def etcd_put_per_s(endpoint: str, n: int = 5000, concurrency: int = 32, value_size: int = 1024) -> float:
    """Creates per second of ``n`` distinct keys through ``EtcdBackend`` (after a short warm-up)."""
    backend = EtcdBackend([endpoint])
    prefix = f"/bench/etcd-puts/{uuid.uuid4().hex[:12]}/"
    value = b"x" * value_size
    try:
        await backend.start()
        for i in range(min(100, n)):  # warm the channel up (connections, first-use costs)
            await backend.create(f"{prefix}warm/{i}", value)
        next_i = 0

        async def worker() -> None:
            nonlocal next_i
            while next_i < n:
                i = next_i
                next_i += 1
                await backend.create(f"{prefix}k/{i:08d}", value)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        return n / elapsed
    finally:
        try:
            await backend.delete_prefix(prefix)
        finally:
            await backend.close()
