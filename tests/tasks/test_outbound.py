"""Tests for tasks_app.outbound against a real HTTP server on 127.0.0.1.

Plain pytest, no Django: run with `pytest tests/tasks/test_outbound.py -p no:django`.
Destinations that must be refused are never contacted, so no test needs the internet.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tasks_app import outbound
from tasks_app.errors import PermanentTaskError, TemporaryTaskError
from tasks_app.outbound import (
    DestinationRefusedError,
    OutboundPolicy,
    PermanentHTTPStatusError,
    TemporaryHTTPStatusError,
    check_destination,
    fetch,
)

# The test server is on loopback, so most tests need private networks allowed.
LOCAL = OutboundPolicy(allow_private_networks=True, timeout_seconds=2, total_timeout_seconds=5)
PUBLIC_ONLY = OutboundPolicy(timeout_seconds=2, total_timeout_seconds=5)


# ------------------------------------------------------------------- test server


class _Handler(BaseHTTPRequestHandler):
    """Routes: /json, /redirect?to=URL&status=302, /chain/N, /status/CODE,
    /bytes/N[?announce=0], /slow, /drip, /echo (any method)."""

    server: _RecordingServer

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet

    def _route(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.server.requests.append(self.path)
        segments = parts.path.strip("/").split("/")
        # The client may give up first (timeout and size tests do that).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._dispatch(segments, query)

    def _dispatch(self, segments: list[str], query: dict[str, str]) -> None:
        match segments:
            case ["json"]:
                self._send(200, b'{"ok": true}', {"Content-Type": "application/json"})
            case ["redirect"]:
                self._send(int(query.get("status", "302")), b"", {"Location": query["to"]})
            case ["chain", count]:
                remaining = int(count)
                location = f"/chain/{remaining - 1}" if remaining else None
                if location:
                    self._send(302, b"", {"Location": location})
                else:
                    self._send(200, b'{"ok": true}')
            case ["status", code]:
                self._send(int(code), f"status {code}".encode(), {"Retry-After": "7"})
            case ["bytes", size]:
                self._send_bytes(int(size), announce=query.get("announce") != "0")
            case ["slow"]:
                time.sleep(1.0)
                self._send(200, b"late")
            case ["drip"]:
                self._drip()
            case ["echo"]:
                self._echo()
            case _:
                self._send(404, b"no such route")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_bytes(self, size: int, *, announce: bool) -> None:
        # Without Content-Length an HTTP/1.0 body ends when the connection closes,
        # so the client can only find out it is too big by reading it.
        self.send_response(200)
        if announce:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        for start in range(0, size, 4096):
            self.wfile.write(b"x" * min(4096, size - start))

    def _drip(self) -> None:
        self.send_response(200)
        self.end_headers()
        for _ in range(30):
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.05)

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        report = {
            "method": self.command,
            "body_hex": body.hex(),
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }
        self._send(200, json.dumps(report).encode(), {"Content-Type": "application/json"})


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True  # a sleeping /slow handler must not block shutdown

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []


@pytest.fixture(scope="module")
def server() -> Iterator[_RecordingServer]:
    httpd = _RecordingServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def base_url(server: _RecordingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def port(server: _RecordingServer) -> int:
    return server.server_address[1]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names added to the returned dict resolve to the given addresses; other names
    (and the IP literals httpx connects to) go to the real resolver."""
    records: dict[str, list[str]] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in records:
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in records[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return records


# --------------------------------------------------------------- destination check


def test_a_host_with_only_public_addresses_passes_the_destination_check(fake_dns):
    fake_dns["api.example.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    addresses = check_destination("https://api.example.test/hook", policy=PUBLIC_ONLY)

    assert [str(address) for address in addresses] == [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
    ]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("[fc00::1]", "unique-local"),
        ("[fd12:3456::1]", "unique-local"),
        ("[fec0::1]", "site-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "private"),  # documentation range
    ],
)
def test_non_public_destinations_are_refused_by_default(host, reason):
    with pytest.raises(DestinationRefusedError, match=reason):
        check_destination(f"http://{host}/", policy=PUBLIC_ONLY)


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "[fd12::1]", "100.64.0.1"])
def test_non_public_destinations_are_allowed_when_the_policy_allows_private_networks(host):
    assert check_destination(f"http://{host}/", policy=LOCAL)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of 169.254.169.254
        "http://[fd00:ec2::254]/",  # AWS IPv6 metadata
        "http://100.100.100.200/",  # Alibaba Cloud metadata
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_when_private_networks_are_allowed(
    url,
):
    with pytest.raises(DestinationRefusedError):
        fetch("GET", url, policy=LOCAL)


