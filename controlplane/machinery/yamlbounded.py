"""YAML decoding with alias expansion bounded the way go-yaml bounds it, so a few hundred bytes
of nested anchors (a "billion laughs" document) are refused in milliseconds instead of
expanding into gigabytes.

PyYAML itself shares one object per anchor, so the expansion happens later, in whatever walks
the result as a tree (JSON encoding, validation, copies). go-yaml (under sigs.k8s.io/yaml and
so kube-apiserver) counts every decode operation, and those made while expanding an alias, and
fails with "document contains excessive aliasing" once more than 100 alias operations make up
more than the allowed share of more than 1,000 operations: 99 % up to 400,000 operations,
scaled down to 10 % at 4,000,000 (``allowed_alias_ratio``).

``load(data)`` composes the node graph with the C parser (linear in the document's size),
replays go-yaml's count over it in document order with each node's expanded size memoized (an
alias costs its target's size in one step: the check within such a step is monotone, so
checking at its end decides as go-yaml's per-operation check does), then constructs the value
and copies shared (aliased) parts so the result is a plain tree, as Go's decoder produces. A
self-referencing anchor is an error ("anchor 'x' value contains itself"), as in go-yaml.

Pure (no I/O). Used by the apiserver's YAML decoding (request bodies, apply patches).
"""

from __future__ import annotations

from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ALIAS_RATIO_RANGE_LOW = 400_000
ALIAS_RATIO_RANGE_HIGH = 4_000_000
ALIAS_RATIO_RANGE = float(ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW)


class ExcessiveAliasing(yaml.YAMLError):
    def __str__(self) -> str:
        return "yaml: document contains excessive aliasing"


class RecursiveAnchor(yaml.YAMLError):
    def __init__(self, anchor: str) -> None:
        super().__init__(anchor)
        self.anchor = anchor

    def __str__(self) -> str:
        return f"yaml: anchor '{self.anchor}' value contains itself"


def allowed_alias_ratio(decode_count: int) -> float:
    """go-yaml's ``allowedAliasRatio``."""
    if decode_count <= ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decode_count - ALIAS_RATIO_RANGE_LOW) / ALIAS_RATIO_RANGE)


def _excessive(alias_count: int, decode_count: int) -> bool:
    return alias_count > 100 and decode_count > 1000 and alias_count / decode_count > allowed_alias_ratio(decode_count)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _sizes(root: yaml.Node) -> dict[int, int]:
    """Decode operations per node when expanded (itself plus its expanded children; go-yaml's
    extra operation per nested alias node is left out, a difference of one per alias),
    computed once per node, iteratively."""
    size: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_stack.discard(nid)
            size[nid] = 1 + sum(size[id(ch)] for ch in _children(node))
            continue
        if nid in size:
            continue
        if nid in on_stack:
            raise RecursiveAnchor(getattr(node, "anchor", None) or "?")
        on_stack.add(nid)
        stack.append((node, True))
        for ch in reversed(_children(node)):
            if id(ch) in on_stack:
                raise RecursiveAnchor(getattr(ch, "anchor", None) or "?")
            if id(ch) not in size:
                stack.append((ch, False))
    return size


def check_aliasing(root: yaml.Node) -> bool:
    """Raise ``ExcessiveAliasing`` as go-yaml would; return whether the document uses aliases."""
    size = _sizes(root)
    decode = 1  # the document node
    alias = 0
    visited: set[int] = set()
    stack = [root]
    used_alias = False
    while stack:
        node = stack.pop()
        nid = id(node)
        if nid in visited:  # an alias: the alias node, then its target expanded in one step
            used_alias = True
            decode += 1
            if _excessive(alias, decode):
                raise ExcessiveAliasing()
            decode += size[nid]
            alias += size[nid]
            if _excessive(alias, decode):
                raise ExcessiveAliasing()
            continue
        visited.add(nid)
        decode += 1
        if _excessive(alias, decode):
            raise ExcessiveAliasing()
        stack.extend(reversed(_children(node)))
    return used_alias


def _unshare(value: Any) -> Any:
    """A copy in which no dict or list appears twice (aliases become separate trees)."""
    seen: set[int] = set()

    def fresh(v: Any) -> Any:
        if isinstance(v, (dict, list)):
            if id(v) in seen:
                v = _shallow_tree_copy(v)
            seen.add(id(v))
        return v

    root = fresh(value)
    stack = [root]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k in v:
                v[k] = c = fresh(v[k])
                stack.append(c)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                v[i] = c = fresh(item)
                stack.append(c)
    return root


def _shallow_tree_copy(v: Any) -> Any:
    """A new container with the same children (they are made fresh in turn when walked)."""
    return dict(v) if isinstance(v, dict) else list(v)


def load(data: bytes | str) -> Any:
    """One YAML document (``None`` for an empty stream), aliases bounded and expanded."""
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        aliased = check_aliasing(node)
        value = loader.construct_document(node)
    finally:
        loader.dispose()
    return _unshare(value) if aliased else value
