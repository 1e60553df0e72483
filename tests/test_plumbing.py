"""The one home of each piece of plumbing: atomic writes, weight files and strict loading, device / dtype policy,
input sizes."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from animate_anyone.atomic import atomic_directory, atomic_path, refuse_existing, write_text
from animate_anyone.config import SettingError
from animate_anyone.devices import resolve_device, resolve_dtype
from animate_anyone.shapes import check_size, parse_size
from animate_anyone.weights import WeightsError, load_strict, read_state_dict


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_atomic_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and not leftovers(tmp_path)
    write_text(target, "new")
    assert target.read_text() == "new" and not leftovers(tmp_path)


def test_atomic_directory_replaces_or_keeps(tmp_path):
    out = tmp_path / "model"
    with atomic_directory(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError, match="pass overwrite"):
        with atomic_directory(out):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(out, overwrite=True) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("crash")
    assert [p.name for p in out.iterdir()] == ["a"] and not leftovers(tmp_path)
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in out.iterdir()] == ["b"] and not leftovers(tmp_path)
    with pytest.raises(FileExistsError, match="choose another out or pass overwrite$"):  # the library's names
        refuse_existing(out, overwrite=False)
    with pytest.raises(FileExistsError, match="choose another --out or pass --overwrite$"):  # a command's flags
        refuse_existing(out, overwrite=False, what="--out")


def test_read_state_dict_formats_and_errors(tmp_path):
    state = {"a.weight": torch.ones(2, 3), "b.bias": torch.zeros(3)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.ckpt")
    for name in ("w.safetensors", "w.ckpt"):
        got = read_state_dict(tmp_path / name)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    assert list(read_state_dict(tmp_path / "w.safetensors", prefix="b.")) == ["b.bias"]
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="bad.pth"):
        read_state_dict(tmp_path / "bad.pth")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(WeightsError, match="unknown weight file type"):
        read_state_dict(tmp_path / "w.txt")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")


def test_load_strict_names_every_problem():
    module = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    good = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in module.state_dict().items()}
    load_strict(module, good, "good")
    assert torch.equal(module[0].weight, good["0.weight"])
    with pytest.raises(WeightsError) as err:
        load_strict(
            module,
            {**{k: v for k, v in good.items() if k != "0.bias"}, "extra": torch.ones(1), "0.weight": torch.ones(4, 2)},
            "file.pth",
        )
    message = str(err.value)
    assert message.startswith("file.pth:") and "0.bias" in message and "extra" in message and "(4, 2)" in message
    kept = module[0].bias.detach().clone()
    partial = {k: v for k, v in good.items() if not k.startswith("0.bias") and "num_batches" not in k}
    load_strict(module, partial, "partial", keep=["0.bias"], optional=lambda k: k.endswith("num_batches_tracked"))
    assert torch.equal(module[0].bias, kept)


def test_device_and_dtype_policy():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="device tpu"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="dtype float8"):
        resolve_dtype("float8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_size_checks():
    assert parse_size("512x768") == (512, 768) and parse_size(None) is None
    with pytest.raises(SettingError, match="^size 100x64: width 100 is not a positive multiple of 8; try 96$"):
        parse_size("100x64")  # named by the setting: a command renames it (--size), a job line keeps it
    with pytest.raises(SettingError, match="^size big: must look like WIDTHxHEIGHT"):
        parse_size("big")
    assert parse_size("64") == (64, 64)
    assert check_size(60, 64, "mini", multiple=4) == (60, 64)
    with pytest.raises(ValueError, match="height 0"):
        check_size(64, 0)


def test_an_output_whose_folder_cannot_be_written_is_refused_before_any_work(tmp_path):
    """Issue 40: a file where the output's folder would be, or a place no process may write (here /proc, where even
    root cannot make a folder), is one line before the work, not an error when the result is written."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"^out .*file/deeper/clip.mp4: .*file is a file, not a folder"):
        refuse_existing(tmp_path / "file" / "deeper" / "clip.mp4", overwrite=False)
    with pytest.raises(PermissionError, match=r"--json /proc/nowhere/x.json: cannot write in /proc"):
        refuse_existing("/proc/nowhere/x.json", overwrite=False, what="--json")
    refuse_existing(tmp_path / "new" / "folder" / "clip.mp4", overwrite=False)  # made when written: fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the check left nothing behind