def test_the_refusal_names_the_address_and_says_why():
    with pytest.raises(DestinationRefusedError) as caught:
        fetch("GET", "http://169.254.169.254/latest/meta-data/", policy=LOCAL)

    assert str(caught.value) == "destination 169.254.169.254 is link-local (cloud metadata); refused"
    assert isinstance(caught.value, PermanentTaskError)


def test_a_host_name_is_refused_if_any_of_its_addresses_is_link_local(fake_dns):
    fake_dns["sneaky.example.test"] = ["93.184.216.34", "169.254.169.254"]

    with pytest.raises(DestinationRefusedError) as caught:
        fetch("GET", "http://sneaky.example.test/", policy=LOCAL)

    assert "sneaky.example.test" in str(caught.value)
    assert "169.254.169.254" in str(caught.value)


def test_a_host_name_that_does_not_resolve_is_a_temporary_error(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)

    with pytest.raises(TemporaryTaskError, match="could not resolve nowhere.example.test"):
        fetch("GET", "https://nowhere.example.test/", policy=PUBLIC_ONLY)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "//example.com/no-scheme",
        "http:///no-host",
    ],
)
def test_urls_other_than_http_and_https_with_a_host_are_refused(url):
    with pytest.raises(PermanentTaskError):
        fetch("GET", url, policy=LOCAL)


# ------------------------------------------------------------ reaching the server


def test_the_loopback_server_is_refused_by_default_and_never_contacted(server, base_url):
    with pytest.raises(DestinationRefusedError, match="loopback"):
        fetch("GET", f"{base_url}/json?probe=refused", policy=PUBLIC_ONLY)

    assert "/json?probe=refused" not in server.requests


def test_the_loopback_server_is_reachable_when_private_networks_are_allowed(base_url):
    response = fetch("GET", f"{base_url}/json", policy=LOCAL)

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["Content-Type"] == "application/json"
    assert response.final_url == f"{base_url}/json"
    assert response.elapsed_seconds >= 0


def test_a_post_body_arrives_byte_for_byte_with_its_headers(base_url):
    body = b'{"event":"done",  "name":"caf\xc3\xa9"}\n\x00\xff'
    headers = {"Content-Type": "application/json", "X-Signature": "sha256=abc123"}

    response = fetch("POST", f"{base_url}/echo", policy=LOCAL, content=body, headers=headers)

    echoed = response.json()
    assert echoed["method"] == "POST"
    assert bytes.fromhex(echoed["body_hex"]) == body
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["headers"]["x-signature"] == "sha256=abc123"


def test_the_connection_goes_to_the_checked_address_and_keeps_the_host_name(fake_dns, monkeypatch, port):
    fake_dns["hooks.example.test"] = ["127.0.0.1"]
    lookups: list[str] = []
    resolve = socket.getaddrinfo  # the fake installed by fake_dns

    def counting_getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting_getaddrinfo)
    response = fetch("GET", f"http://hooks.example.test:{port}/echo", policy=LOCAL)

    assert response.json()["headers"]["host"] == f"hooks.example.test:{port}"
    assert response.final_url == f"http://hooks.example.test:{port}/echo"
    # Resolved once, for the check; the connection used the checked IP.
    assert lookups.count("hooks.example.test") == 1


def test_a_refused_connection_is_a_temporary_error():
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(TemporaryTaskError, match="ConnectError"):
        fetch("GET", f"http://127.0.0.1:{closed_port}/", policy=LOCAL)


# ------------------------------------------------------------------ https pinning


