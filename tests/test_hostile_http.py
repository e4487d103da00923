"""Hostile HTTP clients against a real ``python app.py``: slow clients, open redirects, tracebacks,
JPEGs too short for their declared size.

Raw sockets and http.client (no client library that would fix up what we send).
The server runs with its default limits; each test ends by checking that it
still answers a normal request.
"""
from __future__ import annotations

import http.client
import io
import json
import re
import select
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

from testkit.assets import feat_data
from testkit.hostile_image import jpeg_declaring as _jpeg_declaring
from testkit.server import ONE_ADDRESS_MANY_CLIENTS, start_app

LEAKS = re.compile(r"Traceback|File \"|/work|site-packages|\.py\b|/tmp/|/home/", re.I)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    for d in ("tmp", "gradio"):
        (tmp / d).mkdir()
    # every request here comes from one address: its own checks must never be refused as a flood
    env = {"TMPDIR": str(tmp / "tmp"), "GRADIO_TEMP_DIR": str(tmp / "gradio"), **ONE_ADDRESS_MANY_CLIENTS}
    with start_app(tmp, env) as (url, proc):
        u = urllib.parse.urlsplit(url)
        yield {"url": url, "host": u.hostname, "port": u.port, "tmp": tmp, "proc": proc}


def _request(server, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection(server["host"], server["port"], timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def _still_serving(server):
    status, _, body = _request(server, "GET", "/")
    assert status == 200 and b"<html" in body.lower()


# -- 5: slow clients ---------------------------------------------------------------------------

def _trickle(server, first: bytes, drip: bytes | None, limit_s: float, every_s: float = 2.0):
    """Send ``first``, then ``drip`` every ``every_s``; (seconds until the server closed or None, reply)."""
    s = socket.create_connection((server["host"], server["port"]))
    got = b""
    t0 = time.monotonic()
    try:
        if first:
            s.sendall(first)
        while time.monotonic() - t0 < limit_s:
            readable, _, _ = select.select([s], [], [], every_s)
            if readable:
                try:
                    chunk = s.recv(4096)
                except ConnectionError:
                    return time.monotonic() - t0, got
                if not chunk:
                    return time.monotonic() - t0, got
                got += chunk
                continue
            if drip:
                try:
                    s.sendall(drip)
                except OSError:
                    return time.monotonic() - t0, got
        return None, got
    finally:
        s.close()


def _steady_upload(server, out: dict, seconds: float = 14.0):
    """A real photo uploaded in small pieces over ``seconds`` (about 6 KB/s): a slow but honest client."""
    photo = (feat_data() / "single_face.jpg").read_bytes()
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"face.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--xyz--\r\n")
    head = (f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    s = socket.create_connection((server["host"], server["port"]))
    try:
        s.sendall(head)
        n = 40
        step = -(-len(body) // n)
        for k in range(0, len(body), step):
            s.sendall(body[k:k + step])
            time.sleep(seconds / n)
        s.settimeout(30)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        out["reply"] = reply
    except OSError as exc:
        out["reply"] = repr(exc).encode()
    finally:
        s.close()


def test_slow_headers_and_bodies_are_closed(server):
    bound = 25.0  # defaults: headers within 10 s; bodies at >= 1 KB/s after a 10 s grace
    runs = {
        "silent": (b"", None),  # connects and sends nothing
        "headers": (b"GET / HTTP/1.1\r\nHost: x\r\n", b"X-Slow: 1\r\n"),  # a header line every 2 s
        # the same on a kept-alive connection, after one complete request
        "kept-alive headers": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n", b"X-Slow: 1\r\n"),
        "body": (b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"files\"; "
                 b"filename=\"a.txt\"\r\n\r\n", b"a"),  # a body byte every 2 s
        "json body": (b"POST /gradio_api/component_server HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 5000\r\n\r\n{", b" "),
    }
    results: dict = {}
    threads = [threading.Thread(target=lambda k=k, a=a: results.__setitem__(k, _trickle(server, a[0], a[1], bound + 5)))
               for k, a in runs.items()]
    honest: dict = {}
    threads.append(threading.Thread(target=_steady_upload, args=(server, honest)))
    for t in threads:
        t.start()
    time.sleep(3)
    _still_serving(server)  # while they trickle
    for t in threads:
        t.join()
    times = {name: closed_after for name, (closed_after, _) in results.items()}
    print("slow clients closed after (s):", times)
    assert all(t is not None and t <= bound for t in times.values()), f"closed after (None: still open): {times}"
    for name, (_, reply) in results.items():
        assert not LEAKS.search(reply.decode(errors="replace")), f"{name}: {reply[:300]!r}"
    assert results["headers"][1].startswith(b"HTTP/1.1 408")
    reply = honest["reply"]
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]  # a slow but steady upload is not cut off
    assert b"face.jpg" in reply
    _still_serving(server)


# -- 6: open redirect --------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "http://evil.example/x", "https://evil.example/x", "HTTPS://evil.example/x", "hTtP://evil.example",
    "https%3A%2F%2Fevil.example%2Fx", "http:%2F%2Fevil.example", "//evil.example/x", "/\\evil.example",
    "%2F%2Fevil.example", "%20https://evil.example", "javascript:alert(1)", "ftp://evil.example/x",
])
def test_file_route_never_redirects_to_urls(server, target):
    for method in ("GET", "HEAD"):
        status, headers, body = _request(server, method, "/gradio_api/file=" + target)
        assert not 300 <= status < 400, f"{target}: {status} -> {headers.get('location')}"
        assert status in (400, 403, 404), (target, status)
        assert "location" not in {k.lower() for k in headers}
        assert b"evil.example" not in body or status != 200


