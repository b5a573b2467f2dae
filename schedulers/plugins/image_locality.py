"""ImageLocality score: prefer nodes that already hold the pod's images. Sum over the pod's
images present on the node of size * (nodes having it / all nodes), clamped to
[23 MiB, 1000 MiB x containers] and scaled to 0..100."""

from __future__ import annotations

import numpy as np

from schedulers.framework.interface import Plugin
from schedulers.framework.registry import register

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if (":" in last or "@" in name) else name + ":latest"


def image_score(sum_scores: np.ndarray, containers: int) -> np.ndarray:
    hi = MAX_CONTAINER_THRESHOLD * max(1, containers)
    s = np.clip(sum_scores, MIN_THRESHOLD, hi)
    return ((s - MIN_THRESHOLD) * 100 // (hi - MIN_THRESHOLD)).astype(np.int64)


@register
class ImageLocality(Plugin):
    name = "ImageLocality"

    def uniform_score(self, cs, pod, snap) -> int | None:
        for image in {normalized_image(i) for i in pod.images if i}:
            if snap.image_holders(image):
                return None
        return 0  # no node holds any of the images: every sum is 0, below the threshold

    def score(self, cs, pod, snap, idx: np.ndarray) -> np.ndarray:
        total_nodes = max(1, snap.n)
        sums = np.zeros(len(idx), dtype=np.int64)
        for image in {normalized_image(i) for i in pod.images if i}:
            holders = snap.image_holders(image)
            if not holders:
                continue
            spread = len(holders) / total_nodes
            sums += np.fromiter((int(holders.get(int(i), 0) * spread) for i in idx), dtype=np.int64, count=len(idx))
        return image_score(sums, len(pod.images))
