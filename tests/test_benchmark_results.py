"""The committed benchmark scores are traceable: every evaluate JSON in docs/benchmark_results records the settings
that produced it (``predictions``, written by ``synthetic predict`` or reconstructed and labelled so) and is named
by docs/benchmark.md."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
RESULTS = sorted(  # the top folder and its subfolders (sharp/: issue 29's model), the world's apart (below)
    p
    for p in (DOCS / "benchmark_results").rglob("*.json")
    if "world" not in p.parts and "aggregate" in json.loads(p.read_text())
)
SPLITS = ("heldout_character", "heldout_motion")
SAMPLING = {
    "preset",
    "steps",
    "guidance",
    "scheduler",
    "scheduler_class",
    "guidance_interval",
    "cache_interval",
    "cache_depth",
}


def named_in(text: str, folder: bool = False) -> set[str]:
    """The JSON names a page mentions in backticks, with ``SPLIT`` and ``{a,b}`` expanded; ``folder``: with the
    folder named before each (``sharp/val-model.json``)."""
    names = set()
    for token in re.findall(r"`([^`\s]+\.json)`", text):
        token = "/".join(token.split("/")[-2 if folder else -1 :]).replace("SPLIT", "{" + ",".join(SPLITS) + "}")
        parts = re.split(r"\{([^}]*)\}", token)
        for choice in itertools.product(*(p.split(",") for p in parts[1::2])):
            names.add("".join(itertools.chain.from_iterable(itertools.zip_longest(parts[::2], choice, fillvalue=""))))
    return names


def test_the_expansion_of_names():
    assert named_in("`no_temporal-{0,1}-SPLIT.json` and `docs/x/val-full-0.json`") == {
        "no_temporal-0-heldout_character.json",
        "no_temporal-0-heldout_motion.json",
        "no_temporal-1-heldout_character.json",
        "no_temporal-1-heldout_motion.json",
        "val-full-0.json",
    }
    assert named_in("`docs/benchmark_results/sharp/val-{a,b}.json`, `sharp/x-SPLIT.json`", folder=True) == {
        "sharp/val-a.json",
        "sharp/val-b.json",
        "sharp/x-heldout_character.json",
        "sharp/x-heldout_motion.json",
    }


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
def test_each_committed_score_records_its_settings_and_is_named_by_the_page(path):
    record = json.loads(path.read_text())["predictions"]
    if path.stem.startswith("ground_truth"):
        assert record is None  # the ground truth scored against itself: no prediction folder
    elif record["baseline"] is not None:  # copy-reference, or a model's VAE alone (vae_roundtrip)
        assert record["sampling"] is None
        assert (record["model"] is None) == record["baseline"].startswith("copy_reference")
        assert record["model"] is None or record["model"]["fingerprint"].startswith("sha256:")
    else:
        assert SAMPLING <= set(record["sampling"]) and record["window"] and "seed + k" in record["seed_rule"]
        reconstructed = "recorded" in record
        assert reconstructed == (record["model"]["fingerprint"] is None), "a fingerprint, or a reconstruction"
        assert not reconstructed or record["recorded"].startswith("reconstructed after the run")
    page = (DOCS / "benchmark.md").read_text()
    name = path.name if path.parent.name == "benchmark_results" else f"{path.parent.name}/{path.name}"
    assert name in named_in(page, folder="/" in name), f"docs/benchmark.md never names {name}"


WORLD = sorted((DOCS / "benchmark_results" / "world").glob("*.json"))
PACKAGED = (
    "sha256:f102463e59c90fffc8627e409f37392902c38704f03befd4410775de81e8822e"  # the model packaged then (issue 28)
)


@pytest.mark.parametrize("path", WORLD, ids=lambda p: p.stem)
def test_each_world_score_records_the_run_its_name_says(path):
    """docs/benchmark_results/world (scripts/world_benchmark.sh): measure-/eval-<split>-<variant>[-<seed>].json; every
    prediction of the packaged model at 10 steps, with the window mode, driver or chunking its name says, and a row
    of docs/benchmark.md for it."""
    kind, rest = path.stem.split("-", 1)
    data = json.loads(path.read_text())
    assert kind in ("measure", "eval") and ("metrics" in data if kind == "measure" else "aggregate" in data)
    record = data["predictions"]
    page = (DOCS / "benchmark.md").read_text()
    if rest in ("long-truth", "long-copy") or rest.endswith("-copied"):
        if rest == "long-copy":
            assert record["baseline"] and record["model"] is None
        else:
            assert record is None  # the world's own videos, no prediction folder
        named = {"long-truth": "| truth (encoded video) |", "long-copy": "| copy-reference |"}.get(rest, "`copied`")
        assert named in page
        return
    split, variant, seed = rest.rsplit("-", 2)
    assert record["model"]["fingerprint"] == PACKAGED and record["sampling"]["steps"] == 10
    assert record["seed"] == int(seed) and record["output"]["frames"] == (240 if split == "long" else 24)
    driving = record.get("driving", {})
    if split == "long":
        assert driving == ({"chunk": 24} if variant == "fresh" else {})
        assert variant == "fresh" or record["window"]["window_mode"] == variant
        row = "| fresh 24-frame clips |" if variant == "fresh" else f"| {variant} |"
    else:
        assert {k: v for k, v in driving.items() if k != "poses"} == ({} if variant == "truth" else {"driver": variant})
        assert ("poses" in driving) == (variant != "truth")  # which skeletons drove it
        row = f"| {split.removeprefix('cross_body_')} | {variant} |"
    assert row in page, f"docs/benchmark.md has no table row {row!r} for {path.name}"
