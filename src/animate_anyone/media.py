"""Frames in and out: the one module of the project that touches codecs (PyAV) and image files.

Sources (``probe_frames``, ``iter_frames``): a video file (``VIDEO_SUFFIXES``: mp4, m4v, mov, mkv, webm, avi, gif;
a stored display rotation is applied), a folder of images (png/jpg/jpeg/webp/bmp, sorted naturally: ``frame2``
before ``frame10``), or one image (a one-frame video). Frames are HxWx3 uint8 RGB arrays, streamed.

Outputs (``VideoWriter``, ``write_video``), by the path: ``.mp4``/``.mov``/``.mkv`` -> H.264, yuv420p, at
``crf`` (yuv420p needs even sizes: an odd width or height is padded by repeating the last column or row);
``.gif`` -> a GIF looping forever, 256 colours per frame; no suffix, a trailing separator or an existing
folder -> PNG frames ``000000.png, 000001.png, ...``. Output goes to a hidden sibling
``.NAME.<random>.partial`` renamed onto the path on success: a failure never leaves a half-written file
and never loses the old one.

Unreadable inputs raise ``MediaError`` (a ``ValueError``) naming the file; missing ones FileNotFoundError.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation
from PIL import Image, ImageOps

from .atomic import replace, temporary_sibling
from .config import SettingError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# The files a folder listing takes for videos (data preparation, evaluation pairing): the containers read here,
# including every one VideoWriter writes (H264_FORMATS and .gif).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
H264_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # output suffix -> muxer
DEFAULT_FPS = 30.0  # the frame rate of image folders and still images
_FRAME_NAME = re.compile(r"[0-9]{6}\.png")  # what a PNG-folder output holds
# swscale's default RGB <-> yuv420p conversion is biased (-1.2 levels) and blocky in colour: a lossless round
# trip of a gradient is off by 2.1 on average, of a colourful image by 12. Accurate rounding, full chroma and
# box-down / bicubic-up chroma make that 0.4 and 2.9, for ~2 ms a 512x768 frame.
_EXACT = Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP
_TO_YUV, _FROM_YUV = Interpolation.AREA | _EXACT, Interpolation.BICUBIC | _EXACT
_TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)

PathLike = str | os.PathLike[str]
Size = tuple[int, int] | None  # (width, height)


class MediaError(ValueError):
    """An input that cannot be used: corrupt, empty, not a video or image, or unsupported."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_frames`` reports about a source."""

    num_frames: int
    fps: float
    width: int
    height: int


def probe_frames(path: PathLike, *, default_fps: float = DEFAULT_FPS) -> VideoInfo:
    """Frame count, rate and (upright) size of a video file, an image folder or a still image.

    Folders and images have no rate of their own: they report ``default_fps``.
    """
    path = _existing(path)
    images = _images_of(path)
    if images is not None:
        width, height = load_image(images[0]).size
        return VideoInfo(len(images), float(default_fps), width, height)
    with _video(path) as (stream, frames):
        first = next(frames, None)
        if first is None:
            raise MediaError(f"{path}: the video has no frames")
        count = stream.frames or (1 + sum(1 for _ in frames))  # count by decoding if the file doesn't say
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        width, height = first.width, first.height
        if _quarter_turns(first) % 2:
            width, height = height, width
    return VideoInfo(count, float(rate) if rate else float(default_fps), width, height)


FITS = ("pad", "crop", "stretch")
FIT_HELP = "another aspect ratio: pad (default; scaled to fit, black bars), crop (scaled to fill, centre cut), stretch"