def test_local_output_file_still_downloads(server):
    out = server["tmp"] / "out" / "20260101-000000-abcd1234"
    out.mkdir(parents=True, exist_ok=True)
    f = out / "clip_timeline.csv"
    f.write_text("time_s,track_id,label\n0.0,1,happy\n")
    status, _, body = _request(server, "GET", "/gradio_api/file=" + urllib.parse.quote(str(f)))
    assert status == 200 and body == f.read_bytes()
    status, _, _ = _request(server, "GET", "/gradio_api/file=" + urllib.parse.quote(str(server["tmp"] / "server.log")))
    assert status in (403, 404)  # outside allowed_paths: still refused
    _still_serving(server)


# -- 7: no stack traces ------------------------------------------------------------------------

MALFORMED = [
    ("application/json", b"not json"),
    ("application/json", b"{}"),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b"null"),
    ("application/json", b'{"session_hash": "nope", "component_id": 1, "fn_name": "x", "data": null}'),
    ("application/json", b'{"session_hash": 5, "component_id": "a", "fn_name": [], "data": {}}'),
    ("application/json", b'{"session_hash": "s", "component_id": 99999999, "fn_name": "__init__", "data": 1}'),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\nxx\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\ngarbage without end"),
    ("multipart/form-data", b"no boundary at all"),
    ("text/plain", b"\x00\x01\x02"),
]


@pytest.mark.parametrize("ctype,body", MALFORMED, ids=[f"body{i}" for i in range(len(MALFORMED))])
def test_malformed_component_server_bodies_leak_nothing(server, ctype, body):
    status, _, reply = _request(server, "POST", "/gradio_api/component_server",
                                      body=body, headers={"Content-Type": ctype})
    text = reply.decode(errors="replace")
    assert not LEAKS.search(text), f"{status}: {text[:400]}"
    assert status in (400, 404, 405, 422, 500), status
    if status != 500:
        assert json.loads(text)["detail"]  # a user's mistake is named in one sentence


def test_server_serves_after_malformed_bodies(server):
    _still_serving(server)
    log = (server["tmp"] / "server.log").read_text(errors="replace")
    assert "component_server" in log  # the details went to the server log


# -- 2c: images whose data does not cover their declared size ----------------------------------

def _analyze(server, path: Path):
    from gradio_client import Client, handle_file

    client = server.get("client") or Client(server["url"], verbose=False)
    server["client"] = client
    return client.predict(handle_file(str(path)), api_name="/analyze_image")


