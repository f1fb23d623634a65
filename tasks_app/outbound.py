"""Outbound HTTP for background tasks: guarded against SSRF, bounded in size and time.

Every request a task makes to a URL a user gave us (polling an endpoint, POSTing a
webhook) goes through `fetch()`. It

* allows only http and https;
* resolves the host itself and refuses the request if ANY resolved address is
  link-local or a cloud metadata address (always), or private / loopback /
  reserved / ... (unless the policy allows private networks);
* connects to the address it checked, so DNS rebinding between check and connect
  cannot redirect the request (see `_send_to_first_reachable`);
* follows redirects itself, re-running the check on every hop;
* stops reading once the body exceeds the policy's byte limit, and enforces a
  per-operation timeout plus an overall deadline across all hops;
* turns every failure into a `TemporaryTaskError` (retry) or a
  `PermanentTaskError` (don't), the only two errors tasks raise.

This module must not import Django: the caller builds an `OutboundPolicy` from
settings and passes it in, which also keeps this module testable on its own.
"""

from __future__ import annotations

import dataclasses
import email.utils
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tasks_app.errors import PermanentTaskError, TemporaryTaskError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _RedactedURLs(logging.Filter):
    """httpx logs every request's full URL at INFO ("HTTP Request: GET https://..."), user:password@
    and ?token= included. Log lines keep the scheme, host and path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_describe(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactedURLs())
# httpcore's DEBUG lines carry raw headers (cookies, Authorization): never log them.
logging.getLogger("httpcore").setLevel(logging.WARNING)

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Addresses refused even when private networks are allowed: cloud metadata services
# hand out credentials to whoever asks from inside the instance. Link-local ranges
# (169.254.0.0/16, fe80::/10) are refused as a whole anyway; these are the ones
# that live elsewhere (AWS's IPv6 endpoint is unique-local, Alibaba's is in the
# shared 100.64/10 range), plus a friendlier message for the well-known one.
_METADATA_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "link-local (cloud metadata)",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata address (AWS IPv6)",
    ipaddress.ip_address("100.100.100.200"): "a cloud metadata address (Alibaba Cloud)",
}

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class OutboundPolicy:
    """What outbound requests may reach and how much they may cost.

    timeout_seconds bounds each connect / read / write / pool wait;
    total_timeout_seconds bounds the whole exchange, redirects included.
    """

    allow_private_networks: bool = False
    timeout_seconds: float = 10.0
    total_timeout_seconds: float = 30.0
    max_response_bytes: int = 1_048_576
    max_redirects: int = 3

    def __post_init__(self) -> None:
        # Fail when settings are loaded, not on the first task that runs.
        if self.timeout_seconds <= 0 or self.total_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_response_bytes < 0 or self.max_redirects < 0:
            raise ValueError("max_response_bytes and max_redirects must not be negative")


@dataclass(frozen=True)
class OutboundResponse:
    """A fully read, size-bounded response.

    final_url is the URL of the last hop as the caller would write it (host name,
    not the pinned address); elapsed_seconds covers all hops.
    """

    status_code: int
    headers: httpx.Headers
    content: bytes
    elapsed_seconds: float
    final_url: str

    def json(self) -> Any:
        """The body parsed as JSON; a body that isn't JSON is a permanent failure."""
        try:
            return json.loads(self.content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise PermanentTaskError(f"response from {self.final_url} is not JSON: {exc}") from exc


class DestinationRefusedError(PermanentTaskError):
    """The URL's host is (or resolves to) an address the policy forbids."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        if host == str(address):
            message = f"destination {address} is {reason}; refused"
        else:
            message = f"destination {host} resolves to {address}, which is {reason}; refused"
        super().__init__(message)


class TemporaryHTTPStatusError(TemporaryTaskError):
    """HTTP 5xx or 429. `retry_after_seconds` is the server's Retry-After, if any."""

    def __init__(self, response: OutboundResponse) -> None:
        self.response = response
        self.status_code = response.status_code
        self.retry_after_seconds = _retry_after_seconds(response.headers.get("Retry-After"))
        message = f"HTTP {self.status_code} from {response.final_url}"
        if self.retry_after_seconds is not None:
            message += f" (retry after {self.retry_after_seconds:.0f}s)"
        super().__init__(message)


class PermanentHTTPStatusError(PermanentTaskError):
    """HTTP 4xx other than 429."""

    def __init__(self, response: OutboundResponse) -> None:
        self.response = response
        self.status_code = response.status_code
        super().__init__(f"HTTP {self.status_code} from {response.final_url}")


def check_destination(url: str, *, policy: OutboundPolicy) -> list[IPAddress]:
    """Resolve the URL's host and return its addresses if the policy allows all of them.

    `fetch()` runs this on every hop; callers may also use it to validate a URL when
    a user saves it. Raises PermanentTaskError (DestinationRefusedError for a
    forbidden address) or TemporaryTaskError if the name doesn't resolve.
    """
    return _checked_addresses(_parse_url(url), policy)


def fetch(
    method: str,
    url: str,
    *,
    policy: OutboundPolicy,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    raise_for_status: bool = True,
) -> OutboundResponse:
    """Send one request (following redirects) and return the size-bounded response.

    `content` is sent byte for byte, so a webhook signature computed over it stays
    valid; set Content-Type in `headers` yourself. With raise_for_status=False a 4xx
    or 5xx response is returned instead of raised (a poller that records status
    codes wants that). Refused destinations, too many redirects, oversized bodies,
    timeouts and connection failures always raise.

    Raises TemporaryTaskError (timeouts, connection errors, DNS failure, HTTP 5xx/429
    as TemporaryHTTPStatusError) or PermanentTaskError (bad scheme or URL, refused
    destination as DestinationRefusedError, too many redirects, oversized response,
    HTTP 4xx as PermanentHTTPStatusError).
    """
    started = time.monotonic()
    deadline = started + policy.total_timeout_seconds
    hop = _Hop(method.upper(), _parse_url(url), content, _base_headers(headers))

    # One client per call rather than a shared one: tasks make a handful of calls,
    # so connection reuse buys nothing, while a per-call client has no thread-safety
    # or lifetime questions and closes its sockets when the call ends. Keep-alive is
    # off so a connection opened (and TLS-verified) for one host is never reused for
    # another host that happens to share its address on a later hop.
    with _new_client() as client:
        for _ in range(policy.max_redirects + 1):
            response = _send(client, hop, policy, deadline)
            try:
                target = _redirect_target(response, hop.url)
                if target is None:
                    return _complete(response, hop.url, policy, started, deadline, raise_for_status)
            finally:
                response.close()
            hop = _follow_redirect(hop, response.status_code, target)
    raise PermanentTaskError(
        f"more than {policy.max_redirects} redirects starting at {_describe(_parse_url(url))}"
    )


# ------------------------------------------------------------------ destination check


def _parse_url(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise PermanentTaskError(f"invalid URL {str(url)!r}: {exc}") from exc
    if parsed.scheme not in _ALLOWED_SCHEMES:
        raise PermanentTaskError(f"only http and https URLs are allowed, not {str(url)!r}")
    if not parsed.host:
        raise PermanentTaskError(f"URL {str(url)!r} has no host")
    return parsed


def _checked_addresses(url: httpx.URL, policy: OutboundPolicy) -> list[IPAddress]:
    host = url.raw_host.decode("ascii")  # IDNA-encoded, what DNS and TLS see
    addresses = _resolve(host, url.port or _default_port(url))
    # Refuse if ANY address is bad, not just the first: we may connect to any of them,
    # and an attacker controls the order of their own DNS answers.
    for address in addresses:
        reason = _refusal_reason(address, policy)
        if reason is not None:
            raise DestinationRefusedError(host, address, reason)
    return addresses


def _resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of `host`, IPv4 and IPv6, de-duplicated in resolver order.

    IP literals come back unchanged. There is no timeout here beyond the system
    resolver's own (resolv.conf); doing better means a resolver thread, not worth it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise TemporaryTaskError(f"could not resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # Drop an IPv6 scope ("fe80::1%eth0"); the address alone decides.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TemporaryTaskError(f"{host} resolved to no IPv4 or IPv6 address")
    return addresses


def _refusal_reason(address: IPAddress, policy: OutboundPolicy) -> str | None:
    """Why the policy forbids `address`, or None if it may be contacted."""
    effective = _embedded_ipv4(address) or address
    for candidate in (address, effective):
        if candidate in _METADATA_ADDRESSES:
            return _METADATA_ADDRESSES[candidate]
    if effective.is_link_local:
        return "link-local"
    if policy.allow_private_networks:
        return None
    return _non_public_reason(effective)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv6 address actually reaches, for the forms that reach one.

    ::ffff:a.b.c.d (IPv4-mapped) is delivered to a.b.c.d by a dual-stack socket, and
    64:ff9b::a.b.c.d is translated to it by a NAT64 gateway, so both must be judged
    as the IPv4 address -- ipaddress's properties don't do that for us on 3.11.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def _non_public_reason(address: IPAddress) -> str | None:
    """Why `address` is not on the public internet, or None if it is.

    The specific checks come first for a useful message. They are needed, not just
    cosmetic: is_private is False for 100.64/10 and is_global is True for multicast
    and for the deprecated site-local fec0::/10. `not is_global` is the catch-all for
    the remaining special-purpose ranges (documentation, benchmarking, ...).
    """
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_multicast, "multicast"),
        (address in _SHARED_ADDRESS_SPACE, "shared address space (100.64.0.0/10)"),
        (address in _UNIQUE_LOCAL, "unique-local (fc00::/7)"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally routable"),
    )
    return next((reason for matches, reason in checks if matches), None)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


# ------------------------------------------------------------------------ one hop


@dataclass(frozen=True)
class _Hop:
    """One request in a redirect chain; url is the logical URL (host name, not IP)."""

    method: str
    url: httpx.URL
    content: bytes | None
    headers: httpx.Headers


def _base_headers(headers: Mapping[str, str] | None) -> httpx.Headers:
    result = httpx.Headers(headers or {})
    result.pop("Host", None)  # set per hop from the logical URL
    # Ask for an uncompressed body: the size limit counts decoded bytes, and a small
    # gzip chunk can inflate a thousandfold in memory before we get to count it.
    result.setdefault("Accept-Encoding", "identity")
    return result


def _new_client() -> httpx.Client:
    return httpx.Client(
        follow_redirects=False,  # we follow them ourselves, re-checking each hop
        # Ignore HTTP(S)_PROXY and .netrc from the environment: a proxy would connect
        # on our behalf and make the destination check meaningless.
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _send(client: httpx.Client, hop: _Hop, policy: OutboundPolicy, deadline: float) -> httpx.Response:
    """Check the hop's destination, then send it; the response body is not read yet."""
    addresses = _checked_addresses(hop.url, policy)
    timeout = _hop_timeout(policy, deadline)
    # Cookies set on an earlier hop are keyed by the pinned IP, not the host; drop
    # them rather than risk sending one host's cookies to another.
    client.cookies.clear()
    with _httpx_errors_as_task_errors(hop.url):
        return _send_to_first_reachable(client, hop, addresses, timeout)


def _send_to_first_reachable(
    client: httpx.Client, hop: _Hop, addresses: list[IPAddress], timeout: httpx.Timeout
) -> httpx.Response:
    """Send to the checked addresses in resolver order until one accepts the connection.

    Pinning: the request URL carries the checked IP, so httpx never resolves the
    name again and a DNS answer that changes after the check (rebinding) is never
    used. The name still goes where the server expects it: in the Host header, and
    for https in the TLS SNI / certificate check via httpcore's documented
    "sni_hostname" request extension -- so certificate verification keeps working
    against the real host name and no trade-off is needed.

    Trying the next address on a connect failure only re-sends a request that was
    never sent, so it is safe even for POST; it covers hosts whose IPv6 address is
    unreachable from here.
    """
    extensions: dict[str, Any] = {}
    if hop.url.scheme == "https":
        extensions["sni_hostname"] = hop.url.raw_host.decode("ascii")
    headers = hop.headers.copy()
    headers["Host"] = hop.url.netloc.decode("ascii")  # includes a non-default port

    last_error: httpx.TransportError | None = None
    for address in addresses:
        request = client.build_request(
            hop.method,
            hop.url.copy_with(host=str(address)),
            content=hop.content,
            headers=headers,
            timeout=timeout,
            extensions=extensions,
        )
        try:
            return client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_error = exc
    assert last_error is not None  # addresses is never empty
    raise last_error


def _hop_timeout(policy: OutboundPolicy, deadline: float) -> httpx.Timeout:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TemporaryTaskError(f"overall deadline of {policy.total_timeout_seconds}s exceeded (redirects)")
    return httpx.Timeout(min(policy.timeout_seconds, remaining))


@contextmanager
def _httpx_errors_as_task_errors(url: httpx.URL) -> Iterator[None]:
    """Classify httpx failures: network trouble is temporary, our own mistakes aren't."""
    where = _describe(url)
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TemporaryTaskError(f"timed out talking to {where} ({type(exc).__name__})") from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise TemporaryTaskError(f"{type(exc).__name__} talking to {where}: {exc}") from exc
    except httpx.HTTPError as exc:  # e.g. LocalProtocolError, DecodingError
        raise PermanentTaskError(f"{type(exc).__name__} talking to {where}: {exc}") from exc


def _describe(url: httpx.URL) -> str:
    """The URL for messages, without credentials or query (either may hold secrets)."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"


# ---------------------------------------------------------------------- redirects


def _redirect_target(response: httpx.Response, current: httpx.URL) -> httpx.URL | None:
    """Where a redirect points, or None if this response is the final one."""
    if response.status_code not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("Location")
    if not location:
        return None  # a 3xx without Location is just a response
    try:
        target = current.join(location).copy_with(fragment=None)
    except httpx.InvalidURL as exc:
        raise PermanentTaskError(f"invalid redirect Location {location!r}: {exc}") from exc
    return _parse_url(target)  # refuses non-http(s) schemes


def _follow_redirect(hop: _Hop, status_code: int, target: httpx.URL) -> _Hop:
    """The next hop, per RFC 9110 15.4: 303 (and 301/302 after POST) become a GET."""
    headers = hop.headers.copy()
    method, content = hop.method, hop.content
    if (status_code == 303 and method != "HEAD") or (status_code in (301, 302) and method == "POST"):
        method, content = "GET", None
        for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
            headers.pop(name, None)
    if _origin(target) != _origin(hop.url):
        # Credentials were meant for the original host only.
        for name in ("Authorization", "Cookie", "Proxy-Authorization"):
            headers.pop(name, None)
    return dataclasses.replace(hop, method=method, url=target, content=content, headers=headers)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or _default_port(url)


# ------------------------------------------------------------------ final response


def _complete(
    response: httpx.Response,
    url: httpx.URL,
    policy: OutboundPolicy,
    started: float,
    deadline: float,
    raise_for_status: bool,
) -> OutboundResponse:
    """Read the final response's body within the limits and classify its status."""
    is_error = response.status_code >= 400
    with _httpx_errors_as_task_errors(url):
        # An error response is kept for the exception (or the caller) but cut at the
        # limit rather than refused: a huge 500 page is still a temporary failure.
        content = _read_body(response, url, policy, deadline, truncate=is_error)
    result = OutboundResponse(
        status_code=response.status_code,
        headers=response.headers,
        content=content,
        elapsed_seconds=time.monotonic() - started,
        final_url=str(url),
    )
    if raise_for_status and is_error:
        if response.status_code == 429 or response.status_code >= 500:
            raise TemporaryHTTPStatusError(result)
        raise PermanentHTTPStatusError(result)
    return result


def _read_body(
    response: httpx.Response,
    url: httpx.URL,
    policy: OutboundPolicy,
    deadline: float,
    *,
    truncate: bool,
) -> bytes:
    limit = policy.max_response_bytes
    too_big = f"response from {_describe(url)} exceeds {limit} bytes"
    declared = response.headers.get("Content-Length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise PermanentTaskError(f"{too_big} (Content-Length: {declared})")

    body = bytearray()
    for chunk in response.iter_bytes():  # streamed, so we stop at the limit
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise PermanentTaskError(too_big)
        # The read timeout bounds each chunk; this bounds a server that drips slowly.
        if time.monotonic() > deadline:
            seconds = policy.total_timeout_seconds
            raise TemporaryTaskError(f"overall deadline of {seconds}s exceeded reading {_describe(url)}")
    return bytes(body)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
