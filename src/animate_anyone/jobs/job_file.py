"""The job file of ``animate-anyone batch``: read, and checked whole before the first job (see ``jobs/batch.py`` for
the format). ``read_jobs`` checks every line on its own, ``check_jobs`` also every job's config and inputs as the job
will run them; one bad line refuses the whole file with one line listing every bad line (``JobFileError``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import check_writable
from ..hub import hub_id
from ..jsonl import jsonl_lines

JOB_KEYS = {"id", "reference", "pose", "driver", "truth", "format"}
FORMATS = ("mp4", "mov", "mkv", "gif", "png")
SHOWN_PROBLEMS = 20  # a refused job file lists this many bad lines (or groups of lines), then says how many more
# A job's output name leaves room for its hidden temporary: ``.NAME.<12 hex>.partial`` (atomic.temporary_sibling).
MAX_NAME_BYTES = 255 - len("..0123456789ab.partial")


@dataclass
class Job:
    id: str
    reference: Path
    pose: Path | None
    driver: Path | None
    truth: Path | None
    settings: dict = field(default_factory=dict)
    format: str = "mp4"
    line: int = 0  # its line in the job file


class JobFileError(ValueError):
    """A job file refused before any job ran: ``problems`` are its bad lines, ``(line number, reason)``."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path, self.problems = path, sorted(problems)
        super().__init__(_refusal(path, self.problems))


def read_jobs(path: str | Path) -> list[Job]:
    """The jobs of a JSON-lines file, every line checked on its own (its JSON, keys, id, motion, format and paths'
    form, and that no two outputs collide; not the files nor the settings' values: ``check_jobs``). Any bad line
    refuses the whole file: ``JobFileError`` (a ``ValueError``) listing every bad line."""
    jobs, problems = _parse(Path(path))
    if problems:
        raise JobFileError(Path(path), problems)
    return jobs


def check_jobs(path: str | Path, base_config, *, progress: bool = False) -> list[Job]:
    """``read_jobs``, then every job's config (``job_config``: the batch's config under the line's settings, as the
    job will run it) and inputs (``jobs.animate.check_job``: the values, the model directory, the sampling settings,
    the reference image, the size, the frame count against the motion's header; and ``truth`` exists), all before
    the first job. Any bad line refuses the whole file: ``JobFileError`` listing every bad line, nothing written."""
    import warnings

    from tqdm.auto import tqdm

    from ..pipelines.settings import SettingsWarning
    from .animate import check_job

    path = Path(path)
    jobs, problems = _parse(path)
    truths: dict[str, int] = {}
    for job in tqdm(jobs, desc="checking jobs", unit="job", leave=False, disable=not progress):
        try:
            with warnings.catch_warnings():  # said when the job runs, not once more per line here
                warnings.simplefilter("ignore", SettingsWarning)
                check_job(job_config(job, base_config), job.reference, job.pose, job.driver)
            if job.truth is not None:
                if not job.truth.exists():
                    raise FileNotFoundError(f"truth {job.truth}: no such file or folder")
                name = truth_name(job)
                if name in truths:
                    raise ValueError(f"its truth link truth/{name} is also line {truths[name]}'s: change one id")
                truths[name] = job.line
        except (ValueError, OSError) as exc:
            problems.append((job.line, _one_line(exc)))
    if problems:
        raise JobFileError(path, problems)
    return jobs


def job_config(job: Job, base_config):
    """The ``AnimateConfig`` a job runs with: ``base_config`` under the job line's settings (dotted keys)."""
    from ..config import dotted, load_config
    from .animate_config import AnimateConfig

    return load_config(AnimateConfig, None, [], {**dotted(base_config), **job.settings})


def check_out(out: str | Path, what: str = "out") -> Path:
    """``out`` as a batch's output folder, checked before any work and without writing anything: a folder, or one
    that can be made, that this user can write, with no file where ``videos`` and ``truth`` go. Raises one line
    naming it (as ``what``: the caller's name for it, a command's flag)."""
    out = Path(out)
    check_writable(out, f"{what} {out}", "choose a folder (new or existing)")
    for folder in (out / "videos", out / "truth"):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"{what} {out}: {folder} is a file, not a folder; choose a folder (new or existing)"
            )
    return out