def iter_frames(
    path: PathLike, size: Size = None, start: int = 0, count: int | None = None, fit: str = "stretch"
) -> Iterator[np.ndarray]:
    """Stream HxWx3 uint8 RGB frames ``start, start + 1, ...`` (at most ``count``) of a source.

    ``size=(width, height)`` resizes every frame (PIL bicubic); ``fit`` says how a frame of another aspect
    ratio gets there (``FITS``: pad, crop or stretch; see :func:`fit_image`). A missing path or an empty folder
    raises at the call; a decoding problem raises ``MediaError`` while iterating. Frames before ``start`` are
    decoded and dropped (exact, unlike seeking to a key frame).
    """
    size = None if size is None else (int(size[0]), int(size[1]))
    if start < 0 or (count or 0) < 0 or (size and min(size) < 1):
        raise ValueError(f"need start >= 0, count >= 0, size=(width, height) >= 1; got {start}, {count}, {size}")
    if fit not in FITS:
        raise SettingError("fit", fit, f"choose one of {', '.join(FITS)}")
    path = _existing(path)
    return _frames(path, _images_of(path), size, start, None if count is None else start + count, fit)


def fit_image(image: Image.Image, size: tuple[int, int], fit: str = "stretch") -> Image.Image:
    """``image`` at ``size`` = (width, height): ``stretch`` resizes as it is; ``pad`` scales it to fit inside and
    centres it on black (a skeleton's background); ``crop`` scales it to cover and cuts the centre."""
    if image.size == size:
        return image
    if fit == "stretch":
        return image.resize(size, Image.Resampling.BICUBIC)
    ratio = (min if fit == "pad" else max)(size[0] / image.width, size[1] / image.height)
    scaled = image.resize(
        (max(1, round(image.width * ratio)), max(1, round(image.height * ratio))), Image.Resampling.BICUBIC
    )
    canvas = Image.new("RGB", size)
    canvas.paste(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
    return canvas


def _frames(
    path: Path, images: list[Path] | None, size: Size, start: int, stop: int | None, fit: str = "stretch"
) -> Iterator[np.ndarray]:
    if images is None:
        with _video(path) as (_, frames):
            for frame in islice(frames, start, stop):
                image = Image.fromarray(frame.to_ndarray(format="rgb24", interpolation=_FROM_YUV))
                turns = _quarter_turns(frame)
                yield _array(image.transpose(_TURNS[turns]) if turns else image, size, fit)
        return
    first: tuple[int, int] | None = None
    for file in images[start:stop]:
        image = load_image(file)
        first = first or image.size
        if size is None and image.size != first:
            raise MediaError(
                f"{file}: is {image.size[0]}x{image.size[1]} but earlier frames are "
                f"{first[0]}x{first[1]}; pass size=(width, height) to resize them all"
            )
        yield _array(image, size, fit)


def load_image(path_or_image: PathLike | Image.Image) -> Image.Image:
    """An RGB PIL image from a path or an image, upright per its EXIF orientation.

    Transparency (RGBA, LA, P or L with a transparent colour) is composited onto white; 16-bit
    grayscale is scaled to 8 bits; every other mode (L, 1, P, CMYK, YCbCr, ...) is converted to RGB.
    """
    if isinstance(path_or_image, Image.Image):
        try:
            rgb = _to_rgb(ImageOps.exif_transpose(path_or_image))
            if image_name(path_or_image) != "<PIL image>":
                rgb.info.setdefault("source", image_name(path_or_image))
            return rgb
        except (OSError, ValueError) as e:
            raise MediaError(f"{image_name(path_or_image)}: {e}") from e
    path = _existing(path_or_image)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = _to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"{path}: not a readable image ({e})") from e
    rgb.info["source"] = str(path)  # messages about the image (e.g. "no person found") name its file
    return rgb


