"""``BodyLimit``: an ASGI wrapper that refuses request bodies larger than the upload limit.

A declared ``Content-Length`` over the limit is refused before anything is read; a body
sent without one (chunked) is counted as it arrives, and the request fails with 413 the
moment it passes the limit, so no handler ever holds more than the limit.
"""
from __future__ import annotations

import json
from typing import Any

__all__ = ["BodyLimit", "BodyTooLarge"]

#: most bytes read and thrown away after a refusal, so the client finishes sending and
#: reads the 413 instead of a reset connection; beyond it the connection is just closed
DRAIN_BYTES = 64 * 1024 * 1024


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the body passes the limit (handled by ``BodyLimit``)."""


class BodyLimit:
    """Refuse any HTTP request body over ``max_bytes`` with ``413 {"detail": ...}``."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    def _detail(self) -> str:
        return (f"the upload is larger than this server's limit of {self.max_bytes} bytes "
                f"({self.max_bytes / 1024 / 1024:.3g} MiB; serve --max-upload-mb)")

    async def _refuse(self, receive: Any, send: Any, *, drained: int = 0,
                      more: bool = True) -> None:
        """Read (and drop) what the client is still sending (``more``), then answer 413."""
        while more and drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = json.dumps({"detail": self._detail()}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False                     # the server refuses it as malformed
            if too_big:
                await self._refuse(receive, send)
                return

        seen = 0
        started = exceeded = False
        more = True                         # the client has more of the body to send

        async def counted() -> Any:
            nonlocal seen, exceeded, more
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracked(message: Any) -> None:
            nonlocal started
            if exceeded:            # the app answered the failed read (say, 400): ours wins
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await self._refuse(receive, send, drained=seen, more=more)