def test_jpegs_too_short_for_their_size_are_refused(server, tmp_path):
    from gradio_client.exceptions import AppError

    photo = (feat_data() / "single_face.jpg").read_bytes()
    rgb = Image.open(io.BytesIO(photo)).convert("RGB")
    prog = io.BytesIO()
    rgb.save(prog, "JPEG", progressive=True, quality=90)
    cases = {
        "header_only_7000.jpg": _jpeg_declaring(photo, 7000, 7000, keep_scan=0),  # the 629-byte kind
        "claims_7000.jpg": _jpeg_declaring(photo, 7000, 7000, keep_scan=None),  # a whole photo's data, 7000x7000 header
        "prog_claims_6000.jpg": _jpeg_declaring(prog.getvalue(), 6000, 6000, keep_scan=200),
        "cut_no_end.jpg": photo[: len(photo) // 3],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(AppError, match=re.escape(name) + r" is truncated or corrupt"):
            _analyze(server, p)
    png = io.BytesIO()
    rgb.save(png, "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(png.getvalue()[: len(png.getvalue()) // 3])
    with pytest.raises(AppError, match=r"cut\.png is truncated or corrupt"):
        _analyze(server, p)
    # complete files still work: the photo, its progressive re-encoding, a PNG
    for name, data in {"face.jpg": photo, "face_prog.jpg": prog.getvalue(), "face.png": png.getvalue()}.items():
        p = tmp_path / name
        p.write_bytes(data)
        assert len(_analyze(server, p)["faces"]) == 1, name
    _still_serving(server)


def test_malformed_upload_is_a_message(server):
    status, _, reply = _request(server, "POST", "/gradio_api/upload", body=b"--b\r\ngarbage\r\n",
                                headers={"Content-Type": "multipart/form-data; boundary=x"})
    text = reply.decode(errors="replace")
    assert not LEAKS.search(text), f"{status}: {text[:400]}"
    assert status == 400 and json.loads(text)["detail"]
    _still_serving(server)


def test_jpeg_cut_short_with_an_end_marker_is_refused(server, tmp_path):
    """A photo cut to a tenth of its data with an end-of-image marker appended (looks complete)."""
    from gradio_client.exceptions import AppError

    photo = (feat_data() / "single_face.jpg").read_bytes()
    p = tmp_path / "cut_eoi.jpg"
    p.write_bytes(photo[: len(photo) // 10] + b"\xff\xd9")
    with pytest.raises(AppError, match=r"cut_eoi\.jpg is truncated or corrupt"):
        _analyze(server, p)
    _still_serving(server)


def _rss_mb(proc) -> float:
    import psutil

    p = psutil.Process(proc.pid)
    return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20


def test_a_slow_download_holds_no_worker_and_no_memory(server):
    """A client that asks for a 40 MB result file and reads it at a crawl (a tiny receive window):
    the file is streamed in chunks, so the server holds one socket, not the file in memory, and
    analyses and pages are served meanwhile."""
    out = server["tmp"] / "out" / "20260101-000000-slowread"
    out.mkdir(parents=True, exist_ok=True)
    big = out / "annotated.mp4"
    big.write_bytes(b"\0" * (40 << 20))
    rss0 = _rss_mb(server["proc"])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((server["host"], server["port"]))
    s.sendall(f"GET /gradio_api/file={urllib.parse.quote(str(big))} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        head = s.recv(1024)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        t0 = time.monotonic()
        for _ in range(3):  # a few pages and an analysis while the download crawls
            _still_serving(server)
        photo = server["tmp"] / "slow_face.jpg"
        photo.write_bytes((feat_data() / "single_face.jpg").read_bytes())
        assert len(_analyze(server, photo)["faces"]) == 1
        served_s = time.monotonic() - t0
        rss1 = _rss_mb(server["proc"])
        print(f"\nslow download: others served in {served_s:.2f} s; RSS {rss0:.0f} -> {rss1:.0f} MB")
        assert rss1 - rss0 < 40 * 0.75, (rss0, rss1)  # the file is not held in memory
    finally:
        s.close()
    _still_serving(server)


def test_memory_stays_bounded_after_the_attacks(server):
    """Runs last in this module: after every attack above the server's memory is within a bound."""
    rss = _rss_mb(server["proc"])
    print(f"\nserver RSS after the hostile HTTP suite: {rss:.0f} MB")
    assert rss < 1500, rss
    _still_serving(server)
