"""Reading a request body within limits: 1 MiB on the wire, 5 MiB once inflated.

A gzip body (by `Content-Encoding: gzip`, or by its magic bytes, as some clients forget the header) is
inflated incrementally and refused as soon as it passes `MAX_INFLATED`, without inflating the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping

MAX_BODY = 1 << 20
MAX_INFLATED = 5 << 20
GZIP_MAGIC = b"\x1f\x8b"


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(headers: Mapping[str, str], stream: AsyncIterator[bytes], *, limit: int = MAX_BODY) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"the body is {int(declared):,} bytes; at most {limit:,} are accepted")
    chunks, total = [], 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise BodyError(413, f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def inflate(body: bytes, headers: Mapping[str, str], *, limit: int = MAX_INFLATED) -> bytes:
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("gzip", "x-gzip") and not body.startswith(GZIP_MAGIC):
        if encoding not in ("", "identity"):
            raise BodyError(415, f"unsupported Content-Encoding {encoding!r}; send gzip or nothing")
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"the gzip body is corrupt: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, f"the gzip body inflates past {limit:,} bytes")
    return out
