"""A tiny local stand-in for the Hugging Face Hub.

Serves ``/{repo_id}/resolve/{revision}/{filename}`` (HEAD and GET) from a dict,
with the headers huggingface_hub reads (commit hash, ETag, size), so the real
``hf_hub_download`` code path (download, cache layout, revisions, tokens) runs
against it via ``HF_ENDPOINT=http://127.0.0.1:PORT``.  Loopback only.

The Space API part (:mod:`tests.fakehub_api`, ``hub.api``; tokens in ``hub.api.users``) answers
what ``python -m deploy`` calls: whoami, repo creation and deletion, Space secrets,
variables and hardware, the tree listing, preupload and commit.
"""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.files: dict[tuple[str, str, str], bytes] = {}  # (repo, revision, filename) -> bytes
        self.commits: dict[tuple[str, str], str] = {}
        self.private: dict[str, str] = {}  # repo -> required token
        self.requests: list[str] = []
        from tests.fakehub_api import SpaceApi

        self.api = api = SpaceApi(self)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _serve(self, body: bool):
                hub.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].strip("/").split("/")
                if "resolve" not in parts:
                    self.send_error(404)
                    return
                i = parts.index("resolve")
                repo = "/".join(parts[:i])
                if repo.startswith("api/models/"):
                    repo = repo[len("api/models/"):]
                rev, fname = parts[i + 1], "/".join(parts[i + 2:])
                need = hub.private.get(repo)
                if need and self.headers.get("Authorization") != f"Bearer {need}":
                    self.send_response(401)
                    self.send_header("X-Error-Code", "GatedRepo" if False else "RepoNotFound")
                    self.send_header("X-Error-Message", "Invalid credentials")
                    self.end_headers()
                    return
                data = hub.files.get((repo, rev, fname))
                commit = hub.commits.get((repo, rev))
                if data is None and commit is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "RepoNotFound")
                    self.end_headers()
                    return
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                etag = hashlib.sha256(data).hexdigest()
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._serve(False)

            def do_GET(self):
                if self.path.startswith("/api/") and "/resolve/" not in self.path:
                    api.handle(self)
                    return
                self._serve(True)

            def do_POST(self):
                api.handle(self)

            def do_DELETE(self):
                api.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo: str, filename: str, data: bytes, revision: str = "main") -> str:
        commit = hashlib.sha1(repo.encode() + revision.encode()).hexdigest()
        self.commits[(repo, revision)] = commit
        self.commits[(repo, commit)] = commit
        self.files[(repo, revision, filename)] = data
        self.files[(repo, commit, filename)] = data
        return commit

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
