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
RESULTS = sorted(p for p in (DOCS / "benchmark_results").glob("*.json") if "aggregate" in json.loads(p.read_text()))
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


def named_in(text: str) -> set[str]:
    """The JSON names a page mentions in backticks, with ``SPLIT`` and ``{a,b}`` expanded."""
    names = set()
    for token in re.findall(r"`([^`\s]+\.json)`", text):
        token = token.rsplit("/", 1)[-1].replace("SPLIT", "{" + ",".join(SPLITS) + "}")
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


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
def test_each_committed_score_records_its_settings_and_is_named_by_the_page(path):
    record = json.loads(path.read_text())["predictions"]
    if path.stem.startswith("ground_truth"):
        assert record is None  # the ground truth scored against itself: no prediction folder
    elif record["baseline"] is not None:
        assert record["model"] is None and record["sampling"] is None
    else:
        assert SAMPLING <= set(record["sampling"]) and record["window"] and "seed + k" in record["seed_rule"]
        reconstructed = "recorded" in record
        assert reconstructed == (record["model"]["fingerprint"] is None), "a fingerprint, or a reconstruction"
        assert not reconstructed or record["recorded"].startswith("reconstructed after the run")
    assert path.name in named_in((DOCS / "benchmark.md").read_text()), f"docs/benchmark.md never names {path.name}"
