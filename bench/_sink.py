"""A minimal SMTP sink for benchmarks: PIPELINING, answers 250, counts, keeps a sample.

    python bench/_sink.py PORT SAMPLE_FILE SAMPLE_COUNT

It is deliberately not the bottleneck: one asyncio loop, no parsing beyond the line
protocol. The first SAMPLE_COUNT messages are written to SAMPLE_FILE (separated by a
marker) so the baseline can resend the very bytes Enseigne produced.
"""

from __future__ import annotations

import asyncio
import sys

MARKER = b"\x00\x00MSG\x00\x00"


class Session(asyncio.Protocol):
    sample: list[bytes] = []
    limit = 0
    path = ""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        self.data: list[bytes] = []
        transport.write(b"220 bench sink\r\n")

    def data_received(self, chunk):
        self.buffer += chunk
        replies = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                message = self.buffer[: end + 2]
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                if len(Session.sample) < Session.limit:
                    Session.sample.append(message.replace(b"\r\n..", b"\r\n."))
                    if len(Session.sample) == Session.limit:
                        with open(Session.path, "wb") as handle:
                            for item in Session.sample:
                                handle.write(item + MARKER)
                replies.append(b"250 2.0.0 queued\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            line = self.buffer[:line_end].upper()
            self.buffer = self.buffer[line_end + 2 :]
            if line.startswith((b"EHLO", b"HELO")):
                replies.append(b"250-bench\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif line.startswith(b"DATA"):
                self.in_data = True
                replies.append(b"354 go ahead\r\n")
            elif line.startswith(b"QUIT"):
                replies.append(b"221 bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            else:
                replies.append(b"250 OK\r\n")
        if replies:
            self.transport.write(b"".join(replies))


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    Session.path, Session.limit = sys.argv[2], int(sys.argv[3])
    asyncio.run(main(int(sys.argv[1])))
