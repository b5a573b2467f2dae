"""The YAML loader bounds alias expansion as go-yaml does (``controlplane.machinery.yamlbounded``):
bombs are refused fast, ordinary documents (aliases included) load as plain trees."""

from __future__ import annotations

import time

import pytest
import yaml

from controlplane.machinery import yamlbounded


def bomb(levels: int, fan: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for i in range(1, levels):
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{','.join('*' + prev for _ in range(fan))}]")
        prev = name
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 8, 9])
def test_alias_bombs_are_refused_quickly(levels):
    doc = bomb(levels)
    assert len(doc) < 700
    t0 = time.perf_counter()
    with pytest.raises(yamlbounded.ExcessiveAliasing) as e:
        yamlbounded.load(doc)
    elapsed = time.perf_counter() - t0
    assert str(e.value) == "yaml: document contains excessive aliasing"
    assert elapsed < 5  # figures are the benchmark's business; this only catches an expansion


@pytest.mark.parametrize("doc,expect", [
    ("", None),
    ("a: 1\nb: [x, y]\n", {"a": 1, "b": ["x", "y"]}),
    ("base: &b {image: busybox}\nc: [*b, *b]\n", {"base": {"image": "busybox"}, "c": [{"image": "busybox"}] * 2}),
    (bomb(3), yaml.safe_load(bomb(3))),  # 9*9*9 expansions: small enough, go-yaml accepts it too
], ids=["empty", "plain", "aliases", "small-bomb"])
def test_ordinary_documents_load(doc, expect):
    assert yamlbounded.load(doc) == expect


def test_aliases_become_separate_objects():
    v = yamlbounded.load("base: &b {image: busybox, env: [1]}\nc: [*b, *b]\n")
    v["c"][0]["image"] = "other"
    v["c"][0]["env"].append(2)
    assert v["base"] == {"image": "busybox", "env": [1]} and v["c"][1] == {"image": "busybox", "env": [1]}


def test_self_referencing_anchor():
    with pytest.raises(yaml.YAMLError, match="contains itself"):
        yamlbounded.load("a: &a [1, *a]\n")


@pytest.mark.parametrize("count,ratio", [(0, 0.99), (400_000, 0.99), (4_000_000, 0.10), (2_200_000, 0.545)])
def test_allowed_ratio_matches_go_yaml(count, ratio):
    assert yamlbounded.allowed_alias_ratio(count) == pytest.approx(ratio, abs=1e-3)


def test_large_plain_document_is_fine():
    doc = "items:\n" + "".join(f"- {{name: n{i}, v: {i}}}\n" for i in range(5000))
    assert len(yamlbounded.load(doc)["items"]) == 5000
