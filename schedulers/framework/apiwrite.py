"""Writes the scheduler makes besides bindings (GPU-index annotation, nominatedNodeName): a
merge patch, or read-modify-write where the server cannot patch. Neighbour: ``scheduler``."""

from __future__ import annotations

from controlplane.client.rest import ApiStatusError, RestClient

PATCH_UNSUPPORTED = (405, 415, 500, 501)


def _deep_merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


async def merge_write(client: RestClient, res, name: str, ns: str | None, body: dict,
                      subresource: str | None = None) -> dict:
    """Merge-patch ``body``; where the server cannot patch, read-modify-write instead."""
    try:
        return await client.patch(res, name, body, ns, subresource=subresource)
    except ApiStatusError as e:
        if e.code not in PATCH_UNSUPPORTED:
            raise
    obj = await client.get(res, name, ns)
    _deep_merge(obj, body)
    return await client.update(res, obj, subresource=subresource)
