"""A download sent as it is read, which says when it has ended, however it ended.

What an export sent is known only once its stream is over: it may be sent whole, or
stopped half-way (the browser's Cancel, a lost connection: Starlette then cancels the
response, leaving the stream's generator where it was), or broken by an error reading it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class StreamedDownload(StreamingResponse):
    """`body` sent as it is produced; `ended` awaited once it is over, in every case, and
    once only. A download sent whole tells it before the response's last message, so a
    client holding the whole file finds what `ended` wrote (the audit entry) already there."""

    def __init__(
        self,
        body: AsyncGenerator[str, None] | AsyncGenerator[bytes, None],
        ended: Callable[[], Awaitable[None]],
        *,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        self._body = body
        self._ended = ended
        self._told = False
        self._stream = self._then_ended()
        super().__init__(self._stream, media_type=media_type, headers=headers)

    async def _then_ended(self) -> AsyncGenerator[str | bytes, None]:
        async for chunk in self._body:
            yield chunk
        await self._tell()

    async def _tell(self) -> None:
        # Shielded: a client gone away cancels this response, and what was sent must still
        # be told; once only, whether the stream ran out or was stopped.
        if self._told:
            return
        self._told = True
        with anyio.CancelScope(shield=True):
            await self._ended()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closed first, so the stream adds nothing to what it sent after the telling.
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
                await self._body.aclose()
            await self._tell()
