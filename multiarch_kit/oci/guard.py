"""The lab registry's front: it keeps a registry request from reading a link file while another writes it.

Why it exists. Distribution (2.8, and 3.0 too) stores a tag, and each blob a repository may use, as a small
"link" file holding a digest. Its filesystem driver rewrites such a file in place: truncate, then write. A
request that reads the file in between finds it empty and answers ``500 invalid checksum digest format``.
BuildKit hits exactly that: pushing a multi-platform image to ``name:tag``, it HEADs and PUTs every
per-platform manifest *at the tag* (containerd's pusher addresses manifests by the pushed reference), several
at once, so one manifest's existence check reads the tag link while another's upload rewrites it. Two
builds pushing the same layers race the same way on the layers' links.

What it does. It listens where the lab registry is expected (``127.0.0.1:5000``) and relays every request,
byte for byte, to distribution on a private Unix socket. Requests that touch the same link file are taken
one at a time:

* manifest and tag requests share one lock: reads (HEAD, GET, tag lists) run side by side, a write (PUT,
  DELETE) runs alone. Manifests are small, so a write holds it for milliseconds; a manifest PUT also
  reads the links of the blobs it names, so it shares their locks too;
* a blob's link is guarded per repository and digest: the upload that completes it (``PUT ...?digest=``), a
  cross-repository mount and a delete write it; a HEAD or GET reads it, and holds its share only until the
  registry has answered with its headers (the link is read before any byte of the blob is sent).

Blob bodies stream through without waiting on anything else. Locks are always taken in one order (the
manifest lock, then blob locks sorted), so no two requests can wait on each other in a circle.

Run by the lab: ``python -m multiarch_kit.oci.guard --listen 127.0.0.1:5000 --upstream unix:PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

HEAD_LIMIT = 64 * 1024
# Sent with the 502 the guard answers when its registry is gone, naming the guard's pid: the lab then knows the
# port is held by a stranded guard of its own (not by another program) and replaces it.
GUARD_HEADER = "X-Multiarch-Kit-Guard"
MANIFEST_LIMIT = 16 << 20  # distribution refuses manifests over 4 MiB; anything larger is relayed unparsed
CHUNK = 1 << 20
UPSTREAM_TIMEOUT = 120.0

_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class _Closed(Exception):
    """One side closed the connection."""


class Message:
    """An HTTP/1.1 message head as received: the first line and the raw header lines."""

    def __init__(self, raw: bytes):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.first = lines[0]
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                self.headers[key.strip().lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value and value.isdigit() else None

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


async def _read_head(reader: asyncio.StreamReader, prefix: bytes = b"") -> Message:
    try:
        raw = prefix + await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        raise _Closed() from None
    except asyncio.LimitOverrunError:
        raise _Closed() from None
    return Message(raw)


async def _copy_exactly(reader: asyncio.StreamReader, count: int, out) -> None:
    """Pass ``count`` bytes from ``reader`` to ``out`` in chunks; the peer closing early is :class:`_Closed`."""
    while count:
        data = await reader.read(min(CHUNK, count))
        if not data:
            raise _Closed()
        count -= len(data)
        await out(data)


async def _relay_body(msg: Message, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None,
                      *, until_eof: bool = False) -> bytes:
    """Copy one message body from ``reader`` to ``writer`` (None: keep it) in its own framing; returns kept bytes."""
    kept = bytearray()

    async def out(data: bytes):
        if writer is None:
            kept.extend(data)
        else:
            writer.write(data)
            await writer.drain()

    try:
        if msg.chunked:
            while True:
                line = await reader.readuntil(b"\r\n")
                await out(line)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = await reader.readuntil(b"\r\n")
                        await out(trailer)
                        if trailer == b"\r\n":
                            return bytes(kept)
                await _copy_exactly(reader, size + 2, out)  # data and its CRLF
        elif msg.length is not None:
            await _copy_exactly(reader, msg.length, out)
        elif until_eof:
            while data := await reader.read(CHUNK):
                await out(data)
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        raise _Closed() from None
    return bytes(kept)


class SharedLock:
    """Many readers at once, or one writer, granted strictly in arrival order (nobody waits forever).

    A reader that arrives behind a waiting writer waits for it; readers in a row go in together. asyncio runs
    one coroutine at a time, so the counters need no lock of their own.
    """

    def __init__(self):
        self.readers = 0
        self.writer = False
        self._queue: list[tuple[asyncio.Future, bool]] = []

    def _fits(self, shared: bool) -> bool:
        return not self.writer and (shared or self.readers == 0)

    def _take(self, shared: bool) -> None:
        if shared:
            self.readers += 1
        else:
            self.writer = True

    def _grant(self) -> None:
        while self._queue:
            future, shared = self._queue[0]
            if future.done():  # cancelled while waiting
                self._queue.pop(0)
                continue
            if not self._fits(shared):
                return
            self._queue.pop(0)
            self._take(shared)
            future.set_result(None)

    async def acquire(self, shared: bool) -> None:
        if not self._queue and self._fits(shared):
            self._take(shared)
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((future, shared))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as it was cancelled: give it back
                self.release(shared)
            self._grant()
            raise

    def release(self, shared: bool) -> None:
        if shared:
            self.readers -= 1
        else:
            self.writer = False
        self._grant()


class Guard:
    """The locks, and the relay of one client connection."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.manifests = SharedLock()
        self.blobs: dict[tuple[str, str], SharedLock] = defaultdict(SharedLock)

    async def _connect(self):
        if self.upstream.startswith("unix:"):
            return await asyncio.open_unix_connection(self.upstream[5:], limit=HEAD_LIMIT)
        host, _, port = self.upstream.rpartition(":")
        return await asyncio.open_connection(host, int(port), limit=HEAD_LIMIT)

    def plan(self, method: str, target: str, body: bytes | None) -> tuple[list[tuple[SharedLock, bool]], bool]:
        """The locks one request takes, in order, each (lock, shared?), and whether it holds them to the end.

        Reads share a lock and writes take it alone; a blob read holds its lock only until the registry's
        headers have come back (its link is read by then).
        """
        url = urlsplit(target)
        m = _PATH.match(url.path)
        if not m:
            return [], False
        name, kind, rest = m.group("name", "kind", "rest")
        query = parse_qs(url.query)
        reads = method in ("GET", "HEAD")
        if kind in ("manifests", "tags"):
            locks = [(self.manifests, reads)]
            if method == "PUT" and body is not None:  # distribution reads the links of the blobs it names
                locks += [(self.blobs[(name, d)], True) for d in sorted(set(_DIGEST.findall(_referenced(body))))]
            return locks, True
        if rest.startswith("uploads"):
            digest = (query.get("digest") or [""])[0]
            if method == "PUT" and _DIGEST.fullmatch(digest):
                return [(self.blobs[(name, digest)], False)], True
            mount, source = (query.get("mount") or [""])[0], (query.get("from") or [""])[0]
            if method == "POST" and _DIGEST.fullmatch(mount):
                keys = sorted({(name, mount), (source, mount)})
                return [(self.blobs[k], k != (name, mount)) for k in keys], True
            return [], False
        if _DIGEST.fullmatch(rest):
            return [(self.blobs[(name, rest)], reads)], not reads
        return [], False

    async def serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r = up_w = None
        try:
            first = await client_r.readexactly(1)
            if first == b"\x16":
                # A TLS ClientHello. Answer as a plain HTTP server does, so Docker, BuildKit and skopeo see
                # "server gave HTTP response to HTTPS client" and fall back to HTTP for this loopback registry.
                client_w.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await client_w.drain()
                return
            prefix = first
            while True:
                request = await _read_head(client_r, prefix)
                prefix = b""
                method, target = (request.first.split(" ") + ["", ""])[:2]
                body = None
                url_path = urlsplit(target).path
                if method == "PUT" and "/manifests/" in url_path and (request.length or 0) <= MANIFEST_LIMIT:
                    body = await _relay_body(request, client_r, None)
                locks, hold = self.plan(method, target, body)
                if up_w is None:
                    try:
                        up_r, up_w = await self._connect()
                    except OSError:
                        text = f"registry guard: the registry at {self.upstream} does not answer\n".encode()
                        head = (f"HTTP/1.1 502 Bad Gateway\r\n{GUARD_HEADER}: {os.getpid()}\r\n"
                                f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n")
                        client_w.write(head.encode() + text)
                        await client_w.drain()
                        return
                held: list[tuple[SharedLock, bool]] = []
                try:
                    for lock, shared in locks:
                        await lock.acquire(shared)
                        held.append((lock, shared))
                    response = await self._exchange(request, body, client_r, client_w, up_r, up_w, method, held,
                                                    hold)
                finally:
                    for lock, shared in held:
                        lock.release(shared)
                if request.closes or response.closes or response.length is None and not response.chunked \
                        and _has_body(method, response):
                    break
        except (_Closed, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (client_w, up_w):
                if w is not None:
                    w.close()

    async def _exchange(self, request, body, client_r, client_w, up_r, up_w, method, held, hold) -> Message:
        up_w.write(request.raw)
        if body is not None:
            up_w.write(body)
            await up_w.drain()
            sending = None
        else:
            await up_w.drain()
            sending = asyncio.ensure_future(_relay_body(request, client_r, up_w))
        while True:
            try:
                response = await asyncio.wait_for(_read_head(up_r), UPSTREAM_TIMEOUT if held else None)
            except asyncio.TimeoutError:
                raise _Closed() from None
            client_w.write(response.raw)  # sent with the body's first bytes: no drain in between
            status = response.first.split(" ")[1:2]
            if not status or not status[0].startswith("1"):
                break
            await client_w.drain()  # 100 Continue: the client waits for it before it sends the body
        if held and not hold:
            # A blob read: its link has been read by now, the body is the blob itself.
            for lock, shared in held:
                lock.release(shared)
            held.clear()
        if _has_body(method, response):
            await _relay_body(response, up_r, client_w, until_eof=True)
        else:
            await client_w.drain()
        if sending is not None:
            await sending
        return response


def _has_body(method: str, response: Message) -> bool:
    status = response.first.split(" ")[1] if len(response.first.split(" ")) > 1 else "200"
    return method != "HEAD" and status not in ("204", "304") and not status.startswith("1")


def _referenced(body: bytes) -> str:
    """The digests a manifest names (config and layers; an index's entries are manifests, not blobs)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(obj, dict):
        return ""
    blobs = [obj.get("config")] + list(obj.get("layers") or [])
    return " ".join(str(b.get("digest", "")) for b in blobs if isinstance(b, dict))


async def _main(listen: str, upstream: str) -> None:
    host, _, port = listen.rpartition(":")
    guard = Guard(upstream)
    server = await asyncio.start_server(guard.serve, host, int(port), limit=HEAD_LIMIT, reuse_address=True)
    print(f"registry guard: {listen} -> {upstream}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multiarch_kit.oci.guard")
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve (loopback)")
    parser.add_argument("--upstream", required=True, help="unix:PATH or HOST:PORT of distribution")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.listen, args.upstream))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"registry guard: cannot listen on {args.listen} ({exc.strerror})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
