"""A small HTTP/2 client that coalesces connections the way browsers do, built on Python's `h2`.

It opens a TLS connection with the SNI of the first host it talks to and then sends requests for
any other host as new streams on that same connection (the certificate covers them all and they
resolve to the same address, which is what makes browsers reuse it). Whether it honours 421 is a
switch: honouring it means retrying the request on a fresh connection opened with the request's
own host as SNI, and never sending that host on the refusing connection again (RFC 9110
§15.5.20).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class Response:
    host: str
    status: int
    body: bytes
    connection: int
    """Index into `CoalescingClient.connections` of the connection that carried it."""


class Connection:
    """One TLS connection speaking HTTP/2, opened with one SNI."""

    def __init__(self, port: int, sni: str, ca: str, timeout: float, user_agent: str | None = None):
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname=sni)
        if self.sock.selected_alpn_protocol() != "h2":
            raise RuntimeError(f"server did not negotiate h2 (got {self.sock.selected_alpn_protocol()})")
        self.sni = sni
        self.port = port
        self.user_agent = user_agent
        self.local_port = self.sock.getsockname()[1]
        self.refused_hosts: set[str] = set()
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())

    def get(self, host: str, path: str) -> tuple[int, bytes]:
        stream_id = self.h2.get_next_available_stream_id()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", f"{host}:{self.port}"), (":path", path)]
        if self.user_agent:
            headers.append(("user-agent", self.user_agent))
        self.h2.send_headers(stream_id, headers, end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        status, body = 0, b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"connection closed before stream {stream_id} ended")
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    body += event.data
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                    raise ConnectionError(f"stream {stream_id} reset: {event.error_code!r}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    self.sock.sendall(self.h2.data_to_send())
                    return status, body
            self.sock.sendall(self.h2.data_to_send())

    def wait_for_goaway(self, timeout: float) -> h2.events.ConnectionTerminated | None:
        """The server's GOAWAY on this idle connection, or None if none came within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return None
                for event in self.h2.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        return event
                self.sock.sendall(self.h2.data_to_send())
        except TimeoutError:
            return None

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self.sock.sendall(self.h2.data_to_send())
        except OSError:
            pass
        self.sock.close()


@dataclass
class CoalescingClient:
    port: int
    ca: str
    # What carries the requests: HTTP/2 over TLS here, HTTP/3 over QUIC in h3client.
    connection_type = Connection
    honour_421: bool = True
    timeout: float = 10.0
    user_agent: str | None = None
    connections: list[Connection] = field(default_factory=list)

    def get(self, host: str, path: str = "/") -> list[Response]:
        """Every response the request got: one, or a 421 and then the retry's."""
        index = self._connection_for(host)
        status, body = self.connections[index].get(host, path)
        responses = [Response(host, status, body, index)]
        if status == 421 and self.honour_421:
            self.connections[index].refused_hosts.add(host)
            index = self._open(host)
            status, body = self.connections[index].get(host, path)
            responses.append(Response(host, status, body, index))
        return responses

    def _connection_for(self, host: str) -> int:
        """An open connection to reuse for `host` (the coalescing), else a new one."""
        for index, connection in enumerate(self.connections):
            if host not in connection.refused_hosts:
                return index
        return self._open(host)

    def _open(self, sni: str) -> int:
        self.connections.append(self.connection_type(self.port, sni, self.ca, self.timeout, self.user_agent))
        return len(self.connections) - 1

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    def __enter__(self) -> "CoalescingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
