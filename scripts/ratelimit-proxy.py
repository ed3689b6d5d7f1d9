#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that lets bytes through at a set rate: a slow
link between a client and a local server, for benchmarks.

    ratelimit-proxy.py UPSTREAM_HOST:PORT RATE [--port-file FILE]

RATE is in bits per second, with an optional k, m or g (powers of 1000):
`100m` is 100 Mbit/s. Each direction is one link, shared by every
connection (as a real link is): a byte waits for the bytes ahead of it.
Prints the port it listens on (and writes it to FILE), then serves until
stopped. Stop it by its process id.

Why pacing rather than a token bucket with a burst: an upload on a real
link is paced from its first byte, and a burst would flatter whichever side
sends its data in fewer, larger requests.
"""
import argparse
import asyncio
import time

CHUNK = 64 * 1024
SLACK = 0.02


def rate_bits(text):
    text = text.strip().lower().removesuffix("bit").removesuffix("bps")
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:], 1)
    return float(text[:-1] if scale != 1 else text) * scale


class Link:
    """One direction of the link: when it is next free, in the clock's time."""

    def __init__(self, bytes_per_second):
        self.rate = bytes_per_second
        self.free_at = time.monotonic()

    async def send(self, n):
        # Reserve the link for n bytes after what is already queued, then
        # wait until they would have crossed it. A link idle for less than
        # SLACK counts as busy until now: a sleep that overran by a few
        # milliseconds must not cost the link that time.
        now = time.monotonic()
        self.free_at = max(self.free_at, now - SLACK) + n / self.rate
        delay = self.free_at - now
        if delay > 0:
            await asyncio.sleep(delay)


async def pipe(reader, writer, link):
    try:
        while data := await reader.read(CHUNK):
            await link.send(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("upstream", help="HOST:PORT to forward to")
    ap.add_argument("rate", help="bits per second, e.g. 100m or 1g")
    ap.add_argument("--port-file", help="write the port here once listening")
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    rate = rate_bits(args.rate) / 8
    up, down = Link(rate), Link(rate)

    async def serve(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, up),
            pipe(server_reader, client_writer, down),
        )

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    listening = server.sockets[0].getsockname()[1]
    print(listening, flush=True)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(f"{listening}\n")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
