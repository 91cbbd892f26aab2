"""Stage `download`: CIFAR-10's binary tarball from params.yaml's `data.url` (http(s):// or
file://), resumed where it stopped, checked against `data.sha256` and `data.size` before
it is moved into place.
Details: docs/internals.md#download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tqdm import tqdm

from src.ground.cli import StageError, run_stage
from src.ground.paths import RAW_TARBALL

log = logging.getLogger(__name__)

TARGET = RAW_TARBALL
CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 10.0
RETRIES = 4
TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


class DownloadError(StageError):
    """The data could not be fetched or did not verify."""


def _ways_out(url: str) -> str:
    return (
        f"Could not get {url}. Two ways out:\n"
        "  1. a mirror: set data.url in params.yaml to any http(s):// or file:// URL that serves\n"
        "     the same file, e.g. `dvc exp run -S data.url=https://mirror.example/cifar-10-binary.tar.gz`\n"
        "     (a different file needs its own data.sha256 and data.size);\n"
        "  2. a copy you already have: set data.url=file:///absolute/path/to/cifar-10-binary.tar.gz."
    )


class _NoDowngradeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https to plain http."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlparse(req.full_url).scheme == "https" and urlparse(newurl).scheme != "https":
            raise DownloadError(f"refusing redirect from {req.full_url} to non-https {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_NoDowngradeRedirect)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, sha256: str, size: int | None, url: str) -> None:
    """Raise DownloadError (after deleting `path`) if size or hash differ."""
    actual_size = path.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"size {actual_size:,} bytes, expected {size:,}"
    else:
        actual = sha256_of(path)
        if actual != sha256:
            problem = f"sha256 {actual}, expected {sha256}"
    if problem:
        path.unlink()
        raise DownloadError(
            f"{url} gave a file that does not verify: {problem}. The partial file was deleted. "
            "If you use a mirror or a different copy on purpose, set data.sha256 (and data.size) "
            "to that file's own values."
        )


def _progress(total: int | None, initial: int) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="download",
        disable=not sys.stderr.isatty(),  # logs (CI, pipes) get start and end lines only
    )


def _copy_local(url: str, part: Path) -> None:
    source = Path(unquote(urlparse(url).path))
    if not source.is_file():
        raise DownloadError(f"{source} does not exist or is not a file.\n{_ways_out(url)}")
    with open(source, "rb") as src, open(part, "wb") as dst, _progress(source.stat().st_size, 0) as bar:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            bar.update(len(chunk))


def _fetch_http(url: str, part: Path, timeout: float, retries: int, backoff_s: float) -> None:
    """Stream `url` into `part`, resuming and retrying; returns when the body is complete."""
    attempt = 0
    reached_server = False
    while True:
        offset = part.stat().st_size if part.exists() else 0
        try:
            with _opener.open(_request_from(url, offset), timeout=timeout) as response:
                reached_server = True
                _append_body(response, part, offset)
                return
        except urllib.error.HTTPError as err:
            reached_server = True
            if err.code == 416 and offset:  # the .part file is already complete (or stale)
                log.info("server refused range from byte %d; starting over", offset)
                part.unlink()
                continue
            if err.code not in TRANSIENT_HTTP:
                raise DownloadError(f"HTTP {err.code} {err.reason} from {url}.\n{_ways_out(url)}") from None
            reason = f"HTTP {err.code} {err.reason}"
        except urllib.error.URLError as err:
            if isinstance(err.reason, DownloadError):
                raise err.reason from None
            if not reached_server:  # offline, no DNS, refused, connect timeout: fail fast
                raise DownloadError(f"cannot connect ({err.reason}).\n{_ways_out(url)}") from None
            reason = str(err.reason)
        except (TimeoutError, ConnectionError, HTTPException) as err:
            reason = f"{type(err).__name__}: {err}"
        attempt += 1
        if attempt > retries:
            raise _gave_up(url, part, retries, reason)
        delay = backoff_s * 2 ** (attempt - 1)
        log.warning("%s; retry %d/%d in %.1f s", reason, attempt, retries, delay)
        time.sleep(delay)


def _request_from(url: str, offset: int) -> urllib.request.Request:
    """A GET for the body from byte `offset` on, uncompressed so that offsets count file bytes."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return request


def _append_body(response: Any, part: Path, offset: int) -> None:
    """Append the response's body to `part`; a body cut short raises ConnectionResetError (a retry)."""
    total = _prepare_part(response, part, offset)
    start = part.stat().st_size if part.exists() else 0
    with open(part, "ab") as out, _progress(total, start) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))
    received = part.stat().st_size
    if total is not None and received < total:
        raise ConnectionResetError(f"connection closed after {received:,} of {total:,} bytes")


def _gave_up(url: str, part: Path, retries: int, reason: str) -> DownloadError:
    kept = part.stat().st_size if part.exists() else 0
    return DownloadError(
        f"gave up after {retries} retries ({reason}); the {kept:,} bytes received so far are "
        f"kept in {part} and the next run resumes from there.\n"
        f"{_ways_out(url)}"
    )


def _prepare_part(response: Any, part: Path, offset: int) -> int | None:
    """Check a response against the bytes already in `part`; return the expected total size."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            log.info("resuming at byte %d", offset)
            return int(match.group(3)) if match.group(3) != "*" else None
        log.info("server sent an unexpected range; starting over")
        part.unlink(missing_ok=True)
        raise ConnectionResetError("range mismatch")
    if offset:
        log.info("server ignored the range request; starting over")
    part.write_bytes(b"")  # a 200 carries the whole file: truncate what we had
    return int(length) if length is not None else None


def download(
    url: str,
    target: Path,
    sha256: str,
    size: int | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
    backoff_s: float = 1.0,
) -> Path:
    """Make `target` a verified copy of `url`; do nothing (no network) if it already is one."""
    target = Path(target)
    if target.exists():
        if (size is None or target.stat().st_size == size) and sha256_of(target) == sha256:
            log.info("%s is present and verified; nothing to download", target)
            return target
        raise DownloadError(
            f"{target} exists but does not match data.sha256/data.size; it is left untouched. "
            "Delete it (or move it away) and run again."
        )
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"unsupported URL scheme {scheme!r} in {url}: use http(s):// or file://")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log.info("downloading %s", url)
    started = time.monotonic()
    if scheme == "file":
        _copy_local(url, part)
    else:
        _fetch_http(url, part, timeout, retries, backoff_s)
    _verify(part, sha256, size, url)
    os.replace(part, target)
    seconds = time.monotonic() - started
    log.info(
        "verified %s (%s bytes, sha256 %s) in %.1f s", target, f"{target.stat().st_size:,}", sha256, seconds
    )
    return target


def main() -> None:
    from src.ground.params import load_params

    params = load_params()
    download(params.data.url, TARGET, params.data.sha256, params.data.size)


if __name__ == "__main__":
    run_stage(main)
