"""The benchmark: runs at tiny size, reports every field, counts FLOPs sensibly; the CLI writes its JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch

from animate_anyone.cli import bench as bench_cli
from animate_anyone.cli.main import main
from animate_anyone.pipelines.optimisations import Optimisations
from animate_anyone.pipelines.settings import SamplingRequest
from animate_anyone.speed import (
    SWITCHES,
    Bench,
    count_flops,
    count_unet_flops_meta,
    format_comparison,
    peak_tflops,
    run_benchmark,
    run_comparison,
)

SMALL = dict(width=64, height=48, frames=4, sampling=SamplingRequest(steps=2), warmup=0, repeats=1)

TOP_FIELDS = {
    "schema",
    "config",
    "environment",
    "build_seconds",
    "window_frames",
    "windows_per_step",
    "unet_calls_per_step",
    "seconds_per_step",
    "seconds_per_step_min",
    "seconds_per_step_all",
    "seconds_per_frame",
    "seconds_end_to_end",
    "seconds_end_to_end_all",
    "stages",
    "compile_seconds",
    "unet_rows",
    "memory",
    "flops_per_unet_window",
    "flops_per_step",
    "flops_by_op_per_window",
    "achieved_tflops",
    "peak_tflops",
    "mfu",
}
CONFIG_FIELDS = {
    "size",
    "width",
    "height",
    "frames",
    "steps",
    "guidance",
    "preset",
    "scheduler",
    "guidance_interval",
    "cache_interval",
    "cache_depth",
    "context_frames",
    "context_overlap",
    "window_mode",
    "window_batch",
    "decode_chunk_size",
    "dtype",
    "device",
    "compile",
    "switches",
    "warmup",
    "repeats",
    "seed",
}
ENV_FIELDS = {"device", "device_name", "torch", "diffusers", "transformers", "python", "cpu_count", "torch_threads"}
STAGES = {"reference", "pose_guider", "denoising", "vae_decode", "other"}
MEMORY_FIELDS = {"kind", "peak_mib", "before_mib", "delta_mib", "peak_reached_during_runs", "note"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def result():
    return run_benchmark("tiny", device="cpu", **SMALL)


def test_result_has_every_field_and_is_json(result):
    result = json.loads(json.dumps(result))
    assert TOP_FIELDS <= set(result)
    assert CONFIG_FIELDS <= set(result["config"])
    default = Optimisations().switches()
    assert result["config"]["switches"] == default and set(default) == set(SWITCHES)
    assert ENV_FIELDS <= set(result["environment"])
    assert set(result["stages"]) == STAGES
    assert MEMORY_FIELDS <= set(result["memory"]) and result["memory"]["kind"] == "cpu_ru_maxrss"
    for stage in result["stages"].values():
        assert {"seconds", "seconds_per_frame", "share"} <= set(stage) and stage["seconds"] >= 0


def test_result_values_are_consistent(result):
    c = result["config"]
    assert (c["width"], c["height"], c["frames"], c["steps"], c["dtype"], c["device"]) == (
        64,
        48,
        4,
        2,
        "float32",
        "cpu",
    )
    assert len(result["seconds_per_step_all"]) == c["steps"] * c["repeats"]
    assert 0 < result["seconds_per_step"] and 0 < result["seconds_per_frame"]
    assert result["seconds_per_frame"] == pytest.approx(result["seconds_end_to_end"] / c["frames"])
    stage_sum = sum(s["seconds"] for s in result["stages"].values())
    assert stage_sum == pytest.approx(result["seconds_end_to_end"], rel=1e-6)  # one repeat: the stages add up
    assert result["stages"]["other"]["share"] < 0.5  # the named stages are most of the call
    assert all(result["stages"][s]["seconds"] > 0 for s in ("reference", "pose_guider", "denoising", "vae_decode"))
    assert result["windows_per_step"] == 1 and result["window_frames"] == 4
    assert result["flops_per_step"] == result["flops_per_unet_window"] > 0
    assert sum(result["flops_by_op_per_window"].values()) == result["flops_per_unet_window"]
    assert result["achieved_tflops"] == pytest.approx(result["flops_per_step"] / result["seconds_per_step"] / 1e12)
    assert result["peak_tflops"] is None and result["mfu"] is None  # no MFU on a CPU
    assert result["compile_seconds"] is None


def test_flops_scale_with_frames_and_guidance():
    two = count_unet_flops_meta("tiny", 64, 48, 2)[0]
    four = count_unet_flops_meta("tiny", 64, 48, 4)[0]
    assert four / two == pytest.approx(2.0, rel=0.10)
    off = count_unet_flops_meta("tiny", 64, 48, 4, guidance=False)[0]
    # The unconditional row skips the reference attention, so guidance costs a little less than 2x.
    assert 1.7 < four / off < 2.0
    # Without the K/V cache every call projects the reference tokens again.
    assert count_unet_flops_meta("tiny", 64, 48, 4, ref_kv_cache=False)[0] > four


@torch.no_grad()
def test_meta_count_equals_a_real_call():
    """The meta-device count equals FlopCounterMode on a real guided (or unguided) call of the same shape."""
    model = Bench("tiny", "cpu", "float32").pipe.model
    g = torch.Generator().manual_seed(0)
    latents, ref = torch.randn(1, 4, 4, 6, 8, generator=g), torch.randn(1, 4, 6, 8, generator=g)
    embeds, pose_images = torch.randn(1, 1, 32, generator=g), torch.rand(1, 3, 4, 48, 64, generator=g)
    for guidance, cache in ((True, True), (False, True), (True, False)):
        bank = model.encode_reference(ref, embeds, cache_keys_values=cache)
        pose = model.encode_pose(pose_images)
        scale = 3.5 if guidance else 1.0
        real = count_flops(lambda p=pose, b=bank, g=scale: model.denoise(latents, 500, embeds, p, b, g))[0]
        assert count_unet_flops_meta("tiny", 64, 48, 4, guidance, cache)[0] == real > 0


def test_windows_multiply_the_step_flops():
    batched = Optimisations(window_batch=2)
    result = run_benchmark(
        "tiny",
        device="cpu",
        **{**SMALL, "frames": 10, "sampling": SamplingRequest(steps=2, context_frames=4, context_overlap=1)},
        optimisations=batched,
    )
    assert result["window_frames"] == 4
    assert result["windows_per_step"] == 3.5  # shifted windows: 3 at step 0, 4 at step 1
    assert result["unet_calls_per_step"] == 2
    assert result["flops_per_step"] == pytest.approx(result["flops_per_unet_window"] * 3.5)
    assert result["flops_per_unet_window"] == count_unet_flops_meta("tiny", 64, 48, 4)[0]


def test_sd15_flops_on_meta():
    """The GPU target configuration, counted without memory (docs/performance.md quotes this number)."""
    flops = count_unet_flops_meta("sd15", 512, 768, 24)[0]
    assert 80e12 < flops < 100e12


def test_peak_table():
    assert peak_tflops("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989
    assert peak_tflops("NVIDIA H100 PCIe", torch.float16) == 756
    assert peak_tflops("NVIDIA H200", torch.bfloat16) == 989
    assert peak_tflops("NVIDIA A100-SXM4-80GB", torch.bfloat16) == 312
    assert peak_tflops("NVIDIA H100 80GB HBM3", torch.float32) is None
    assert peak_tflops("Some GPU", torch.bfloat16) is None


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown optimisation switch"):
        Optimisations().with_switches({"turbo": True})
    with pytest.raises(ValueError, match="context_overlap 8: .* less than context_frames"):
        run_benchmark("tiny", sampling=SamplingRequest(context_frames=8, context_overlap=8))  # the shared rules
    with pytest.raises(ValueError, match="unknown model size"):
        run_benchmark("huge")
    with pytest.raises(ValueError, match="multiple of 8"):
        run_benchmark("tiny", width=50)


def parse(argv):
    parser = argparse.ArgumentParser(prog="animate-anyone")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])


def test_cli_flags_switch_optimisations():
    args = parse(["--no-ref-kv-cache", "--fused-qkv", "--guidance", "1"])
    assert bench_cli.switches_from_args(args) == {"ref_kv_cache": False, "fused_qkv": True}
    assert args.guidance == 1.0 and args.architecture == "tiny" and args.size is None
    assert parse(["--size", "64x48"]).size == (64, 48) and parse(["--size", "64"]).size == (64, 64)
    assert bench_cli.switches_from_args(parse([])) == {}  # the pipeline's defaults


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--size", "64x48", "--frames", "4", "--steps", "1", "--warmup", "0", "--repeats", "1"]
    args = parse([*argv, "--device", "cpu", "--channels-last", "--quiet", "--json", str(out)])
    args.run(args)
    data = json.loads(out.read_text())
    assert TOP_FIELDS <= set(data) and data["config"]["switches"]["channels_last"] is True
    printed = capsys.readouterr().out
    assert "seconds per denoising step" in printed and f"wrote {out}" in printed


@pytest.mark.integration  # 12 s of timing: the fast tier stays under 5 min (docs/performance_results/fast_tier.json)
def test_compare_reports_every_switch():
    windows = SamplingRequest(steps=2, context_frames=4, context_overlap=2)
    report = run_comparison("tiny", device="cpu", **{**SMALL, "frames": 6, "sampling": windows})
    names = [v["name"] for v in report["variants"]]
    assert names == [*SWITCHES, "window_batch"]
    for v in report["variants"]:
        assert v["speedup_per_step"] > 0 and v["speedup_per_frame"] > 0
        assert v["max_abs_diff_latents"] <= 1e-4 and v["max_abs_diff_frames_uint8"] <= 1
        switches = v["result"]["config"]["switches"]
        assert v["name"] == "window_batch" or switches[v["name"]] == (not Optimisations().switches()[v["name"]])
    assert "speedup/step" in format_comparison(report)
    json.dumps(report)


@pytest.mark.integration  # 11 s of timing (the rows each preset runs are also checked by test_video_work_* here)
def test_compare_presets_counts_unet_rows_and_speed():
    """Quality against fast and student on one pipeline: each runs its own steps, solver, guidance interval and
    cache. The rows are checked against numbers written out from the presets' definitions and against the rows the
    UNet itself saw (a forward hook)."""
    from torch.nn.modules.module import register_module_forward_pre_hook

    from animate_anyone.models import AnimateAnyoneUNet
    from animate_anyone.speed.compare import run_preset_comparison
    from animate_anyone.speed.report import format_preset_comparison

    small = {k: v for k, v in SMALL.items() if k != "sampling"}
    rows = []  # the batch rows of every denoising-UNet call

    def count(module, args):
        if isinstance(module, AnimateAnyoneUNet) and args[0].device.type != "meta":  # not the FLOP counts
            rows.append(args[0].shape[0])

    handle = register_module_forward_pre_hook(count)
    try:
        report = run_preset_comparison("tiny", device="cpu", **small)
    finally:
        handle.remove()
    assert report["default"]["config"]["preset"] == "quality" and report["default"]["config"]["steps"] == 25
    fast, student = report["presets"]
    # Written out: quality 25 guided steps = 50 rows; fast 12 steps, guided while i/12 < 1/2, whole UNet at even
    # steps = (3 x 2 + 3 x 1) whole + (3 x 2 + 3 x 1) shallow; student 4 unguided steps.
    assert report["default"]["unet_rows"] == {"full_rows": 50, "shallow_rows": 0}
    assert fast["name"] == "fast" and fast["result"]["unet_rows"] == {"full_rows": 9, "shallow_rows": 9}
    assert student["name"] == "student" and student["result"]["unet_rows"] == {"full_rows": 4, "shallow_rows": 0}
    # What the UNet saw over every run (one per configuration): the same rows.
    assert sum(rows) == 50 + 18 + 4
    for r in (report["default"], fast["result"], student["result"]):
        assert r["unet_rows_modelled"] == r["unet_rows"]  # the FLOP model counts the rows that ran
        flops = r["flops_per_video"]
        assert r["flops_per_step"] == pytest.approx(
            (flops["unet_whole"] + flops["unet_shallow"]) / r["config"]["steps"]
        )
    one_row = count_unet_flops_meta("tiny", 64, 48, 4, guidance=False)[0]
    assert student["result"]["flops_per_step"] == one_row  # one conditional row per step, not two
    assert fast["result"]["flops_per_video"]["unet_shallow"] > 0 == student["result"]["flops_per_video"]["unet_shallow"]
    # Speed: fewer and cheaper UNet calls. Student: 4 one-row calls against 25 two-row calls; fast: 18 calls, half
    # of them shallow. Floors well below those ratios (the tiny model is dominated by per-call overheads).
    assert student["speedup_per_video"] > 2 and fast["speedup_per_video"] > 1
    assert student["speedup_per_video"] > fast["speedup_per_video"]
    assert "speedup/video" in format_preset_comparison(report)
    json.dumps(report)
    with pytest.raises(ValueError, match="steps 2: the preset comparison runs each preset with its own settings"):
        run_preset_comparison("tiny", device="cpu", **SMALL)
    with pytest.raises(ValueError, match="preset turbo: must be one of quality, fast, student"):
        run_benchmark("tiny", sampling=SamplingRequest(preset="turbo"))


@pytest.mark.integration  # 12 s: the fast tier stays under 5 min; test_meta_count_equals_a_real_call stays in it
@torch.no_grad()
def test_video_work_equals_the_flops_of_a_real_video():
    """The per-video FLOPs counted on the meta device (every stage, from the step plan) against FlopCounterMode over
    a real pipeline call on the CPU, for each preset, on a video of several shifted windows."""
    import numpy as np
    import PIL.Image

    from animate_anyone.pipelines.settings import PRESETS, SamplingSettings
    from animate_anyone.speed.flops import count_video_work_meta, flop_counter

    pipe = Bench("tiny", "cpu", "float32").pipe
    rng = np.random.default_rng(0)
    reference = PIL.Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    poses = rng.integers(0, 255, (10, 48, 64, 3), dtype=np.uint8)
    windows = dict(context_frames=4, context_overlap=1)
    for settings in (SamplingSettings(steps=3), PRESETS["fast"], PRESETS["student"]):
        settings = dataclasses.replace(settings, **windows)
        with flop_counter() as counter:  # resolved settings go to the sampler as they are: no resolution, no warning
            out = pipe(reference, poses, settings, height=48, width=64)
        modelled = count_video_work_meta("tiny", 64, 48, 10, settings)
        assert modelled["flops"]["total"] == counter.get_total_flops() > 0
        assert modelled["unet_rows_per_video"] == {k: out.stats[k] for k in ("full_rows", "shallow_rows")}


@pytest.mark.gpu
def test_bench_on_cuda_reports_memory_and_mfu():
    result = run_benchmark("tiny", device="cuda", dtype="bfloat16", **SMALL)
    assert result["memory"]["kind"] == "cuda_max_memory_allocated" and result["memory"]["peak_mib"] > 0
    assert result["config"]["dtype"] == "bfloat16" and result["stages"]["pose_guider"]["seconds"] > 0
    if peak_tflops(result["environment"]["device_name"], torch.bfloat16) is not None:
        assert (
            result["mfu"] == pytest.approx(result["achieved_tflops"] / result["peak_tflops"]) and 0 < result["mfu"] < 1
        )


@pytest.mark.gpu
def test_compare_on_cuda_keeps_the_outputs():
    report = run_comparison(
        "tiny",
        device="cuda",
        dtype="float32",
        **{**SMALL, "frames": 6, "sampling": SamplingRequest(steps=2, context_frames=4, context_overlap=2)},
    )
    for v in report["variants"]:
        assert v["max_abs_diff_latents"] <= 1e-3, v["name"]  # TF32 may be on


def test_work_command_models_each_preset_without_running(tmp_path, capsys):
    """`bench --work`: each preset's per-video work on the meta device (no pipeline is built or run), with the ratio
    to quality's; the rows are the presets' own."""
    out = tmp_path / "work.json"
    args = [
        "--architecture",
        "tiny",
        "--work",
        "--frames",
        "30",
        "--context-frames",
        "12",
        "--json",
        str(out),
        "--quiet",
    ]
    assert main(["bench", *args]) == 0
    report = json.loads(out.read_text())
    work, ratio = report["work"], report["ratio_to_quality"]
    assert set(work) == {"quality", "fast", "student"} and ratio["quality"] == 1
    for name in ("fast", "student"):
        assert ratio[name] == pytest.approx(work["quality"]["flops"]["total"] / work[name]["flops"]["total"])
    from animate_anyone.pipelines.context import window_schedule

    windows = [len(window_schedule("shifted", 30, 12, 4, step)) for step in range(25)]  # 3 or 4 a step
    assert work["quality"]["unet_rows_per_video"] == {"full_rows": 2 * sum(windows), "shallow_rows": 0}
    assert work["student"]["unet_rows_per_video"] == {"full_rows": sum(windows[:4]), "shallow_rows": 0}
    assert 1 < ratio["fast"] < ratio["student"]
    assert "quality/this" in capsys.readouterr().out
    for extra in (["--steps", "3"], ["--guidance", "1"], ["--cache-interval", "1"]):  # refused, not ignored
        assert main(["bench", "--work", *extra]) == 2
        assert "--work counts each preset with its own settings" in capsys.readouterr().err


@pytest.mark.integration  # 9 s; the fast tier stays under 5 min (test_work_command_models_each_preset_... stays)
def test_work_command_counts_one_preset_with_other_steps(tmp_path):
    """`bench --work --preset student --steps 2` (a 2-step student): 2 rows per window; quality, the reference of
    the ratio, keeps its own 25 guided steps."""
    from animate_anyone.pipelines.context import window_schedule

    out = tmp_path / "work.json"
    args = ["--architecture", "tiny", "--work", "--frames", "30", "--context-frames", "12", "--preset", "student"]
    assert main(["bench", *args, "--steps", "2", "--json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    work = report["work"]
    windows = [len(window_schedule("shifted", 30, 12, 4, step)) for step in range(25)]
    assert work["student"]["unet_rows_per_video"] == {"full_rows": sum(windows[:2]), "shallow_rows": 0}
    assert work["student"]["settings"]["steps"] == 2
    assert main(["bench", *args, "--json", str(tmp_path / "four.json"), "--quiet"]) == 0
    four = json.loads((tmp_path / "four.json").read_text())  # the student preset's own 4 steps
    assert four["work"]["student"]["unet_rows_per_video"]["full_rows"] == sum(windows[:4])
    # quality's total is the same in both: the ratios scale as the student's totals
    ratio = report["ratio_to_quality"]["student"] / four["ratio_to_quality"]["student"]
    assert ratio == pytest.approx(four["work"]["student"]["flops"]["total"] / work["student"]["flops"]["total"])


@pytest.mark.integration  # 9 s; the light decoder's work is also counted by test_timed_runs_... (integration)
def test_work_command_counts_the_light_decoder(tmp_path):
    """`bench --work --decoder light`: each frame's decode costs what the light decoder's convolutions do, counted
    by hand (2 x in x out x 3 x 3 per output pixel); quality, the reference, keeps the VAE's decode."""
    from animate_anyone.model_dir import vae_scale_factor
    from animate_anyone.models import LightDecoder
    from animate_anyone.models.sizes import get_size

    out = tmp_path / "work.json"
    args = ["--architecture", "tiny", "--work", "--frames", "12", "--size", "64x48", "--preset", "student"]
    assert main(["bench", *args, "--decoder", "light", "--json", str(out), "--quiet"]) == 0
    assert main(["bench", *args, "--json", str(tmp_path / "vae.json"), "--quiet"]) == 0
    light, vae = (json.loads(p.read_text())["work"]["student"] for p in (out, tmp_path / "vae.json"))
    factor = vae_scale_factor(get_size("tiny").vae)
    h, w, expected = 48 // factor, 64 // factor, 0
    for layer in LightDecoder(4, 3, factor).decoder.layers.modules():  # in order: a block's convolutions too
        if isinstance(layer, torch.nn.Upsample):
            h, w = 2 * h, 2 * w
        elif isinstance(layer, torch.nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            expected += 2 * layer.in_channels * layer.out_channels * k * h * w
    assert (h, w) == (48, 64) and light["vae_decode_per_frame"] == expected
    assert light["flops"]["vae_decode"] == 12 * expected and light["decoder"] == "light"
    assert vae["vae_decode_per_frame"] != expected and vae["flops"]["unet_whole"] == light["flops"]["unet_whole"]


@pytest.mark.integration  # 15 s of timing; tests/test_light_decoder.py runs the pipeline with it in the fast tier
def test_timed_runs_decode_with_the_light_decoder(tmp_path):
    """`bench --decoder light` times a video whose frames a light decoder of TAESD's size draws (the random model
    gets one): the same latents as the VAE's run, other frames, the decode stage's work the light decoder's; the
    JSON records the decoder."""
    from animate_anyone.speed import BenchConfig
    from animate_anyone.speed.flops import count_video_work_meta

    bench = Bench("tiny", "cpu", "float32")
    assert bench.pipe.light_decoder.config.channels == 64 and bench.pipe.light_decoder.config.blocks == 3
    cfgs = [BenchConfig("tiny", **SMALL, decoder=decoder) for decoder in ("vae", "light")]
    vae, light = bench.run_interleaved(cfgs, keep_outputs=True)
    (vae_out, light_out) = (r.pop("_outputs") for r in (vae, light))
    assert torch.equal(vae_out["latents"], light_out["latents"])
    assert vae_out["frames"].shape == light_out["frames"].shape == (4, 48, 64, 3)
    assert abs(vae_out["frames"].astype(int) - light_out["frames"]).mean() > 1
    assert (vae["config"]["decoder"], light["config"]["decoder"]) == ("vae", "light")
    assert light["stages"]["vae_decode"]["seconds"] > 0
    work = count_video_work_meta("tiny", 64, 48, 4, bench.sampling(bench.resolve(cfgs[1])), decoder="light")
    assert light["flops_per_video"] == work["flops"] and work["vae_decode_per_frame"] * 4 == work["flops"]["vae_decode"]
    assert light["flops_per_video"]["vae_decode"] != vae["flops_per_video"]["vae_decode"]  # (tiny's VAE is narrower)
    out = tmp_path / "light.json"
    args = ["--size", "64x48", "--frames", "4", "--steps", "2", "--warmup", "0", "--repeats", "1", "--quiet"]
    assert main(["bench", *args, "--decoder", "light", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["decoder"] == "light"
    with pytest.raises(ValueError, match="decoder='taesd': choose one of vae, light"):
        BenchConfig("tiny", decoder="taesd").resolved()