def image_name(image: Image.Image) -> str:
    """The file an image came from (``load_image``), else ``<PIL image>``: for messages."""
    return getattr(image, "filename", "") or image.info.get("source") or "<PIL image>"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit gray: 65535 -> 255
        gray = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257.0
        return Image.fromarray(np.round(gray).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...; raises ValueError for modes PIL cannot convert


def video_kind(path: PathLike, what: str | None = None) -> str:
    """What a video output path asks for: ``"png"`` (a folder of frames: a path ending in / or without a
    suffix, or an existing folder), ``".gif"`` or an H.264 container suffix; ValueError for anything else (naming
    the path as ``what``, the caller's name for it, when given)."""
    raw = os.fspath(path)
    path = Path(raw)
    suffix = path.suffix.lower()
    if raw.endswith(("/", os.sep)) or path.is_dir() or not suffix:
        return "png"
    if suffix == ".gif" or suffix in H264_FORMATS:
        return suffix
    raise ValueError(
        f"{what + ' ' if what else ''}{path}: unsupported output suffix {path.suffix!r}; use .mp4, .mov, "
        ".mkv (H.264), .gif, or a path without suffix for a folder of PNG frames"
    )


def check_video_output(path: PathLike, what: str = "out", overwrite: bool = False, switch: str | None = None) -> None:
    """Before any work: the suffix is one we write, and an existing output is replaced only with ``overwrite``.
    ``what`` / ``switch``: the caller's names for the path and for ``overwrite`` (``atomic.refuse_existing``)."""
    from .atomic import refuse_existing

    video_kind(path, what)
    refuse_existing(path, overwrite, what, switch)


class VideoWriter:
    """Streaming writer of HxWx3 uint8 RGB frames, a context manager; the path picks the format.

    A normal exit from ``with`` finalises and renames into place; an exception deletes the temporary and
    leaves ``path`` as it was. No frames -> ``MediaError``. The first frame fixes the size. An existing
    folder is only replaced if it holds nothing but ``NNNNNN.png`` frames.
    """

    def __init__(self, path: PathLike, fps: float, crf: int = 18, overwrite: bool = True) -> None:
        raw = os.fspath(path)
        self.path = Path(raw)
        if not fps > 0:
            raise ValueError(f"{self.path}: fps must be > 0, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"{self.path}: crf must be in 0..51 (lower is better), got {crf}")
        self.rate = Fraction(fps).limit_denominator(1001 * 1000)  # 30000/1001 stays exact
        self.crf, self.overwrite = crf, overwrite
        self.kind = video_kind(path)
        self._check_target()
        self._tmp: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._count, self._closed = 0, False

    def write(self, frame: np.ndarray) -> None:
        """Append one HxWx3 uint8 RGB frame."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be HxWx3 uint8 RGB, got {frame.dtype} {frame.shape}")
        if self._closed:
            raise ValueError(f"{self.path}: the writer is closed")
        height, width = frame.shape[:2]
        if self._size is None:
            self._open(width, height)
        elif (width, height) != self._size:
            raise ValueError(
                f"{self.path}: frame {self._count} is {width}x{height}, earlier frames are "
                f"{self._size[0]}x{self._size[1]}; resize frames to one size"
            )
        if self.kind == "png":
            Image.fromarray(frame).save(self._tmp / f"{self._count:06d}.png", compress_level=4)
        elif self.kind == ".gif":
            self._encode(_palette_frame(frame))
        else:  # yuv420p needs even sizes: repeat the last row / column
            padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            rgb = av.VideoFrame.from_ndarray(padded, format="rgb24")
            self._encode(rgb.reformat(format="yuv420p", interpolation=_TO_YUV))
        self._count += 1

    def close(self) -> Path:
        """Finalise and rename into place (what a normal exit from ``with`` does); returns the path."""
        if self._closed:
            return self.path
        self._closed = True
        if self._count == 0:
            raise MediaError(f"{self.path}: no frames were written, so nothing was saved")
        try:
            if self._container is not None:
                for packet in self._stream.encode():  # flush the encoder
                    self._container.mux(packet)
                self._container.close()
            self._commit()
        except BaseException:
            self._discard()
            raise
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._discard()

    def _check_target(self) -> None:
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(f"{self.path}: already exists; pass overwrite=True to replace it")
        if self.path.is_dir() and any(not _FRAME_NAME.fullmatch(p.name) for p in self.path.iterdir()):
            raise FileExistsError(
                f"{self.path}: folder holds files other than NNNNNN.png frames; "
                "refusing to replace it, choose a new or empty folder"
            )

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # not tempfile.mkstemp: its 0600 mode would stick to the output
        self._tmp = temporary_sibling(self.path)
        if self.kind == "png":
            self._tmp.mkdir()
            return
        tmp = str(self._tmp)
        try:
            if self.kind == ".gif":  # the gif muxer loops forever by default
                self._container = av.open(tmp, "w", format="gif")
                self._stream = self._container.add_stream("gif", rate=self.rate)
                self._stream.pix_fmt = "pal8"
            else:
                muxer = H264_FORMATS[self.kind]
                options = {"movflags": "+faststart"} if muxer != "matroska" else {}
                self._container = av.open(tmp, "w", format=muxer, options=options)
                self._stream = self._container.add_stream("libx264", rate=self.rate)
                self._stream.pix_fmt = "yuv420p"
                # One encoder thread: x264's threaded encodes of equal frames differ from run to run on a busy
                # machine (measured: 5 different files in 12 encodes beside a busy thread); one thread gives the
                # same file every time, and the encode stays a small share of a generated video's time.
                self._stream.options = {"crf": str(self.crf), "threads": "1"}
                width, height = width + width % 2, height + height % 2
            self._stream.width, self._stream.height = width, height
        except BaseException:
            self._discard()
            raise

    def _encode(self, frame: av.VideoFrame) -> None:
        frame.pts, frame.time_base = self._count, 1 / self.rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _commit(self) -> None:
        self._check_target()
        replace(self._tmp, self.path)  # atomic for a file; a folder is swapped, then the old one deleted

    def _discard(self) -> None:
        container, tmp, self._container, self._tmp = self._container, self._tmp, None, None
        if container is not None:
            with suppress(Exception):  # already failing; the temporary is deleted anyway
                container.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def write_video(path: PathLike, frames: Iterable[np.ndarray], fps: float, **kw: object) -> Path:
    """Write ``frames`` with a ``VideoWriter`` (keyword arguments go to it); returns the path."""
    with VideoWriter(path, fps, **kw) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def _existing(path: PathLike) -> Path:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return Path(path)


def _natural_key(path: Path) -> tuple[list[int | str], str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"([0-9]+)", path.name)], path.name


def _images_of(path: Path) -> list[Path] | None:
    """The image files a folder or a still image stands for; None for a video file."""
    if not path.is_dir():
        return [path] if path.suffix.lower() in IMAGE_SUFFIXES else None
    files = [
        p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    if not files:
        raise MediaError(f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)}); give a video or frames")
    return sorted(files, key=_natural_key)


@contextmanager
def _video(path: Path) -> Iterator[tuple[av.video.stream.VideoStream, Iterator[av.VideoFrame]]]:
    """The first video stream of a file and its decoded frames; FFmpeg failures become MediaError."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if max((e.pos + e.size for e in stream.index_entries), default=0) > path.stat().st_size:
                raise MediaError(f"{path}: the file is truncated (its index points past the end); download it again")
            yield stream, container.decode(stream)
    except av.FFmpegError as e:
        raise MediaError(f"{path}: cannot decode it as video ({getattr(e, 'strerror', None) or e})") from e


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that make a frame upright (from its display matrix)."""
    return round(frame.rotation / 90) % 4


def _array(image: Image.Image, size: Size, fit: str = "stretch") -> np.ndarray:
    if size is not None:
        image = fit_image(image, size, fit)
    return np.array(image)  # a writable copy


def _palette_frame(rgb: np.ndarray) -> av.VideoFrame:
    """A pal8 frame: the image quantised to its own 256 colours (median cut, Floyd-Steinberg dither)."""
    image = Image.fromarray(rgb).quantize(256)
    colours = np.array(image.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), np.uint8)  # ARGB, opaque
    palette[:, 0] = 255
    palette[: len(colours), 1:] = colours
    return av.VideoFrame.from_ndarray((np.asarray(image), palette), format="pal8")