def _issue_certificate(hostname: str, directory) -> tuple[str, str, str]:
    """A throwaway CA and a certificate for `hostname` signed by it, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def build(subject, issuer, public_key, signing_key, *, is_ca, san=None):
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = build("test CA", "test CA", ca_key.public_key(), ca_key, is_ca=True)
    leaf = build(hostname, "test CA", leaf_key.public_key(), ca_key, is_ca=False, san=hostname)
    pem = serialization.Encoding.PEM
    paths = {name: str(directory / f"{name}.pem") for name in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(leaf.public_bytes(pem))
    with open(paths["key"], "wb") as f:
        key_format = serialization.PrivateFormat.PKCS8
        f.write(leaf_key.private_bytes(pem, key_format, serialization.NoEncryption()))
    return paths["ca"], paths["cert"], paths["key"]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[tuple[int, str, list[str]]]:
    """An HTTPS /echo server for secure.example.test; yields (port, CA file, SNI names seen)."""
    ca_file, cert_file, key_file = _issue_certificate("secure.example.test", tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    sni_seen: list[str] = []
    context.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    httpd = _RecordingServer()
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], ca_file, sni_seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def trust_test_ca(monkeypatch, tls_server) -> None:
    """Make outbound's httpx clients trust the test CA (and nothing else changes)."""
    context = ssl.create_default_context(cafile=tls_server[1])
    monkeypatch.setattr(httpx, "Client", functools.partial(httpx.Client, verify=context))


def test_https_to_a_pinned_address_still_verifies_the_certificate_for_the_host_name(
    fake_dns, trust_test_ca, tls_server
):
    port, _, sni_seen = tls_server
    fake_dns["secure.example.test"] = ["127.0.0.1"]

    response = fetch("GET", f"https://secure.example.test:{port}/echo", policy=LOCAL)

    assert response.json()["headers"]["host"] == f"secure.example.test:{port}"
    assert sni_seen[-1] == "secure.example.test"


