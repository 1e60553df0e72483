"""animate_anyone.media: video/GIF/PNG-folder round trips, image loading, errors, and atomic writing.

Everything is made in tmp_path from seeded numpy arrays; no network, no fixtures on disk.
"""

from __future__ import annotations

import os
import stat
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from animate_anyone.media import (
    MediaError,
    VideoInfo,
    VideoWriter,
    iter_frames,
    load_image,
    probe_frames,
    write_video,
)


def clip(n: int = 7, width: int = 64, height: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Smooth gradients with a coloured square moving right: easy to compress, easy to compare."""
    colour = np.random.default_rng(seed).integers(0, 256, 3)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(n):
        blue = np.full_like(x, (40 + 20 * i) % 256)
        frame = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), blue], -1).astype(np.uint8)
        frame[10:22, 4 + 6 * i : 16 + 6 * i] = colour
        frames.append(frame)
    return frames


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --- round trips --------------------------------------------------------------------------------------


def test_h264_mp4_round_trip(tmp_path):
    frames = clip()
    out = write_video(tmp_path / "out.mp4", frames, fps=12.5)
    assert out == tmp_path / "out.mp4"
    assert listing(tmp_path) == ["out.mp4"]  # no temporaries left
    assert probe_frames(out) == VideoInfo(num_frames=7, fps=12.5, width=64, height=48)

    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == Fraction(25, 2)

    decoded = list(iter_frames(out))
    assert len(decoded) == 7
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in decoded)
    # Measured at crf 18 on this clip: MAE 1.76 (1.8-2.4 over seeds 0-7), mean signed error +0.24. The error
    # is mostly 4:2:0 chroma at the square's hard edges in a tiny 64x48 frame; 4 leaves margin yet catches
    # a wrong colour matrix or channel order (tens of levels). The bias bound catches swscale's default,
    # biased RGB<->YUV conversion (about -1.2 levels), which media.py avoids.
    errors = [mae(a, b) for a, b in zip(frames, decoded)]
    assert max(errors) < 4.0, errors
    bias = np.mean([(b.astype(np.int32) - a).mean() for a, b in zip(frames, decoded)])
    assert abs(bias) < 0.6
    assert int(np.argmin([mae(decoded[3], f) for f in frames])) == 3  # frames come back in order


def test_ntsc_rate_is_kept_exactly(tmp_path):
    out = write_video(tmp_path / "ntsc.mov", clip(3), fps=30000 / 1001)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)
    assert probe_frames(out).fps == pytest.approx(29.97002997)


def test_odd_size_is_padded_by_one_edge_pixel(tmp_path):
    frames = [f[:47, :63] for f in clip()]
    out = write_video(tmp_path / "odd.mp4", frames, fps=10)
    info = probe_frames(out)
    assert (info.width, info.height) == (64, 48)
    decoded = list(iter_frames(out))
    assert max(mae(a, b[:47, :63]) for a, b in zip(frames, decoded)) < 4.0
    # the padding repeats the last column / row
    assert mae(decoded[0][:, 63], decoded[0][:, 62]) < 4.0
    assert mae(decoded[0][47], decoded[0][46]) < 4.0


def test_mkv_frame_count_by_decoding(tmp_path):
    out = write_video(tmp_path / "out.mkv", clip(), fps=12.5)
    with av.open(str(out)) as container:
        assert container.streams.video[0].frames == 0  # matroska does not store a count
    assert probe_frames(out).num_frames == 7


def test_gif_round_trip(tmp_path):
    frames = clip()
    out = write_video(tmp_path / "out.gif", frames, fps=12.5)
    assert listing(tmp_path) == ["out.gif"]
    assert probe_frames(out) == VideoInfo(num_frames=7, fps=12.5, width=64, height=48)
    with Image.open(out) as gif:
        assert gif.n_frames == 7
        assert gif.info["loop"] == 0  # forever
        assert gif.info["duration"] == 80  # ms, 1 / 12.5 fps
    decoded = list(iter_frames(out))
    # 256 colours a frame with dithering: measured MAE 2.6; each frame has its own palette.
    assert max(mae(a, b) for a, b in zip(frames, decoded)) < 5.0
    assert mae(decoded[0][12:20, 6:14], frames[0][12:20, 6:14]) < 3.0  # the square's colour survives


@pytest.mark.parametrize("name", ["frames", "frames/", "existing"])
def test_png_folder_round_trip_is_exact(tmp_path, name):
    (tmp_path / "existing").mkdir()
    target = str(tmp_path / name) if name != "frames/" else str(tmp_path / "frames") + os.sep
    frames = clip()
    out = write_video(target, frames, fps=12.5)
    assert out.is_dir()
    assert listing(out) == [f"{i:06d}.png" for i in range(7)]
    assert sorted(p for p in listing(tmp_path) if p.startswith(".")) == []
    assert probe_frames(out) == VideoInfo(num_frames=7, fps=30.0, width=64, height=48)
    assert probe_frames(out, default_fps=12.5).fps == 12.5
    for a, b in zip(frames, iter_frames(out), strict=True):
        np.testing.assert_array_equal(a, b)


def test_png_folder_replaces_an_old_frame_folder(tmp_path):
    write_video(tmp_path / "frames", clip(5), fps=10)
    write_video(tmp_path / "frames", clip(2, seed=1), fps=10)
    assert listing(tmp_path / "frames") == ["000000.png", "000001.png"]
    assert listing(tmp_path) == ["frames"]


def test_folder_with_other_files_is_not_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="notes|NNNNNN"):
        VideoWriter(tmp_path / "mine", fps=10)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_image_folder_is_sorted_naturally(tmp_path):
    for i, number in enumerate([10, 2, 1, 33, 3]):
        Image.new("RGB", (8, 6), (number, i, 0)).save(tmp_path / f"frame{number}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    reds = [int(f[0, 0, 0]) for f in iter_frames(tmp_path)]
    assert reds == [1, 2, 3, 10, 33]
    assert probe_frames(tmp_path).num_frames == 5


def test_iter_frames_size_start_count(tmp_path):
    frames = clip()
    folder = write_video(tmp_path / "frames", frames, fps=10)
    video = write_video(tmp_path / "clip.mp4", frames, fps=10)
    for source in (folder, video):
        picked = list(iter_frames(source, start=2, count=3))
        assert len(picked) == 3
        assert [int(np.argmin([mae(p, f) for f in frames])) for p in picked] == [2, 3, 4]
        small = list(iter_frames(source, size=(32, 24), start=5))
        assert [f.shape for f in small] == [(24, 32, 3)] * 2
        assert list(iter_frames(source, count=0)) == []
        assert len(list(iter_frames(source, start=6, count=10))) == 1
    expected = np.asarray(Image.fromarray(frames[5]).resize((32, 24), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(next(iter_frames(folder, size=(32, 24), start=5)), expected)
    with pytest.raises(ValueError):
        iter_frames(folder, start=-1)


def test_frames_are_writable_copies(tmp_path):
    folder = write_video(tmp_path / "frames", clip(2), fps=10)
    video = write_video(tmp_path / "clip.mp4", clip(2), fps=10)
    for source in (folder, video):
        frame = next(iter_frames(source))
        assert frame.flags.writeable
        before = frame.copy()
        frame[0, 0] = 255 - frame[0, 0]  # a caller may draw on frames ...
        assert not np.array_equal(frame, before)
        np.testing.assert_array_equal(next(iter_frames(source)), before)  # ... without changing the source


def test_single_image_is_a_one_frame_video(tmp_path):
    path = tmp_path / "pose.jpg"
    Image.new("RGB", (20, 30), (10, 200, 30)).save(path)
    assert probe_frames(path) == VideoInfo(num_frames=1, fps=30.0, width=20, height=30)
    (frame,) = iter_frames(path, size=(10, 15))
    assert frame.shape == (15, 10, 3)


def test_mixed_size_folder_needs_size(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "0.png")
    Image.new("RGB", (6, 8)).save(tmp_path / "1.png")
    with pytest.raises(MediaError, match="1.png"):
        list(iter_frames(tmp_path))
    assert [f.shape for f in iter_frames(tmp_path, size=(4, 4))] == [(4, 4, 3)] * 2


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:  # a landscape-coded video meant to be shown portrait
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(-90)  # rotate clockwise to display
        frame = clip(1)[0]
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in [*stream.encode(video_frame), *stream.encode()]:
            container.mux(packet)
    info = probe_frames(path)
    assert (info.width, info.height) == (48, 64)
    (upright,) = iter_frames(path)
    assert upright.shape == (64, 48, 3)
    assert mae(upright, np.rot90(frame, -1)) < 6.0


# --- bad inputs ---------------------------------------------------------------------------------------


def test_missing_path_raises_file_not_found(tmp_path):
    missing = tmp_path / "nope.mp4"
    for call in (probe_frames, iter_frames, load_image):
        with pytest.raises(FileNotFoundError, match="nope.mp4"):
            call(missing)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.mp4", b""),
        ("garbage.mp4", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        ("notes.txt", b"just some text\nnot a video\n"),
    ],
)
def test_unreadable_video_raises_media_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError, match=name):
        probe_frames(path)
    with pytest.raises(MediaError, match=name):
        list(iter_frames(path))


def test_truncated_or_corrupt_video_raises_media_error(tmp_path):
    data = write_video(tmp_path / "whole.mp4", clip(30, 128, 96), fps=10).read_bytes()
    # The index (moov, written first: faststart) is intact, so the demuxer alone would just stop early.
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.mp4.*truncated"):
        probe_frames(tmp_path / "cut.mp4")
    with pytest.raises(MediaError, match="cut.mp4.*truncated"):
        list(iter_frames(tmp_path / "cut.mp4"))
    # Zeroed bytes in the middle of the H.264 data: the decoder fails part-way through.
    middle = len(data) // 2
    (tmp_path / "bad.mp4").write_bytes(data[:middle] + bytes(500) + data[middle + 500 :])
    frames = iter_frames(tmp_path / "bad.mp4")
    with pytest.raises(MediaError, match="bad.mp4"):
        list(frames)


def test_audio_only_file_raises_media_error(tmp_path):
    with wave.open(str(tmp_path / "sound.wav"), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(bytes(1600))
    with pytest.raises(MediaError, match="sound.wav.*no video stream"):
        probe_frames(tmp_path / "sound.wav")


def test_empty_folder_raises_media_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("a")
    for folder in ("empty", "texts"):
        with pytest.raises(MediaError, match=folder):
            probe_frames(tmp_path / folder)
        with pytest.raises(MediaError, match=folder):
            iter_frames(tmp_path / folder)  # raised at the call, before iterating


# --- writer: atomicity and checks ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out"])
def test_exception_in_with_block_keeps_old_output(tmp_path, name):
    old = write_video(tmp_path / name, clip(2, seed=1), fps=5)
    before = sorted(p.read_bytes() for p in ([old] if old.is_file() else old.iterdir()))
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / name, fps=10) as writer:
            for frame in clip():
                writer.write(frame)
            raise RuntimeError("boom")
    assert listing(tmp_path) == [name]  # the temporary is gone
    after = sorted(p.read_bytes() for p in ([old] if old.is_file() else old.iterdir()))
    assert after == before


def test_exception_with_no_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as writer:
            writer.write(clip(1)[0])
            raise RuntimeError("boom")
    assert listing(tmp_path) == []


def test_zero_frames_raises_and_writes_nothing(tmp_path):
    with pytest.raises(MediaError, match="no frames"):
        with VideoWriter(tmp_path / "out.mp4", fps=10):
            pass
    with pytest.raises(MediaError):
        write_video(tmp_path / "frames", [], fps=10)
    assert listing(tmp_path) == []


def test_frame_of_another_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="32x24"):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as writer:
            writer.write(clip(1)[0])
            writer.write(clip(1, width=32, height=24)[0])
    assert listing(tmp_path) == []


def test_writer_argument_checks(tmp_path):
    with pytest.raises(ValueError, match=r"\.avi.*\.mp4"):
        VideoWriter(tmp_path / "out.avi", fps=10)
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "out.mp4", fps=0)
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(tmp_path / "out.mp4", fps=10) as writer:
            writer.write(np.zeros((8, 8, 3), np.float32))
    (tmp_path / "taken.mp4").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="taken.mp4"):
        VideoWriter(tmp_path / "taken.mp4", fps=10, overwrite=False)
    assert (tmp_path / "taken.mp4").read_bytes() == b"old"


def test_outputs_get_ordinary_permissions_and_close_works_without_with(tmp_path):
    (tmp_path / "ref").touch()
    (tmp_path / "refdir").mkdir()
    writer = VideoWriter(tmp_path / "sub" / "out.mp4", fps=10)  # missing parent folders are created
    writer.write(clip(1)[0])
    video = writer.close()
    folder = write_video(tmp_path / "frames", clip(1), fps=10)
    assert stat.S_IMODE(video.stat().st_mode) == stat.S_IMODE((tmp_path / "ref").stat().st_mode)
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE((tmp_path / "refdir").stat().st_mode)
    assert probe_frames(video).num_frames == 1


def test_crf_changes_size(tmp_path):
    frames = clip(n=4, width=128, height=96)
    small = write_video(tmp_path / "low.mp4", frames, fps=10, crf=40)
    large = write_video(tmp_path / "high.mp4", frames, fps=10, crf=10)
    assert small.stat().st_size < large.stat().st_size


# --- load_image ---------------------------------------------------------------------------------------


def test_load_image_composites_transparency_onto_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 0  # fully transparent -> white
    rgba[0, 1, 3] = 255  # opaque -> its colour
    rgba[0, 2, 3] = 128  # half -> halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.mode == "RGB"
    pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[0, 1]) == (200, 0, 0)
    assert np.abs(pixels[0, 2].astype(int) - (227, 127, 127)).max() <= 1
    la = Image.fromarray(np.stack([np.full((2, 2), 50, np.uint8), np.zeros((2, 2), np.uint8)], -1), "LA")
    assert tuple(np.asarray(load_image(la))[0, 0]) == (255, 255, 255)


def test_load_image_palette(tmp_path):
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    assert tuple(np.asarray(load_image(palette))[0, 0]) == (255, 0, 0)
    assert tuple(np.asarray(load_image(palette))[1, 1]) == (0, 0, 255)
    palette.info["transparency"] = 0  # index 0 transparent -> white
    palette.save(tmp_path / "p.png", transparency=0)
    loaded = np.asarray(load_image(tmp_path / "p.png"))
    assert tuple(loaded[0, 0]) == (255, 255, 255)
    assert tuple(loaded[1, 1]) == (0, 0, 255)


def test_load_image_grayscale_and_16_bit(tmp_path):
    Image.fromarray(np.full((3, 5), 77, np.uint8), "L").save(tmp_path / "l.png")
    gray = load_image(tmp_path / "l.png")
    assert gray.mode == "RGB" and gray.size == (5, 3)
    assert tuple(np.asarray(gray)[0, 0]) == (77, 77, 77)

    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))
    assert deep.mode == "I;16"
    deep.save(tmp_path / "deep.png")
    for source in (deep, tmp_path / "deep.png"):
        assert np.asarray(load_image(source))[0, :, 0].tolist() == [0, 100, 255]


def test_load_image_cmyk():
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # red
    assert tuple(np.asarray(load_image(cmyk))[0, 0]) == (255, 0, 0)


def test_load_image_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.new("RGB", (40, 20), (0, 128, 255)).save(tmp_path / "rot.jpg", exif=exif)
    with Image.open(tmp_path / "rot.jpg") as stored:
        assert stored.size == (40, 20)
    image = load_image(tmp_path / "rot.jpg")
    assert image.size == (20, 40)
    assert probe_frames(tmp_path / "rot.jpg").width == 20


def test_load_image_does_not_change_its_argument():
    rgba = Image.new("RGBA", (3, 3), (10, 20, 30, 0))
    load_image(rgba)
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0)) == (10, 20, 30, 0)


def test_load_image_bad_files_raise_media_error(tmp_path):
    Image.fromarray(clip(1)[0]).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"definitely not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("cut.png", "junk.jpg", "empty.png"):
        with pytest.raises(MediaError, match=name):
            load_image(tmp_path / name)
    with pytest.raises(MediaError, match="folder"):
        load_image(tmp_path)


def test_fit_pads_crops_or_stretches_another_aspect_ratio(tmp_path):
    """A 40x20 frame (2:1) to 20x20: pad keeps all of it between black bars, crop keeps the centre, stretch
    squeezes it."""
    from animate_anyone.media import fit_image, iter_frames

    frame = np.zeros((20, 40, 3), np.uint8)
    frame[:, :10] = 255  # a white left quarter
    write_video(tmp_path / "wide", [frame], 10.0)  # a folder of PNG frames: lossless
    pad, crop, stretch = (
        next(iter_frames(tmp_path / "wide", size=(20, 20), fit=f)) for f in ("pad", "crop", "stretch")
    )
    assert pad.shape == crop.shape == stretch.shape == (20, 20, 3)
    assert pad[:4].max() == 0 and pad[-4:].max() == 0  # bars above and below (the frame is 20x10 inside)
    assert pad[10, :4].min() > 200 and pad[10, 6:].max() < 50  # its white quarter at half width
    assert crop[:, :].max() < 60  # the centre half of the frame: no white quarter left
    assert stretch[10, :4].min() > 200 and stretch[10, 6:].max() < 60
    assert fit_image(Image.new("RGB", (20, 20)), (20, 20), "pad").size == (20, 20)
    with pytest.raises(ValueError, match="^fit squash: choose one of"):
        iter_frames(tmp_path / "wide", size=(20, 20), fit="squash")
