#!/usr/bin/env python3
"""A minimal SMTP sink for benchmarks: accepts every message on loopback and counts them.

Usage: smtp_sink.py PORT COUNT_FILE  (the count is rewritten after every message)
"""
import asyncio
import sys


async def session(reader, writer, counter):
    writer.write(b"220 sink ESMTP\r\n")
    while True:
        line = await reader.readline()
        if not line:
            break
        command = line.upper()
        if command.startswith(b"EHLO"):
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif command.startswith(b"DATA"):
            writer.write(b"354 go ahead\r\n")
            while (await reader.readline()) not in (b".\r\n", b""):
                pass
            counter[0] += 1
            writer.write(b"250 OK\r\n")
        elif command.startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 OK\r\n")
        await writer.drain()
    writer.close()


async def main(port, count_file):
    counter = [0]

    async def report():
        while True:
            with open(count_file, "w") as f:
                f.write(str(counter[0]))
            await asyncio.sleep(0.05)

    server = await asyncio.start_server(lambda r, w: session(r, w, counter), "127.0.0.1", port)
    asyncio.create_task(report())
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
