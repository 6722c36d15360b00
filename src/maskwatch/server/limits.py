"""Server hardening kept apart from the endpoints: accepted Host names, uvicorn's slow-client limits."""

from __future__ import annotations

from typing import Any, Iterable

#: host names always accepted (a browser on this machine)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
#: uvicorn settings against slow or idle clients (seconds / bytes); documented in docs/security.md
UVICORN_LIMITS: dict[str, Any] = {
    "timeout_keep_alive": 5,        # an idle keep-alive connection is closed after 5 s
    "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers at most 16 KiB
    "limit_concurrency": 256,       # beyond this many connections/tasks: 503 at once
    "backlog": 128,
}


def allowed_hosts(bind_host: str | None = None, extra: Iterable[str] | None = None) -> list[str]:
    """The Host header values the server answers: the local names, the bind address (unless it is
    a wildcard) and any ``--allowed-host`` given (``*`` accepts any)."""
    names = list(LOCAL_HOSTS)
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        names.append(bind_host)
    names.extend(h.strip().lower() for h in (extra or []) if h.strip())
    return list(dict.fromkeys(names))


def host_of(header: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheck:
    """ASGI middleware: a request whose Host is not accepted gets 400 before any endpoint runs
    (DNS rebinding: a web page cannot read the API through a name that points at 127.0.0.1)."""

    def __init__(self, app: Any, hosts: Iterable[str]):
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.any = "*" in self.hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and not self.any:
            header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), "")
            if host_of(header) not in self.hosts:
                if scope["type"] != "http":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b'{"error":"host not allowed","detail":"this server answers only its configured host names (--allowed-host)"}'
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


#: defaults of ``serve --header-timeout`` / ``--body-timeout`` (seconds)
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 60.0


def slow_client_protocol(header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                         body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S) -> type:
    """uvicorn's h11 protocol with two clocks uvicorn lacks (pass it as ``uvicorn.run(http=...)``):
    a request's line and headers must arrive within ``header_timeout_s`` of its first byte (of the
    connection, for the first request), its body within ``body_timeout_s`` after them; otherwise the
    connection is closed. A client trickling one byte every few seconds, or stopping half-way, holds
    a connection at most that long."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class SlowClientGuard(H11Protocol):
        timeouts = (header_timeout_s, body_timeout_s)

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._guard: Any = None
            self._guarding: Any = None
            self._arm(h11.IDLE)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm(self.conn.their_state)

        def _arm(self, state: Any) -> None:
            """One clock per part of the request: the head while IDLE, the body while SEND_BODY."""
            if state is self._guarding:
                return
            self._disarm()
            if state is h11.IDLE or state is h11.SEND_BODY:
                seconds = self.timeouts[0 if state is h11.IDLE else 1]
                self._guard, self._guarding = self.loop.call_later(seconds, self._too_slow), state

        def _disarm(self) -> None:
            if self._guard is not None:
                self._guard.cancel()
            self._guard = self._guarding = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # the keep-alive timeout covers the idle time until the next request's first byte

        def _too_slow(self) -> None:
            self._guard = None
            if not self.transport.is_closing():
                self.logger.info("%s: request not complete within %g s: connection closed",
                                 "%s:%d" % tuple(self.client[:2]) if self.client else "client",
                                 self.timeouts[0 if self._guarding is h11.IDLE else 1])
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return SlowClientGuard
