"""A small external authorization server on loopback, playing the single sign-on service a CUSTOM
AuthorizationPolicy sends requests to (an HTTP `envoyExtAuthzHttp` provider, as oauth2-proxy is
often deployed).

Envoy's ext_authz filter (HTTP service) sends it each request it checks: the method, the path,
and the headers (`:authority` as `Host`, `Cookie` among the defaults Envoy forwards). It answers
200 (allowed) when the request carries the session cookie, else a 302 to the login page, which
Envoy passes to the client with its `Location`. Each check is recorded (host and path), so a test
sees whether a request reached it at all.

It listens on 127.0.0.1, port 0 (the kernel picks), serves one request at a time in a thread,
and stops when the `with` block ends or, at the latest, after `lifetime` seconds or `max_checks`
checks: a test that forgets it leaves nothing running.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote

LOGIN_PAGE = "https://login.example.com/"
SESSION_COOKIE = "sso_session=valid"


class ExtAuthzServer:
    def __init__(self, lifetime: float = 300.0, max_checks: int = 10_000):
        self.checks: list[tuple[str, str]] = []  # (Host, path) of each request checked
        self._lock = threading.Lock()
        self._lifetime = lifetime
        self._max_checks = max_checks
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                host = self.headers.get("Host", "")
                with server._lock:
                    server.checks.append((host, self.path))
                if SESSION_COOKIE in self.headers.get("Cookie", ""):
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(302)
                self.send_header("Location", f"{LOGIN_PAGE}?rd={quote('https://' + host + self.path, safe='')}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:  # no lines on the test's stderr
                pass

        self._http = HTTPServer(("127.0.0.1", 0), Handler)
        self._http.timeout = 0.1
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._serve, name="ext-authz", daemon=True)

    def _serve(self) -> None:
        deadline = time.monotonic() + self._lifetime
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.checks) < self._max_checks:
            self._http.handle_request()  # returns after one request or `timeout`
        self._http.server_close()

    def checked(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.checks)

    def __enter__(self) -> ExtAuthzServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
