"""A local stand-in of the Hugging Face Hub: folders served as the routes huggingface_hub calls, no internet.

    with StandInHub() as hub:                      # http://127.0.0.1:<port>
        hub.add("org/tiny", folder)                # a repository: the files of a folder, at one commit
        hub.point(monkeypatch, tmp_path)           # huggingface_hub's endpoint, cache and offline switch, here
        ...
        hub.gets("org/tiny")                       # the files that were downloaded (GET), in order

Routes (huggingface_hub 2.5, ``hf_api.repo_info`` / ``list_repo_tree`` and ``file_download``):

* ``GET /api/models/{repo}/revision/{rev}``: ``{"id", "sha"}`` (``snapshot_download`` resolves a branch to a commit);
* ``GET /api/models/{repo}/tree/{rev}?recursive=...``: every file as ``{"type": "file", "path", "size", "oid"}``;
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: the file, with ``ETag``, ``X-Repo-Commit`` and ``Content-Length``
  (and ``Range: bytes=N-`` answered 206, as a resumed download asks).

A revision is the branch ``main`` or the repository's commit; anything else is ``RevisionNotFound``. Errors carry the
Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``), which
huggingface_hub turns into its exception types.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class StandInHub:
    def __init__(self) -> None:
        self.repos: dict[str, tuple[str, Path]] = {}  # repo id -> (commit, folder)
        self.gated: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StandInHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut the server down (idempotent): every later request fails to connect."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def add(self, repo: str, folder: Path, commit: str | None = None, gated: bool = False) -> str:
        """Serve ``folder``'s files as repository ``repo`` at ``commit`` (default: one derived from the name)."""
        commit = commit or hashlib.sha1(repo.encode()).hexdigest()
        self.repos[repo] = (commit, Path(folder))
        if gated:
            self.gated.add(repo)
        return commit

    def gets(self, repo: str) -> list[str]:
        """The files of ``repo`` downloaded so far (GET on the resolve route), in order."""
        prefix = f"/{repo}/resolve/"
        return [
            path[len(prefix) :].split("/", 1)[1]
            for method, path in self.requests
            if method == "GET" and path.startswith(prefix)
        ]

    def point(self, monkeypatch, home: Path, offline: bool = False) -> None:
        """huggingface_hub's endpoint at this server, its cache and token file under ``home`` and ``HF_HUB_OFFLINE``
        as ``offline``, for this test (it read ``HF_ENDPOINT`` and the rest when it was imported)."""
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "ENDPOINT", self.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        offline_mode(monkeypatch, home, offline)


def offline_mode(monkeypatch, home: Path, offline: bool) -> None:
    """huggingface_hub's cache and token file under ``home``, ``HF_HUB_OFFLINE`` as ``offline``, no telemetry."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _handler(hub: StandInHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _error(self, status: int, code: str, commit: str | None = None) -> None:
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", code)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _json(self, value) -> None:
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _repo(self, repo: str, revision: str):
            """(commit, folder) of ``repo`` at ``revision``, or None after answering the error."""
            if repo not in hub.repos:
                self._error(404, "RepoNotFound")
                return None
            if repo in hub.gated:
                self._error(403, "GatedRepo")
                return None
            commit, folder = hub.repos[repo]
            if revision not in ("main", commit):
                self._error(404, "RevisionNotFound")
                return None
            return commit, folder

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                repo, route, revision = "/".join(parts[2:4]), parts[4], parts[5]
                found = self._repo(repo, revision)
                if found is None:
                    return
                commit, folder = found
                if route == "revision":
                    return self._json(
                        {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in _files(folder)]}
                    )
                return self._json(
                    [
                        {"type": "file", "path": name, "size": file.stat().st_size, "oid": _oid(file)}
                        for name, file in _files(folder).items()
                    ]
                )
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                found = self._repo(repo, revision)
                if found is None:
                    return
                commit, folder = found
                file = _files(folder).get(name)
                if file is None:
                    return self._error(404, "EntryNotFound", commit)
                return self._file(file, commit, body)
            self._error(404, "RepoNotFound")

        def _file(self, file: Path, commit: str, body: bool) -> None:
            data = file.read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and body:
                start = int(ranged[len("bytes=") :].split("-")[0] or 0)
            self.send_response(206 if start else 200)
            self.send_header("ETag", f'"{_oid(file)}"')
            self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if body:
                self.wfile.write(data[start:])

    return Handler


def _oid(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()
