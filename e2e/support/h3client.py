"""HTTP/3 clients over QUIC: aioquic (PyPI) without its asyncio layer, driven here over one UDP
socket on loopback, so each call is synchronous and bounded in time.

`Connection` sends exactly the SNI and `:authority` it is given, as `exact_client.Connection`
does over HTTP/2: `sni` goes into the QUIC handshake's ClientHello verbatim (upper case, a
trailing dot, `host:443`; `None` sends no SNI), `:authority` and `:path` go out verbatim. One
connection carries as many requests as the test sends, each on its own stream: the coalescing a
browser does over HTTP/3. The server's certificate is checked against the test CA when one is
given, not against the name (these tests send names the certificate does not cover on purpose).

`CoalescingClient` is `h2client.CoalescingClient` over HTTP/3: one connection opened for the
first host carries the others, and a 421 is retried on a new connection with the right SNI.

A QUIC handshake that no filter chain accepts gets no answer from Envoy 1.40 (unlike TLS over
TCP, which gets an alert): Envoy closes the connection as it creates it, before the handshake,
sends nothing, and counts it in no `no_filter_chain_match` (source/common/quic/
envoy_quic_dispatcher.cc, `CreateQuicSession`). The client only sees nothing come back, so it
cannot tell a refusal from a slow server. Given `refused`, a check of the server's side
(`Envoy.quic_closed_by_envoy` grown), the handshake stops as soon as it holds, with
`HandshakeRefused`; otherwise it waits `handshake_timeout` and raises `HandshakeFailed`.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamReset
from aioquic.tls import verify_certificate

from e2e.support import h2client
from e2e.support.exact_client import HandshakeFailed, Reply

# How often a handshake waiting for an answer asks `refused`.
REFUSED_POLL_SECONDS = 0.05


class HandshakeRefused(HandshakeFailed):
    """The server ended the handshake: it sent a CONNECTION_CLOSE (its reason is in the message),
    or closed the connection silently, as `refused` reported."""


class Connection:
    """One QUIC connection speaking HTTP/3 to 127.0.0.1:`port`, opened with exactly `sni` (None:
    no SNI)."""

    def __init__(self, port: int, sni: str | None, *, ca: Path | None = None, timeout: float = 10.0,
                 handshake_timeout: float | None = None, refused=None):
        self.port = port
        self.sni = sni
        self.timeout = timeout
        self.address = ("127.0.0.1", port)
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=sni,
                                          verify_mode=ssl.CERT_NONE, idle_timeout=timeout)
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(self.address)
        self.local_port = self.sock.getsockname()[1]
        self.refused_hosts: set[str] = set()
        self.alpn: str | None = None
        self.terminated: ConnectionTerminated | None = None
        self._streams: dict[int, dict] = {}
        self.quic.connect(self.address, now=time.monotonic())
        try:
            self._pump(lambda: self.alpn is not None, handshake_timeout or timeout, refused)
        except HandshakeRefused:
            self.sock.close()
            raise
        except (TimeoutError, ConnectionError) as e:
            self.sock.close()
            if self.terminated is not None:  # the server said no: a CONNECTION_CLOSE with its reason
                raise HandshakeRefused(f"QUIC handshake with SNI {sni!r} refused: {e}") from e
            raise HandshakeFailed(f"QUIC handshake with SNI {sni!r} failed: {e}") from e
        if self.alpn != "h3":
            self.close()
            raise RuntimeError(f"server did not negotiate h3 (got {self.alpn})")
        if ca is not None:
            self._verify_chain(ca)

    def _verify_chain(self, ca: Path) -> None:
        """The server's chain against `ca`, without the name (aioquic checks both or neither;
        its TLS context keeps the peer's certificates in private attributes)."""
        tls = self.quic.tls
        try:
            verify_certificate(certificate=tls._peer_certificate, chain=tls._peer_certificate_chain, cafile=str(ca))
        except Exception as e:
            self.close()
            raise HandshakeFailed(f"server certificate not issued by {ca}: {e}") from e

    # --- the event loop ---

    def _flush(self) -> None:
        for data, _ in self.quic.datagrams_to_send(now=time.monotonic()):
            self.sock.send(data)

    def _pump(self, done, timeout: float, refused=None) -> None:
        """Sends and receives until `done()` holds; TimeoutError after `timeout` seconds,
        ConnectionError if the connection ends first, HandshakeRefused once `refused()` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            if refused is not None and refused():
                raise HandshakeRefused(f"QUIC handshake with SNI {self.sni!r}: the server closed the connection")
            if self.terminated is not None:
                raise ConnectionError(f"connection closed: error {self.terminated.error_code:#x} "
                                      f"{self.terminated.reason_phrase!r}")
            self._flush()
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"nothing after {timeout}s")
            timer = self.quic.get_timer()
            wait = deadline - now if timer is None else max(0.0, min(deadline, timer) - now)
            if refused is not None:
                wait = min(wait, REFUSED_POLL_SECONDS)
            readable, _, _ = select.select([self.sock], [], [], wait)
            if readable:
                try:
                    data = self.sock.recv(65536)
                except ConnectionRefusedError as e:  # ICMP port unreachable: nothing listens
                    raise ConnectionError(f"nothing listens on UDP port {self.port}") from e
                self.quic.receive_datagram(data, self.address, now=time.monotonic())
            elif timer is not None and time.monotonic() >= timer:
                self.quic.handle_timer(now=time.monotonic())
            self._process_events()

    def _process_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                self.alpn = event.alpn_protocol
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
            elif isinstance(event, StreamReset) and event.stream_id in self._streams:
                self._streams[event.stream_id]["reset"] = event.error_code
            for h3_event in self.h3.handle_event(event):
                stream = self._streams.get(getattr(h3_event, "stream_id", None))
                if stream is None:
                    continue
                if isinstance(h3_event, HeadersReceived) and not stream["headers"]:
                    stream["headers"] = {k.decode(): v.decode() for k, v in h3_event.headers}
                elif isinstance(h3_event, DataReceived):
                    stream["body"] += h3_event.data
                if h3_event.stream_ended:
                    stream["ended"] = True

    # --- requests ---

    def get(self, authority: str, path: str, extra_headers: list[tuple[str, str]] = ()) -> Reply:
        """One GET with exactly this `:authority` and `:path` on a new stream; the reply,
        whatever its status. A reset stream or a closed connection raises ConnectionError."""
        stream_id = self.quic.get_next_available_stream_id()
        stream = self._streams[stream_id] = {"headers": {}, "body": b"", "ended": False, "reset": None}
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path),
                   *extra_headers]
        self.h3.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in headers], end_stream=True)
        try:
            self._pump(lambda: stream["ended"] or stream["reset"] is not None, self.timeout)
        except TimeoutError as e:
            raise ConnectionError(f"stream {stream_id}: no complete reply: {e}") from e
        finally:
            del self._streams[stream_id]
        if stream["reset"] is not None:
            raise ConnectionError(f"stream {stream_id} reset: error {stream['reset']:#x}")
        headers = stream["headers"]
        return Reply(int(headers[":status"]), stream["body"], headers)

    def close(self) -> None:
        try:
            self.quic.close()
            self._flush()
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get(port: int, sni: str | None, authority: str, path: str = "/", **options) -> Reply:
    """One request on a new connection; `options` as for `Connection` (`ca`, `timeout`,
    `handshake_timeout`, `refused`) plus `extra_headers`."""
    extra_headers = options.pop("extra_headers", ())
    with Connection(port, sni, **options) as connection:
        return connection.get(authority, path, extra_headers)


class _CoalescingConnection(Connection):
    """`Connection` as `h2client.CoalescingClient` drives its connections: `get(host, path)`
    sends `:authority` host:port and returns (status, body)."""

    def __init__(self, port: int, sni: str, ca: str, timeout: float, user_agent: str | None = None):
        super().__init__(port, sni, ca=Path(ca), timeout=timeout)
        self.user_agent = user_agent

    def get(self, host: str, path: str) -> tuple[int, bytes]:
        headers = [("user-agent", self.user_agent)] if self.user_agent else []
        reply = super().get(f"{host}:{self.port}", path, headers)
        return reply.status, reply.body


@dataclass
class CoalescingClient(h2client.CoalescingClient):
    """`h2client.CoalescingClient` over HTTP/3: `port` is the gateway's UDP port."""
    connection_type = _CoalescingConnection
