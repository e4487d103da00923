"""The Space-API half of the fake Hub (see tests/fakehub.py): what ``python -m deploy`` calls.

State is plain dicts a test can read: ``users`` (token -> {"name", "orgs"}), ``repos``
(repo id -> type, sdk, visibility, hardware, files, secrets, variables, commits) and ``calls``
(method, path, JSON body).  ``fail`` injects faults: ``{"commit": "drop"}`` closes the connection
instead of answering the commit (a network failure mid-upload).  Every call needs a known token;
writing needs the repo's namespace to be the user's or one of their organisations'.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import unquote, urlparse


class SpaceApi:
    def __init__(self, hub):
        self.hub = hub
        self.users: dict[str, dict] = {}
        self.repos: dict[str, dict] = {}
        self.calls: list[tuple[str, str, object]] = []
        self.fail: dict[str, str] = {}
        self.cards: list[dict] = []  # front matters sent to /api/validate-yaml

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _send(h, code: int, body=None, message: str | None = None):
        data = json.dumps(body if body is not None else ({"error": message} if message else {})).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        if message:
            h.send_header("X-Error-Message", message)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _user(self, h):
        auth = h.headers.get("Authorization", "")
        return self.users.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None

    @staticmethod
    def _namespaces(user) -> list[str]:
        return [user["name"], *user.get("orgs", [])]

    def _validate_card(self, h, p):
        """The README front matter check create_commit asks for (the real Hub's rules are richer)."""
        import yaml

        m = re.match(r"---\n(.*?)\n---\n", p["content"], re.S)
        errors = []
        try:
            meta = yaml.safe_load(m.group(1)) if m else {}
        except yaml.YAMLError as e:
            meta, errors = {}, [{"message": f"YAML: {e}"}]
        if p.get("repoType") == "space" and not errors:
            if meta.get("sdk") not in ("gradio", "docker", "static", "streamlit"):
                errors.append({"message": f'"sdk" must be one of gradio, docker, static, streamlit'})
            if "app_port" in meta and not isinstance(meta["app_port"], int):
                errors.append({"message": '"app_port" must be a number'})
        self.cards.append(meta)
        return self._send(h, 400 if errors else 200, {"errors": errors, "warnings": []})

    # -- dispatch ------------------------------------------------------------
    def handle(self, h):
        url = urlparse(h.path)
        path = unquote(url.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if h.command in ("POST", "DELETE") else b""
        is_json = h.headers.get("Content-Type", "").startswith("application/json")
        self.calls.append((h.command, path, json.loads(body) if is_json and body else None))
        self.hub.requests.append(f"{h.command} {h.path}")
        user = self._user(h)
        if user is None:
            return self._send(h, 401, message="Invalid user token")
        if path == "/api/whoami-v2":
            return self._send(h, 200, {"type": "user", "name": user["name"],
                                       "orgs": [{"name": o} for o in user.get("orgs", [])]})
        if path == "/api/validate-yaml":
            return self._validate_card(h, json.loads(body))
        if path in ("/api/repos/create", "/api/repos/delete"):
            p = json.loads(body)
            repo_id = f"{p.get('organization') or user['name']}/{p['name']}"
            if repo_id.split("/")[0] not in self._namespaces(user):
                return self._send(h, 403, message=f'You don\'t have the rights to create a {p.get("type")} under the '
                                                  f'namespace "{repo_id.split("/")[0]}"')
            if path.endswith("delete"):
                if self.repos.pop(repo_id, None) is None:
                    return self._send(h, 404, message="Repository not found")
                return self._send(h, 200, {})
            if repo_id in self.repos:
                return self._send(h, 409, message="You already created this space repo")
            self.repos[repo_id] = {"type": p.get("type"), "sdk": p.get("sdk"), "visibility": p.get("visibility"),
                                   "hardware": p.get("hardware"), "files": {}, "secrets": {}, "variables": {},
                                   "commits": []}
            return self._send(h, 200, {"url": f"{self.hub.url}/spaces/{repo_id}", "name": repo_id})
        m = re.match(r"^/api/spaces/([^/]+/[^/]+)/(secrets|variables|hardware|tree|preupload|commit)(/.*)?$", path)
        if not m:
            return self._send(h, 404, message=f"no such route {path}")
        repo_id, what = m.group(1), m.group(2)
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._send(h, 404, message="Repository not found")
        if h.command != "GET" and repo_id.split("/")[0] not in self._namespaces(user):
            return self._send(h, 403, message="You don't have write access to this repo")
        if what in ("secrets", "variables"):
            p = json.loads(body)
            repo[what][p["key"]] = p["value"]
            if what == "secrets":
                return self._send(h, 200, {})
            return self._send(h, 200, {k: {"value": v} for k, v in repo["variables"].items()})
        if what == "hardware":
            repo["hardware"] = json.loads(body)["flavor"]
            return self._send(h, 200, {"stage": "BUILDING", "hardware": {"current": None, "requested": repo["hardware"]}})
        if what == "tree":
            return self._send(h, 200, [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                       for f, d in sorted(repo["files"].items())])
        if what == "preupload":
            files = json.loads(body)["files"]
            return self._send(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                 for f in files]})
        # commit: NDJSON, applied all at once or not at all
        if self.fail.get("commit") == "drop":
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
        files = dict(repo["files"])
        for it in items:
            v = it["value"]
            if it["key"] == "file":
                files[v["path"]] = base64.b64decode(v["content"])
            elif it["key"] == "deletedFile":
                files.pop(v["path"], None)
            elif it["key"] != "header":
                return self._send(h, 400, message=f"fake hub: unsupported commit item {it['key']}")
        repo["files"] = files
        oid = hashlib.sha1(body).hexdigest()
        repo["commits"].append({"oid": oid, "summary": items[0]["value"]["summary"]})
        return self._send(h, 200, {"commitUrl": f"{self.hub.url}/spaces/{repo_id}/commit/{oid}", "commitOid": oid,
                                   "pullRequestUrl": None})
