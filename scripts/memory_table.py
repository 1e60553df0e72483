"""The modelled peak device memory of one call at full size, for each preset with and without offloading, and the
smallest card each fits: docs/performance.md ("Inference memory before the run") and its JSON.

    .venv/bin/python scripts/memory_table.py [--out docs/performance_results/inference_memory.json]

Counted on the meta device (``pipelines/peak_memory.py``; seconds, nothing allocated) for the SD-1.5-size networks
at 512x768, 24 frames, bfloat16, the default optimisations but offload and decode_chunk_size.
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from animate_anyone.atomic import write_text
from animate_anyone.pipelines.peak_memory import GIB, estimate_call_memory, meta_pipeline

CARDS_GIB = (4, 6, 8, 10, 12, 16, 24, 40, 48, 80)  # common GPU memory sizes
CONTEXT_GIB = 1.0  # the CUDA context and kernel workspaces, not counted by the estimate
PRESETS = ("quality", "fast", "student")
SETUPS = (  # (offload, decode_chunk_size)
    ("none", 8),
    ("model", 8),
    ("sequential", 8),
    ("sequential", 2),
)


def smallest_card(peak_bytes: int) -> int | None:
    need = peak_bytes / GIB + CONTEXT_GIB
    return next((card for card in CARDS_GIB if need <= card), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/performance_results/inference_memory.json")
    args = parser.parse_args()
    width, height, frames, dtype = 512, 768, 24, torch.bfloat16
    pipe = meta_pipeline("sd15", dtype)
    rows = []
    for preset in PRESETS:
        for offload, chunk in SETUPS:
            with warnings.catch_warnings():  # "student" on networks that were never distilled: counted all the same
                warnings.simplefilter("ignore")
                estimate = estimate_call_memory(
                    pipe,
                    width=width,
                    height=height,
                    num_frames=frames,
                    sampling=preset,
                    dtype=dtype,
                    optimisations={"offload": offload, "decode_chunk_size": chunk},
                )
            rows.append(
                {
                    "preset": preset,
                    "offload": offload,
                    "decode_chunk_size": chunk,
                    "peak_gib": round(estimate["peak_bytes"] / GIB, 2),
                    "peak_stage": estimate["peak_stage"],
                    "stage_gib": {k: round(v / GIB, 2) for k, v in estimate["stage_bytes"].items()},
                    "smallest_card_gib": smallest_card(estimate["peak_bytes"]),
                }
            )
            print(
                f"| {preset} | {offload} | {chunk} | {rows[-1]['peak_gib']:.2f} ({estimate['peak_stage']}) | "
                f"{rows[-1]['smallest_card_gib']} GB |"
            )
    record = {
        "command": "python scripts/memory_table.py",
        "networks": "sd15 (SD-1.5 UNets + AnimateDiff temporal layers, sd-vae-ft-mse, CLIP ViT-L/14 image tower)",
        "width": width,
        "height": height,
        "frames": frames,
        "dtype": "bfloat16",
        "optimisations": "defaults (window_batch 1, ref_kv_cache on) but offload and decode_chunk_size",
        "fits_rule": f"peak + {CONTEXT_GIB} GiB (CUDA context, workspaces) <= the card's memory",
        "rows": rows,
    }
    write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
