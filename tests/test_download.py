"""The download stage against a real HTTP server on 127.0.0.1 and file:// URLs."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from src.stages.download import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Behaviour:
    """What the test server does; `requests` records each Range header it saw."""

    honour_range: bool = True
    drop_after: int | None = None  # first response: close the connection after this many bytes
    always_drop_after: int | None = None  # every response: likewise
    fail_with: list[int] = field(default_factory=list)  # status codes to answer first, in order
    requests: list[str | None] = field(default_factory=list)
    bytes_sent: int = 0


@pytest.fixture()
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            behaviour.requests.append(self.headers.get("Range"))
            if self.path != "/cifar.tar.gz":
                self.send_error(404)
                return
            if behaviour.fail_with:
                self.send_error(behaviour.fail_with.pop(0))
                return
            start = 0
            if behaviour.honour_range and self.headers.get("Range"):
                start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
            else:
                self.send_response(200)
            body = PAYLOAD[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if behaviour.drop_after is not None:
                body, behaviour.drop_after = body[: behaviour.drop_after], None
            if behaviour.always_drop_after is not None:
                body = body[: behaviour.always_drop_after]
            behaviour.bytes_sent += len(body)  # counted before sending: the client may finish first
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/cifar.tar.gz", behaviour
    httpd.shutdown()
    httpd.server_close()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_http_download_verifies_and_moves_into_place(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = download(url, tmp_path / "raw" / "c.tar.gz", SHA, len(PAYLOAD), backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path / "raw") == ["c.tar.gz"]
    assert behaviour.requests == [None]


def test_present_verified_file_needs_no_network(tmp_path: Path) -> None:
    target = tmp_path / "c.tar.gz"
    target.write_bytes(PAYLOAD)
    # port 9 on 127.0.0.1 has no server: any network access would fail
    assert download("http://127.0.0.1:9/x", target, SHA, len(PAYLOAD)) == target


def test_present_but_wrong_file_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "c.tar.gz"
    target.write_bytes(b"someone else's file")
    with pytest.raises(DownloadError, match="left untouched"):
        download("http://127.0.0.1:9/x", target, SHA, None)
    assert target.read_bytes() == b"someone else's file"


def test_wrong_hash_names_both_hashes_and_url_and_leaves_nothing(server, tmp_path: Path) -> None:
    url, _ = server
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "c.tar.gz", wrong, None, backoff_s=0)
    message = str(info.value)
    assert SHA in message and wrong in message and url in message
    assert _leftovers(tmp_path) == []


def test_wrong_size_is_reported(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DownloadError, match=r"size 1,048,576 bytes, expected 1,000"):
        download(url, tmp_path / "c.tar.gz", SHA, 1000, backoff_s=0)
    assert _leftovers(tmp_path) == []


def test_dropped_connection_resumes_with_range(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.drop_after = 300_000
    target = download(url, tmp_path / "c.tar.gz", SHA, len(PAYLOAD), backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    assert behaviour.requests == [None, "bytes=300000-"]
    assert behaviour.bytes_sent == len(PAYLOAD)  # nothing downloaded twice


def test_server_ignoring_range_starts_over(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.honour_range = False
    behaviour.drop_after = 300_000
    target = download(url, tmp_path / "c.tar.gz", SHA, len(PAYLOAD), backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    assert behaviour.requests == [None, "bytes=300000-"]
    assert behaviour.bytes_sent == 300_000 + len(PAYLOAD)


def test_interrupted_part_file_is_resumed_by_the_next_run(server, tmp_path: Path) -> None:
    url, behaviour = server
    (tmp_path / "c.tar.gz.part").write_bytes(PAYLOAD[:500_000])
    download(url, tmp_path / "c.tar.gz", SHA, len(PAYLOAD), backoff_s=0)
    assert behaviour.requests == ["bytes=500000-"]
    assert (tmp_path / "c.tar.gz").read_bytes() == PAYLOAD


def test_transient_500_is_retried(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.fail_with = [500, 503]
    download(url, tmp_path / "c.tar.gz", SHA, len(PAYLOAD), backoff_s=0)
    assert len(behaviour.requests) == 3


def test_persistent_500_gives_up_with_a_clear_error(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.fail_with = [500] * 10
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "c.tar.gz", SHA, None, retries=2, backoff_s=0)
    assert "gave up after 2 retries (HTTP 500" in str(info.value) and "mirror" in str(info.value)
    assert len(behaviour.requests) == 3
    assert not (tmp_path / "c.tar.gz").exists()


def test_404_is_not_retried(server, tmp_path: Path) -> None:
    url, behaviour = server
    with pytest.raises(DownloadError) as info:
        download(url.replace("cifar", "missing"), tmp_path / "c.tar.gz", SHA, None, backoff_s=0)
    message = str(info.value)
    assert "HTTP 404" in message and "data.url" in message and "file://" in message
    assert len(behaviour.requests) == 1
    assert _leftovers(tmp_path) == []


def test_unreachable_port_fails_fast_with_the_ways_out(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(f"http://127.0.0.1:{port}/c.tar.gz", tmp_path / "c.tar.gz", SHA, None)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "cannot connect" in message and "mirror" in message and "file:///" in message
    assert _leftovers(tmp_path) == []


def test_file_url_copy_and_missing_file(tmp_path: Path) -> None:
    source = tmp_path / "mirror" / "c.tar.gz"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    target = download(source.as_uri(), tmp_path / "raw" / "c.tar.gz", SHA, len(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="does not exist"):
        download((tmp_path / "nope.tar.gz").as_uri(), tmp_path / "raw2" / "c.tar.gz", SHA, None)


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        download("ftp://example.org/c.tar.gz", tmp_path / "c.tar.gz", SHA, None)


def test_always_truncated_body_gives_up_and_never_fills_the_target(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.honour_range = False
    behaviour.always_drop_after = 1000
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "c.tar.gz", SHA, len(PAYLOAD), retries=2, backoff_s=0)
    assert "gave up after 2 retries (ConnectionResetError: connection closed after 1,000 of 1,048,576" in str(
        info.value
    )
    assert len(behaviour.requests) == 3
    assert not (tmp_path / "c.tar.gz").exists()  # only the .part file, kept for the next run to resume


def test_https_to_http_redirect_is_refused() -> None:
    import urllib.request

    from src.stages.download import _NoDowngradeRedirect

    request = urllib.request.Request("https://example.org/c.tar.gz")
    with pytest.raises(
        DownloadError, match=r"refusing redirect from https://example\.org/c\.tar\.gz to non-https"
    ):
        _NoDowngradeRedirect().redirect_request(
            request, None, 302, "Found", {}, "http://example.org/c.tar.gz"
        )
    allowed = _NoDowngradeRedirect().redirect_request(
        request, None, 302, "Found", {}, "https://cdn.example.org/c"
    )
    assert allowed is not None and allowed.full_url == "https://cdn.example.org/c"