def test_https_to_a_host_the_certificate_does_not_cover_is_a_connection_error(
    fake_dns, trust_test_ca, tls_server
):
    port = tls_server[0]
    fake_dns["impostor.example.test"] = ["127.0.0.1"]

    with pytest.raises(TemporaryTaskError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch("GET", f"https://impostor.example.test:{port}/echo", policy=LOCAL)


# ---------------------------------------------------------------------- redirects


def test_a_redirect_is_followed_and_the_final_url_reported(base_url):
    response = fetch("GET", f"{base_url}/redirect?to=/json", policy=LOCAL)

    assert response.json() == {"ok": True}
    assert response.final_url == f"{base_url}/json"


def test_a_redirect_to_the_metadata_service_is_refused_even_when_private_networks_are_allowed(
    server, base_url
):
    target = "http://169.254.169.254/latest/meta-data/iam/"

    with pytest.raises(DestinationRefusedError, match="169.254.169.254"):
        fetch("GET", f"{base_url}/redirect?to={target}", policy=LOCAL)


def test_a_redirect_from_a_public_host_to_a_private_address_is_refused(monkeypatch, base_url):
    # Pretend the test server is on the public internet; everything else is judged as usual.
    real_reason = outbound._refusal_reason
    monkeypatch.setattr(
        outbound,
        "_refusal_reason",
        lambda address, policy: None if str(address) == "127.0.0.1" else real_reason(address, policy),
    )
    assert fetch("GET", f"{base_url}/json", policy=PUBLIC_ONLY).status_code == 200

    with pytest.raises(DestinationRefusedError, match="10.0.0.5 is private"):
        fetch("GET", f"{base_url}/redirect?to=http://10.0.0.5/admin", policy=PUBLIC_ONLY)


def test_a_redirect_to_a_non_http_scheme_is_refused(base_url):
    with pytest.raises(PermanentTaskError, match="only http and https"):
        fetch("GET", f"{base_url}/redirect?to=file:///etc/passwd", policy=LOCAL)


def test_up_to_max_redirects_are_followed(base_url):
    response = fetch("GET", f"{base_url}/chain/3", policy=LOCAL)

    assert response.status_code == 200
    assert response.final_url == f"{base_url}/chain/0"


def test_more_than_max_redirects_is_a_permanent_error(base_url):
    with pytest.raises(PermanentTaskError, match="more than 3 redirects"):
        fetch("GET", f"{base_url}/chain/4", policy=LOCAL)


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_post_redirected_with_301_302_or_303_becomes_a_get_without_body(base_url, status):
    response = fetch(
        "POST",
        f"{base_url}/redirect?to=/echo&status={status}",
        policy=LOCAL,
        content=b"payload",
        headers={"Content-Type": "text/plain"},
    )

    echoed = response.json()
    assert echoed["method"] == "GET"
    assert echoed["body_hex"] == ""
    assert "content-type" not in echoed["headers"]


@pytest.mark.parametrize("status", [307, 308])
def test_a_post_redirected_with_307_or_308_is_repeated_with_the_same_body(base_url, status):
    response = fetch(
        "POST", f"{base_url}/redirect?to=/echo&status={status}", policy=LOCAL, content=b"payload"
    )

    echoed = response.json()
    assert echoed["method"] == "POST"
    assert bytes.fromhex(echoed["body_hex"]) == b"payload"


def test_credentials_are_not_forwarded_to_another_host_on_redirect(fake_dns, base_url, port):
    fake_dns["other.example.test"] = ["127.0.0.1"]
    target = f"http://other.example.test:{port}/echo"

    response = fetch(
        "GET",
        f"{base_url}/redirect?to={target}",
        policy=LOCAL,
        headers={"Authorization": "Bearer secret", "X-Trace": "kept"},
    )

    echoed_headers = response.json()["headers"]
    assert "authorization" not in echoed_headers
    assert echoed_headers["x-trace"] == "kept"


# --------------------------------------------------------------- size and time


def test_a_response_of_exactly_the_limit_is_returned_whole(base_url):
    policy = OutboundPolicy(allow_private_networks=True, max_response_bytes=10_000)

    response = fetch("GET", f"{base_url}/bytes/10000?announce=0", policy=policy)

    assert response.content == b"x" * 10_000


@pytest.mark.parametrize("announce", ["1", "0"], ids=["with-content-length", "without"])
def test_a_response_larger_than_the_limit_is_a_permanent_error(base_url, announce):
    policy = OutboundPolicy(allow_private_networks=True, max_response_bytes=10_000)

    with pytest.raises(PermanentTaskError, match="exceeds 10000 bytes"):
        fetch("GET", f"{base_url}/bytes/200000?announce={announce}", policy=policy)


def test_a_slow_response_times_out_as_a_temporary_error(base_url):
    policy = OutboundPolicy(allow_private_networks=True, timeout_seconds=0.2)
    started = time.monotonic()

    with pytest.raises(TemporaryTaskError, match="timed out"):
        fetch("GET", f"{base_url}/slow", policy=policy)

    assert time.monotonic() - started < 0.9


def test_a_dribbling_response_is_cut_off_by_the_overall_deadline(base_url):
    policy = OutboundPolicy(allow_private_networks=True, timeout_seconds=1, total_timeout_seconds=0.3)

    with pytest.raises(TemporaryTaskError, match="overall deadline"):
        fetch("GET", f"{base_url}/drip", policy=policy)


# ---------------------------------------------------------------- HTTP statuses


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_429_are_temporary_and_carry_status_and_retry_after(base_url, status):
    with pytest.raises(TemporaryHTTPStatusError) as caught:
        fetch("GET", f"{base_url}/status/{status}", policy=LOCAL)

    assert caught.value.status_code == status
    assert caught.value.retry_after_seconds == 7
    assert caught.value.response.content == f"status {status}".encode()
    assert isinstance(caught.value, TemporaryTaskError)


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_other_client_errors_are_permanent(base_url, status):
    with pytest.raises(PermanentHTTPStatusError) as caught:
        fetch("GET", f"{base_url}/status/{status}", policy=LOCAL)

    assert caught.value.status_code == status
    assert isinstance(caught.value, PermanentTaskError)


@pytest.mark.parametrize("status", [404, 500])
def test_error_responses_are_returned_when_the_caller_asks_for_them(base_url, status):
    response = fetch("GET", f"{base_url}/status/{status}", policy=LOCAL, raise_for_status=False)

    assert response.status_code == status
    assert response.content == f"status {status}".encode()


def test_a_body_that_is_not_json_is_a_permanent_error_when_parsed(base_url):
    response = fetch("GET", f"{base_url}/bytes/10", policy=LOCAL)

    with pytest.raises(PermanentTaskError, match="not JSON"):
        response.json()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), (None, None), ("soon", None), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value, expected):
    assert outbound._retry_after_seconds(value) == expected


def test_a_policy_with_nonsense_limits_is_rejected_at_construction():
    with pytest.raises(ValueError):
        OutboundPolicy(timeout_seconds=0)
