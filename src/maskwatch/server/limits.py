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
