"""``train --estimate-memory``: the meta-device count of a training process's memory (``training/memory.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from animate_anyone.cli import train as train_cli
from animate_anyone.config import load_config
from animate_anyone.models.sizes import SIZES, build_networks
from animate_anyone.training.config import TrainConfig
from animate_anyone.training.memory import estimate_training_memory
from animate_anyone.training.setup import apply_stage

TINY = Path(__file__).parents[1] / "configs" / "train" / "tiny.yaml"


def tiny_config(*overrides: str) -> TrainConfig:
    base = ["stage=distill", "data.frames=3", "data.resolution=[64,48]", "batch_size=2"]
    return load_config(TrainConfig, TINY, [*base, *overrides])


def measured_on_cpu(config: TrainConfig) -> int:
    """Bytes of the distinct storages autograd really saves in the training forward of the tiny networks on the
    CPU (float32; PyTorch's CPU SDPA is a fused kernel, as on a GPU)."""
    torch.manual_seed(0)
    model = build_networks(SIZES["tiny"].networks())
    apply_stage(model, config.stage)
    width, height = config.data.resolution
    b, f, h, w = config.batch_size, config.data.frames, height // 8, width // 8
    inputs = (
        torch.randn(b, 4, f, h, w),
        torch.tensor([500] * b),
        torch.randn(b, 4, h, w),
        torch.randn(b, 1, model.denoising_unet.config.cross_attention_dim),
        torch.rand(b, 3, f, height, width),
    )
    storages, keep = {}, []

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        keep.append(t)
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs)
    return sum(storages.values())


def test_estimate_counts_what_a_real_training_forward_saves():
    """Without checkpointing the meta count of the kept activations equals, to within 5 %, what the same forward
    really saves on the CPU; the trained parameters are the whole UNet (distill) or its temporal layers (stage 2);
    checkpointing keeps less and reports the largest recomputation."""
    config = tiny_config()
    estimate = estimate_training_memory(config, "tiny")
    real = measured_on_cpu(config)
    kept = estimate["bytes"]["kept for the backward"]
    assert real > 0 and abs(kept - real) <= 0.05 * real, (kept, real)
    unet = build_networks(SIZES["tiny"].networks(), device="meta").denoising_unet
    assert estimate["trained_parameters"] == sum(p.numel() for p in unet.parameters())
    assert estimate["bytes"]["gradients"] == 4 * estimate["trained_parameters"]
    assert estimate["bytes"]["optimizer (AdamW moments)"] == 8 * estimate["trained_parameters"]
    stage2 = estimate_training_memory(tiny_config("stage=2"), "tiny")
    temporal = sum(p.numel() for n, p in unet.named_parameters() if ".motion_modules." in f".{n}")
    assert stage2["trained_parameters"] == temporal and "teacher (three networks)" not in stage2["bytes"]
    checkpointed = estimate_training_memory(tiny_config("gradient_checkpointing=true"), "tiny")["bytes"]
    assert checkpointed["kept for the backward"] < 0.5 * kept
    assert 0 < checkpointed["largest recomputed call (checkpointing)"] < kept
    half = estimate_training_memory(tiny_config("mixed_precision=bf16"), "tiny")["bytes"]["kept for the backward"]
    assert half < 0.6 * kept  # the activations in the compute dtype


def test_estimate_memory_command(tmp_path, capsys):
    """`train distill --estimate-memory SIZE` prints the parts and the total and writes the JSON; nothing trains."""
    out = tmp_path / "memory.json"
    overrides = ["data.frames=3", "data.resolution=[64,48]", f"output_dir={tmp_path / 'never'}"]
    args = ["distill", "--config", str(TINY), "--estimate-memory", "tiny", "--json", str(out), *overrides]
    assert train_cli.run(train_cli_args(args)) is None
    text = capsys.readouterr().out
    estimate = json.loads(out.read_text())
    assert "kept for the backward" in text and "total (add 10-20 % headroom)" in text
    assert estimate["total_bytes"] == sum(estimate["bytes"].values()) and not (tmp_path / "never").exists()
    with pytest.raises(ValueError, match="--json goes with --estimate-memory"):
        train_cli.run(train_cli_args(["distill", "--config", str(TINY), "--json", str(out)]))
    # without --config (the defaults name no model or data, which the count never reads): counted all the same
    assert train_cli.run(train_cli_args(["stage2", "--estimate-memory", "tiny", "data.resolution=[64,64]"])) is None


def train_cli_args(argv):
    import argparse

    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def test_fused_attention_keeps_inputs_output_logsumexp_and_mask():
    """What the estimate counts for one attention call: q, k, v, the output, the float32 log-sum-exp per query,
    and the mask where one is given; never the (L_q x L_k) attention matrix."""
    from animate_anyone.training.memory import SavedTensors, counting, fused_attention

    def saved(mask):
        q = torch.empty(2, 4, 64, 8, device="meta", dtype=torch.bfloat16, requires_grad=True)
        kv = torch.empty(2, 4, 128, 8, device="meta", dtype=torch.bfloat16)
        with fused_attention(), counting(SavedTensors()) as counted:
            torch.nn.functional.scaled_dot_product_attention(q, kv, kv.clone(), attn_mask=mask)
        return counted.bytes

    qkvo = 2 * (2 * 4 * 64 * 8) * 2 + 2 * (2 * 4 * 128 * 8) * 2  # q, out (64 queries); k, v (128 keys); bf16
    assert saved(None) == qkvo + 2 * 4 * 64 * 4  # + the float32 log-sum-exp
    mask = torch.empty(64, 128, device="meta", dtype=torch.bool)
    assert saved(mask) == qkvo + 2 * 4 * 64 * 4 + 64 * 128
