"""The world rows of docs/benchmark.md from a finished scripts/world_benchmark.sh work folder.

    python scripts/world_report.py WORKDIR [--docs docs]

Copies the measure and evaluate JSON files to DOCS/benchmark_results/world/ (and WORKDIR/lever/*.json to its lever/),
prints the markdown tables (mean ± std over seeds) and draws DOCS/images/world_*.png: PSNR against the
frame index per window mode with the seams marked, frames on both sides of a seam, and cross-body rows. Needs
matplotlib (installed with the dev extra's mediapipe).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

MODES = ("shifted", "moore", "anchored")
DRIVERS = ("raw", "aligned", "truth")
LONG_METRICS = ("window_gap", "drift_slope", "seam_ratio", "char_color_drift", "bg_color_drift", "bg_change", "bg_psnr")
CROSS_METRICS = ("leakage", "bg_change")


def load(folder: Path, pattern: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob(pattern))}


def cell(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def seeds_of(runs: dict[str, dict], prefix: str) -> list[dict]:
    """The runs named PREFIX-SEED."""
    return [v for k, v in runs.items() if k.rsplit("-", 1)[0] == prefix and k.rsplit("-", 1)[1].isdigit()]


def long_table(measure: dict, evals: dict) -> str:
    head = ["variant", "PSNR", "LPIPS", *LONG_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in [*MODES, "fresh"]:
        runs, scored = seeds_of(measure, f"long-{name}"), seeds_of(evals, f"long-{name}")
        psnr = cell([e["aggregate"]["psnr"]["mean"] for e in scored])
        lpips = cell([e["aggregate"]["lpips"]["mean"] for e in scored], 4)
        cells = [cell([r["metrics"][m]["mean"] for r in runs]) for m in LONG_METRICS]
        label = "fresh 24-frame clips" if name == "fresh" else name
        lines.append(f"| {label} | {psnr} | {lpips} | " + " | ".join(cells) + " |")
    for name, key in (("truth (encoded video)", "long-truth"), ("copy-reference", "long-copy")):
        if key in measure:
            cells = [cell([measure[key]["metrics"][m]["mean"]]) for m in LONG_METRICS]
            lines.append(f"| {name} | | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cross_table(measure: dict, evals: dict) -> str:
    head = ["split", "driving skeleton", "PSNR", "SSIM", "LPIPS", *CROSS_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for split in ("cross_body_small", "cross_body_large"):
        for driver in DRIVERS:
            runs, scored = seeds_of(measure, f"{split}-{driver}"), seeds_of(evals, f"{split}-{driver}")
            agg = [e["aggregate"] for e in scored]
            cells = [cell([a["psnr"]["mean"] for a in agg]), cell([a["ssim"]["mean"] for a in agg], 4)]
            cells += [cell([a["lpips"]["mean"] for a in agg], 4)]
            cells += [cell([r["metrics"][m]["mean"] for r in runs], 3) for m in CROSS_METRICS]
            lines.append(f"| {split.removeprefix('cross_body_')} | {driver} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_plot(measure: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for mode, color in zip(MODES, ("tab:blue", "tab:red", "tab:green")):
        runs = seeds_of(measure, f"long-{mode}")
        curves = [c for r in runs for c in r["curves"].values()]
        gaps = [np.array(c["psnr"]) - np.array(c["fresh_psnr"]) for c in curves if "fresh_psnr" in c]
        psnr = [np.array(c["psnr"]) for c in curves]
        axes[0].plot(np.mean(psnr, axis=0), color=color, label=mode, lw=1)
        axes[1].plot(np.mean(gaps, axis=0), color=color, label=mode, lw=1)
        seams = next(iter(runs[0]["seams"].values()), [])
        for t in seams:
            axes[1].axvline(t - 0.5, color=color, alpha=0.25, lw=0.8, ls=":")
    fresh = [np.array(c["psnr"]) for r in seeds_of(measure, "long-fresh") for c in r["curves"].values()]
    axes[0].plot(np.mean(fresh, axis=0), color="black", lw=1, label="fresh 24-frame clips")
    for t in range(24, 240, 24):
        axes[0].axvline(t - 0.5, color="black", alpha=0.15, lw=0.8)
    axes[0].set_ylabel("PSNR vs truth (dB)")
    axes[1].set_ylabel("PSNR(long) - PSNR(fresh) (dB)")
    axes[1].set_xlabel("frame (dotted: where the final step's windows meet, per mode; grey: fresh clips' cuts)")
    axes[0].legend(fontsize=8, ncol=4)
    axes[1].axhline(0, color="black", lw=0.5)
    fig.suptitle("Long clips (240 frames, mini model, mean over clips and seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def seam_sheet(work: Path, measure: dict, out: Path, clip: str = "long-00000", seed: int = 0) -> None:
    """Per mode: the two frames on both sides of the seam nearest the middle, beside the truth's."""
    from PIL import Image

    from animate_anyone.media import iter_frames

    truth = np.stack(list(iter_frames(work / "long" / "long" / "videos" / f"{clip}.mp4")))
    rows = []
    for mode in ("moore", "shifted", "anchored"):
        seams = measure[f"long-{mode}-{seed}"]["seams"][clip]
        t = min(seams, key=lambda s: abs(s - 120))
        pred = np.stack(list(iter_frames(work / "pred" / f"long-{mode}-{seed}" / clip)))
        rows.append(np.concatenate([pred[t - 1], pred[t], truth[t - 1], truth[t]], axis=1))
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 3, sheet.shape[0] * 3), Image.Resampling.NEAREST).save(out)


def cross_sheet(work: Path, out: Path, split: str = "cross_body_large", clips=(0, 1, 2, 3), seed: int = 0) -> None:
    """Per clip: reference A, driver B's skeleton, raw-driven, aligned-driven, truth-skeleton-driven, truth; frame 8."""
    from PIL import Image

    from animate_anyone.media import iter_frames
    from animate_anyone.pose.keypoints import load_pose
    from animate_anyone_lab.render import pose_images

    data, rows, frame = work / "cross" / split, [], 8
    for i in clips:
        clip = f"{split}-{i:05d}"
        tiles = [np.asarray(Image.open(data / "references" / f"{clip}.png").convert("RGB"))]
        tiles.append(pose_images(load_pose(data / "driver_poses" / f"{clip}.npz"))[frame])
        for driver in DRIVERS:
            tiles.append(list(iter_frames(work / "pred" / f"{split}-{driver}-{seed}" / clip))[frame])
        tiles.append(list(iter_frames(data / "videos" / f"{clip}.mp4"))[frame])
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 3, sheet.shape[0] * 3), Image.Resampling.NEAREST).save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = parser.parse_args()
    results = args.docs / "benchmark_results" / "world"
    results.mkdir(parents=True, exist_ok=True)
    for kind in ("measure", "eval"):
        for path in (args.work / kind).glob("*.json"):
            shutil.copy(path, results / f"{kind}-{path.name}")
    levers = sorted((args.work / "lever").glob("*.json"))
    if levers:
        (results / "lever").mkdir(exist_ok=True)
        for path in levers:
            shutil.copy(path, results / "lever" / path.name)
    measure, evals = load(args.work / "measure", "*.json"), load(args.work / "eval", "*.json")
    print(long_table(measure, evals))
    print(cross_table(measure, evals))
    images = args.docs / "images"
    curve_plot(measure, images / "world_long_psnr.png")
    seam_sheet(args.work, measure, images / "world_seams.png")
    cross_sheet(args.work, images / "world_cross_body.png")
    print(f"wrote {results}/ and {images}/world_*.png")


if __name__ == "__main__":
    main()