def _parse(path: Path) -> tuple[list[Job], list[tuple[int, str]]]:
    """Every line's job (those that pass) and every bad line's ``(line number, reason)``."""
    base = path.parent.absolute()  # workers elsewhere (Ray) find the files whatever their folder
    jobs, problems, seen, outputs = [], [], set(), {}
    for number, entry in jsonl_lines(path):
        if isinstance(entry, str):
            problems.append((number, entry))
            continue
        try:
            job = _job(entry, number, base, seen)
            name = output_name(job)
            if name in outputs:
                raise ValueError(
                    f"its output videos/{name} is also line {outputs[name]}'s (two ids that name the same file or "
                    "folder): change one id"
                )
            outputs[name] = number
            jobs.append(job)
        except ValueError as exc:
            problems.append((number, str(exc)))
    if not jobs and not problems:
        raise ValueError(f"{path}: no jobs")
    return jobs, problems


PATH_SETTINGS = ("model", "pose.det_model", "pose.pose_model")  # settings that name files: relative to the job file


def _paths_from(base: Path, settings: dict) -> dict:
    """``settings`` with the relative paths of ``PATH_SETTINGS`` (dotted, or inside a section) made relative to
    ``base``, as the inputs are: a worker in another folder (Ray) finds the same files as the checks did."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in settings.items()}
    for key in PATH_SETTINGS:
        section, _, name = key.rpartition(".")
        holder = out.get(section) if section and isinstance(out.get(section), dict) else out
        field = name if holder is not out else key
        value = holder.get(field)
        if isinstance(value, str) and value and not (key == "model" and hub_id(value, base)):  # org/name: the Hub's
            path = Path(value).expanduser()  # "~/models/x": the user's, as on the command line
            holder[field] = str(path if path.is_absolute() else base / path)
    return out


def _job(entry: dict, number: int, base: Path, seen: set[str]) -> Job:
    """One line's job; ``ValueError`` with the line's first problem."""
    unknown = [key for key in entry if key not in JOB_KEYS and key not in _setting_keys()]
    if unknown:
        raise ValueError(_unknown(unknown))
    if "reference" not in entry:
        raise ValueError("no 'reference' (the character image)")
    if ("pose" in entry) == ("driver" in entry):
        raise ValueError("give exactly one of 'pose' (skeletons or keypoints) and 'driver' (a video)")
    for key in ("reference", "pose", "driver", "truth"):
        value = entry.get(key)
        if key in entry and not (isinstance(value, str) and value) and not (key == "truth" and value is None):
            raise ValueError(f"{key} {json.dumps(value)}: give a path (a string)")
    raw = entry.get("id", f"job-{number:05d}")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError(f"id {json.dumps(raw)}: give a name (a string)")
    job_id = str(raw)
    _check_id(job_id)
    if job_id in seen:
        raise ValueError(f"id {job_id!r} repeats an earlier id")
    seen.add(job_id)
    kind = entry.get("format", "mp4")
    if kind not in FORMATS:
        raise ValueError(f"format {kind!r} is not one of {', '.join(FORMATS)}")
    paths = {
        key: None if entry.get(key) is None else base / entry[key] for key in ("reference", "pose", "driver", "truth")
    }
    settings = _paths_from(base, {k: v for k, v in entry.items() if k not in JOB_KEYS})
    job = Job(job_id, paths["reference"], paths["pose"], paths["driver"], paths["truth"], settings, kind, number)
    if len(os.fsencode(output_name(job))) > MAX_NAME_BYTES:
        raise ValueError(f"id {job_id[:40]!r}...: too long (an output name holds at most {MAX_NAME_BYTES} bytes)")
    return job


def _check_id(job_id: str) -> None:
    """An id names a file or folder directly inside ``DIR/videos``, never a hidden one (the temporaries' form)."""
    if not job_id:
        raise ValueError("id '': give a name")
    if job_id in (".", ".."):
        raise ValueError(f"id {job_id!r}: names a folder, not an output (give a name)")
    for bad, what in (("/", "'/'"), ("\\", "'\\'"), ("\0", "a NUL character")):
        if bad in job_id:
            raise ValueError(f"id {job_id!r}: contains {what} (an id is a name inside DIR/videos, not a path)")
    if job_id.startswith("."):
        raise ValueError(f"id {job_id!r}: starts with '.' (hidden names are the batch's temporaries), drop the dot")


def _setting_keys() -> frozenset[str]:
    """The keys a job line may give for its config: ``AnimateConfig``'s fields in dotted form (``steps``,
    ``pose.align``), and its sections (``optimisations``, a mapping)."""
    global _SETTING_KEYS
    if _SETTING_KEYS is None:
        from ..config import dotted
        from .animate_config import AnimateConfig

        leaves = set(dotted(AnimateConfig()))
        _SETTING_KEYS = frozenset(leaves | {key.rsplit(".", 1)[0] for key in leaves if "." in key})
    return _SETTING_KEYS


_SETTING_KEYS: frozenset[str] | None = None


def _unknown(keys: list[str]) -> str:
    """``unknown key 'stpes' (did you mean 'steps'?)``, or what a line may hold where no key is close."""
    import difflib

    known = sorted(JOB_KEYS | _setting_keys())
    names = ", ".join(repr(k) for k in keys)
    guesses = [m[0] for key in keys if (m := difflib.get_close_matches(key, known, n=1, cutoff=0.75))]
    what = f"unknown key{'s' if len(keys) > 1 else ''} {names}"
    if guesses:
        return f"{what} (did you mean {', '.join(map(repr, guesses))}?)"
    return (
        f"{what} (a line holds id, reference, pose or driver, truth, format, and animate settings by their config "
        "names: steps, seed, frames, size, model, pose.align, ...)"
    )


def _one_line(exc: BaseException) -> str:
    """An error as one line (the CLI's form): the message's words, and an OSError's file where it does not say it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename and str(filename) not in text:
        text = f"{filename}: {text}"
    return text


def _refusal(path: Path, problems: list[tuple[int, str]]) -> str:
    """The one line that refuses a job file: ``PATH line N: reason``, lines that share a reason together
    (``PATH lines 1-3, 7: reason``), at most ``SHOWN_PROBLEMS`` of them, joined by ``; ``."""
    groups: dict[str, list[int]] = {}
    for number, reason in problems:
        groups.setdefault(reason, []).append(number)
    ordered = sorted(groups.items(), key=lambda item: item[1][0])
    entries = [
        f"{path} {'line' if len(lines) == 1 else 'lines'} {_ranges(lines)}: {reason}" for reason, lines in ordered
    ]
    text = "; ".join(entries[:SHOWN_PROBLEMS])
    if len(entries) > SHOWN_PROBLEMS:
        left = sum(len(lines) for _, lines in ordered[SHOWN_PROBLEMS:])
        text += f"; and {left} more bad line{'s' if left > 1 else ''}"
    if len(problems) == 1:
        return text
    return f"{len(problems)} bad lines in {path}, no job was run: {text}"


def _ranges(numbers: list[int]) -> str:
    """``1-3, 7`` for [1, 2, 3, 7] (at most 10 runs shown)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:10]]
    return ", ".join(text) + (", ..." if len(runs) > 10 else "")


def output_name(job: Job) -> str:
    """``<id>.<format>``, or ``<id>`` (the folder of PNG frames): the job's output in ``DIR/videos``."""
    return job.id if job.format == "png" else f"{job.id}.{job.format}"


def output_path(out: Path, job: Job) -> Path:
    """``out/videos/<id>.<format>``, or the folder ``out/videos/<id>`` of PNG frames."""
    return out / "videos" / output_name(job)


def truth_name(job: Job) -> str:
    """``<id><suffix>``: the job's ground truth's link in ``DIR/truth`` (a folder of frames: no suffix)."""
    return f"{job.id}{job.truth.suffix if job.truth.is_file() else ''}"
