"""A real S3 API on 127.0.0.1 for the remote tests: moto's server, with credentials enforced.

`start()` runs moto's ThreadedMotoServer in this process (as dvc-s3's own tests do), creates a
throwaway IAM user with an access key and a bucket, then turns moto's authentication on, so a
wrong key is refused as AWS would refuse it. `DyingProxy` sits in front of it and goes away after
a number of uploads: the server gone mid-push.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REGION = "us-east-1"
BUCKET = "team"


@dataclass
class S3Server:
    server: Any
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def stop(self) -> None:
        _authentication(self.endpoint, after="inf")
        self.server.stop()


def start() -> S3Server:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _authentication(endpoint, after="inf")  # off while the user is made (moto's switch is process-wide)
    # and no users or buckets of an earlier server in this process (moto's state is process-wide too)
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    ).close()
    bootstrap = {
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
        "region_name": REGION,
    }
    iam = boto3.client("iam", endpoint_url=endpoint, **bootstrap)
    iam.create_user(UserName="ci")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="ci", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    # from now on every request must be signed with a key the server knows
    _authentication(endpoint, after="0")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )
    s3.create_bucket(Bucket=BUCKET)
    return S3Server(server, endpoint, key["AccessKeyId"], key["SecretAccessKey"])


def _authentication(endpoint: str, after: str) -> None:
    """Make moto check every request's signature after `after` more requests ("inf": never)."""
    reset = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=after.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(reset).close()


_HOP_HEADERS = ("transfer-encoding", "connection", "content-length", "server", "date")


class _Forward(BaseHTTPRequestHandler):
    """Forwards each request to the DyingProxy's target (the server's `proxy`) until it dies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        proxy: DyingProxy = self.server.proxy  # type: ignore[attr-defined]
        if proxy.dead:
            self.close_connection = True  # no answer: the connection just closes
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(proxy.target, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        # HEAD: the object's size, as the server said; otherwise the body's
        size = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", size or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()
        if self.command == "PUT":
            proxy.puts += 1
            if proxy.uploads is not None and proxy.puts >= proxy.uploads:
                proxy.die()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward


class DyingProxy:
    """An HTTP proxy on 127.0.0.1 in front of `target` that stops answering after `uploads` PUT
    requests: it closes its port and drops the connections it has, as a server that goes away."""

    def __init__(self, target: str, uploads: int | None = None, port: int = 0) -> None:
        self.target = target.removeprefix("http://")
        self.uploads, self.puts, self.dead = uploads, 0, False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _Forward)
        self.httpd.proxy = self  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def die(self) -> None:
        """Stop answering and close the port (from any thread but the serving one)."""
        self.dead = True
        threading.Thread(target=self._close, daemon=True).start()

    def _close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def stop(self) -> None:
        if not self.dead:
            self.dead = True
            self._close()
