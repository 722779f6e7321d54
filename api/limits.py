"""The request-body limit of the server (``gridcover serve --max-body-mb``): 413 before a body is read whole.

:class:`BodyLimit` is an ASGI middleware in front of every route. A request whose ``Content-Length`` says
more than the limit is answered 413 at once, before any of its body is read; a chunked body (no length) is
counted as it is read and answered 413 as soon as the bytes read pass the limit — the rest is never read.

Example
-------
>>> app.add_middleware(BodyLimit, max_bytes=64 * MB)
"""

from __future__ import annotations

import json

#: One megabyte of ``--max-body-mb`` (a mebibyte, 2**20 bytes).
MB = 1 << 20
#: The default of ``--max-body-mb``.
DEFAULT_MAX_BODY_MB = 64


class BodyTooLarge(Exception):
    """Raised to the application by ``receive`` once a chunked body passes the limit."""


def _megabytes(n: int) -> str:
    return f"{n / MB:g} MB"


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (by its ``Content-Length``, or as read)."""

    def __init__(self, app, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self.app = app
        self.max_bytes = int(max_bytes)

    async def _refuse(self, send, got: str) -> None:
        text = json.dumps({"code": "PayloadTooLarge",
                           "description": f"the request body is larger than the server's limit of "
                                          f"{_megabytes(self.max_bytes)} ({got}): split it, or start the "
                                          "server with a larger --max-body-mb"})
        body = text.encode("utf-8")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, f"Content-Length {int(length):,} bytes")
            return
        read = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal read, over
            if over:
                raise BodyTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.max_bytes:
                    over = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            nonlocal started
            if over:  # whatever the application answers to a body cut short, the answer is 413
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send, f"more than {self.max_bytes:,} bytes sent")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:  # BodyTooLarge, or what the application made of it
            if not over:
                raise
            if not started:
                await self._refuse(send, f"more than {self.max_bytes:,} bytes sent")
