"""An HTTP/2 client that sends exactly the SNI and `:authority` it is given, for tests of how a
gateway routes one request: Python's `ssl` and `h2`, one TLS connection per `Connection`.

Unlike `h2client.CoalescingClient`, nothing is derived from anything else:

- `sni` goes into the ClientHello verbatim (`server_hostname`): upper case and a trailing dot
  reach Envoy as given (Envoy lowercases it before matching `server_names`); `None` sends no
  SNI at all.
- `:authority` and `:path` go out verbatim: h2's outbound header validation and normalisation
  are off, so malformed values (`[::1`, spaces, an empty authority) reach the server.
- The server's certificate chain is checked against the test CA when one is given, but not the
  name: these tests send names the certificate does not cover on purpose (a trailing dot, an
  unknown host), and they are about routing, not about the certificate.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events


class HandshakeFailed(ConnectionError):
    """The TLS handshake did not complete: e.g. no filter chain matched the SNI, or the chain
    required a client certificate the client did not have."""


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Connection:
    """One TLS connection speaking HTTP/2, opened with exactly `sni` (None: no SNI)."""

    def __init__(self, port: int, sni: str | None, *, ca: Path | None = None,
                 client_cert: tuple[Path, Path] | None = None, timeout: float = 10.0):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        if ca is not None:
            context.load_verify_locations(cafile=str(ca))
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.verify_mode = ssl.CERT_NONE
        if client_cert is not None:
            context.load_cert_chain(certfile=str(client_cert[0]), keyfile=str(client_cert[1]))
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=sni)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            raw.close()
            raise HandshakeFailed(f"TLS handshake with SNI {sni!r} failed: {e}") from e
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise RuntimeError(f"server did not negotiate h2 (got {self.sock.selected_alpn_protocol()})")
        self.sni = sni
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=True))
        self.h2.initiate_connection()
        try:
            self._send()
            self._await_server_settings()
        except (ssl.SSLError, ConnectionError) as e:
            self.sock.close()
            # With TLS 1.3 the client finishes its handshake before the server has checked its
            # certificate: a server refusing it says so with an alert instead of its first
            # frame (SETTINGS), which is why the connection counts as open only after that.
            raise HandshakeFailed(f"TLS connection with SNI {sni!r} refused after the handshake: {e}") from e

    def _await_server_settings(self) -> None:
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed before the server's SETTINGS")
            events = self.h2.receive_data(data)
            self._send()
            if any(isinstance(event, h2.events.RemoteSettingsChanged) for event in events):
                return

    def _send(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, authority: str, path: str, extra_headers: list[tuple[str, str]] = ()) -> Reply:
        """One GET with exactly this `:authority` and `:path`; the reply, whatever its status.
        A reset stream or a closed connection raises ConnectionError."""
        stream_id = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path),
                   *extra_headers]
        self.h2.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in headers], end_stream=True)
        self._send()
        status, body, response_headers = 0, b"", {}
        # Bounded: a reply that never ends hits the socket timeout.
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"connection closed before stream {stream_id} ended")
            for event in self.h2.receive_data(data):
                if getattr(event, "stream_id", None) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = {k.decode(): v.decode() for k, v in event.headers}
                    status = int(response_headers[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream {stream_id} reset: {event.error_code!r}")
                elif isinstance(event, h2.events.StreamEnded):
                    self._send()
                    return Reply(status, body, response_headers)
            self._send()

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self._send()
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get(port: int, sni: str | None, authority: str, path: str = "/", **options) -> Reply:
    """One request on a new connection; `options` as for `Connection` (`ca`, `client_cert`,
    `timeout`) plus `extra_headers`."""
    extra_headers = options.pop("extra_headers", ())
    with Connection(port, sni, **options) as connection:
        return connection.get(authority, path, extra_headers)


def http1_get(port: int, sni: str | None, host_header: str, path: str = "/", *, ca: Path | None = None,
              client_cert: tuple[Path, Path] | None = None, extra_headers: list[tuple[str, str]] = (),
              timeout: float = 10.0) -> Reply:
    """One HTTP/1.1 request sent byte for byte (`Host: <host_header>`, `Connection: close`) on a
    new connection opened with exactly `sni`, for values no HTTP/2 frame carries to the filters
    (an empty Host, userinfo); the reply, read to the end of the connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
    else:
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(certfile=str(client_cert[0]), keyfile=str(client_cert[1]))
    context.set_alpn_protocols(["http/1.1"])
    lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}", *(f"{k}: {v}" for k, v in extra_headers),
             "Connection: close"]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        try:
            sock = context.wrap_socket(raw, server_hostname=sni)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            raise HandshakeFailed(f"TLS handshake with SNI {sni!r} failed: {e}") from e
        with sock:
            reply = b""
            try:
                sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
                # Bounded: Envoy closes after the reply (Connection: close), or the timeout hits.
                while chunk := sock.recv(65536):
                    reply += chunk
            except (ssl.SSLError, ConnectionResetError) as e:
                if not reply:
                    # TLS 1.3: a refused client certificate shows as an alert after the handshake.
                    raise HandshakeFailed(f"TLS connection with SNI {sni!r} refused: {e}") from e
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("connection closed before a status line")
    status_line, *header_lines = head.decode(errors="replace").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return Reply(int(status_line.split(" ")[1]), body, headers)


def http1_status(port: int, sni: str | None, host_header: str, path: str = "/", *, ca: Path | None = None,
                 timeout: float = 10.0) -> int:
    """The status of one HTTP/1.1 request (`http1_get`)."""
    return http1_get(port, sni, host_header, path, ca=ca, timeout=timeout).status
