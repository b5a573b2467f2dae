"""The node's half of k3s's local-path provisioner: the agent owns the directories of
local-path volumes on its node, so no other machine ever touches this filesystem.

- The storage dir is ``<agent root>/storage``; the agent announces it on its Node
  (annotation ``storage.controlplane.io/local-path-dir``, ``node.py``), where the
  ``local-path-provisioner`` controller reads it to name a new volume's ``hostPath``
  (``pvc-<uid>_<namespace>_<name>``).
- A volume's directory is created when the first pod mounting it starts (the volume is
  ``hostPath`` ``DirectoryOrCreate``, ``podconfig.py``).
- ``sweep`` (every ``storage_sweep`` seconds): each ``pvc-<uid>_*`` directory whose
  PersistentVolume ``pvc-<uid>`` is gone (a 404 from the API; any other answer keeps it) is
  removed with its data: the volume was Released and, reclaim policy Delete, deleted by the
  provisioner; its claim's pvc-protection and the volume's pv-protection finalizers guarantee
  no pod used it any more. A Retained volume keeps its data until an administrator deletes it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from controlplane.client.resources import PERSISTENTVOLUMES
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger

log = get_logger(__name__)

DIR_RE = re.compile(r"^(pvc-[0-9a-f-]{36})_[a-z0-9-]+_.+$")


def volume_of(dirname: str) -> str | None:
    """The PersistentVolume a local-path directory belongs to (None: not one of ours)."""
    m = DIR_RE.match(dirname)
    return m.group(1) if m else None


class LocalStorage:
    def __init__(self, root: Path, client: RestClient) -> None:
        self.dir = root / "storage"
        self.client = client
        self.removed = 0

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    async def sweep(self) -> list[str]:
        """Remove the directories of volumes that are gone; returns their names."""
        try:
            names = await asyncio.to_thread(lambda: sorted(p.name for p in self.dir.iterdir() if p.is_dir()))
        except FileNotFoundError:
            return []
        gone = []
        for name in names:
            pv = volume_of(name)
            if pv is None:
                continue
            try:
                await self.client.get(PERSISTENTVOLUMES, pv)
                continue
            except ApiStatusError as e:
                if not e.not_found:
                    continue  # unknown: keep the data
            path = self.dir / name
            await asyncio.to_thread(shutil.rmtree, path, True)
            self.removed += 1
            gone.append(name)
            log.info("local-path volume directory removed", volume=pv, path=str(path))
        return gone

    async def run(self, stop: asyncio.Event, period: float) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as e:  # noqa: BLE001 - the sweep is retried next period
                log.warning("local-path sweep failed", error=repr(e))
            try:
                async with asyncio.timeout(period):
                    await stop.wait()
                return
            except TimeoutError:
                pass
