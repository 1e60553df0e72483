"""Plain-text tables of benchmark results (the JSON holds everything; these are for the terminal)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_result(result: dict[str, Any]) -> str:
    c, env, mem = result["config"], result["environment"], result["memory"]
    on = [k for k, v in c["switches"].items() if v]
    lines = [
        f"animate-anyone bench: {c['size']} {c['width']}x{c['height']}, {c['frames']} frames, {c['steps']} steps, "
        f"preset {c.get('preset') or 'quality'}, "
        f"guidance {c['guidance'] if c['guidance'] > 1 else 'off'}, "
        f"windows {c['context_frames']}/{c['context_overlap']} "
        f"({_fmt(result['windows_per_step'])} per step, window_batch {c['window_batch']}), "
        f"decoder {c.get('decoder', 'vae')}, {c['dtype']} on {env['device']} "
        f"({env['device_name']}, {env['torch_threads']} threads), compile {c['compile']}",
        f"switches on: {', '.join(on) or 'none'}",
        "",
        f"{'metric':<34} {'value':>14}",
        f"{'seconds per denoising step':<34} {_fmt(result['seconds_per_step']):>14}",
        f"{'seconds per output frame':<34} {_fmt(result['seconds_per_frame']):>14}",
        f"{'seconds end to end':<34} {_fmt(result['seconds_end_to_end']):>14}",
    ]
    for name, stage in result["stages"].items():
        lines.append(
            f"{'  ' + name + ' s/frame (share)':<34} {_fmt(stage['seconds_per_frame']):>14} "
            f"({stage['share'] * 100:.1f}%)"
        )
    lines += [
        f"{'GFLOP per step (UNet)':<34} {_fmt(result['flops_per_step'] and result['flops_per_step'] / 1e9):>14}",
        f"{'UNet rows x windows: whole/shallow':<34} "
        f"{result['unet_rows']['full_rows']:>7}/{result['unet_rows']['shallow_rows']:<6}",
        f"{'achieved TFLOP/s':<34} {_fmt(result['achieved_tflops']):>14}",
        f"{'MFU':<34} {_fmt(result['mfu']):>14}",
        f"{'peak memory MiB (' + mem['kind'] + ')':<34} {_fmt(mem['peak_mib']):>14}",
        f"{'  above start of runs MiB':<34} {_fmt(mem['delta_mib']):>14}",
    ]
    if result.get("compile_seconds") is not None:
        lines.append(f"{'compile seconds':<34} {_fmt(result['compile_seconds']):>14}")
    return "\n".join(lines)


def format_comparison(report: dict[str, Any]) -> str:
    base = report["default"]
    lines = [
        format_result(base),
        "",
        f"{'optimisation':<26} {'s/step var.':>12} {'speedup/step':>13} {'speedup/frame':>14} "
        f"{'max|dlat|':>10} {'max|dpx|':>9}",
    ]
    for e in report["variants"]:
        r = e["result"]
        label = e["name"] + ("" if e["optimisation_in_default"] else " (variant on)")
        lines.append(
            f"{label:<26} {_fmt(r['seconds_per_step']):>12} {_fmt(e['speedup_per_step'], 3):>13} "
            f"{_fmt(e['speedup_per_frame'], 3):>14} {e['max_abs_diff_latents']:>10.2g} "
            f"{e['max_abs_diff_frames_uint8']:>9}"
        )
    return "\n".join(lines)


def format_preset_comparison(report: dict[str, Any]) -> str:
    base = report["default"]
    lines = [
        format_result(base),
        "",
        f"{'preset':<12} {'steps':>5} {'rows whole/shallow':>19} {'s/video':>9} {'speedup/video':>14} "
        f"{'work ratio (modelled)':>22}",
        f"{'quality':<12} {base['config']['steps']:>5} "
        f"{base['unet_rows']['full_rows']:>10}/{base['unet_rows']['shallow_rows']:<8} "
        f"{_fmt(base['seconds_end_to_end']):>9} {'1':>14} {'1':>22}",
    ]
    for e in report["presets"]:
        r = e["result"]
        rows = r["unet_rows"]
        lines.append(
            f"{e['name']:<12} {r['config']['steps']:>5} {rows['full_rows']:>10}/{rows['shallow_rows']:<8} "
            f"{_fmt(r['seconds_end_to_end']):>9} {_fmt(e['speedup_per_video']):>14} "
            f"{_fmt(e['work_ratio_modelled']):>22}"
        )
    return "\n".join(lines)


def format_work(report: dict[str, Any]) -> str:
    """The modelled per-video work of each preset (``compare.count_presets_work``), in TFLOP."""
    first = next(iter(report["work"].values()))
    head = f"{first['size']} {first['width']}x{first['height']}, {first['frames']} frames"
    head += f", windows {first['context_frames']}/{first['context_overlap']} {first['window_mode']} (modelled, TFLOP)"
    parts = ("unet_whole", "unet_shallow", "pose_guider", "reference", "vae_decode", "total")
    columns = " ".join(f"{p:>12}" for p in parts)
    lines = [head, f"{'preset':<10} {'rows whole/shallow':>19} {columns}  quality/this"]
    for name, w in report["work"].items():
        rows = w["unet_rows_per_video"]
        cells = " ".join(f"{w['flops'][p] / 1e12:>12.1f}" for p in parts)
        ratio = report["ratio_to_quality"][name]
        lines.append(f"{name:<10} {rows['full_rows']:>10}/{rows['shallow_rows']:<8} {cells}  {ratio:>12.2f}")
    return "\n".join(lines)
