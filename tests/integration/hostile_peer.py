#!/usr/bin/python3
"""A hostile peer on a drive's sync channel, over a raw socket (stdlib only).

It speaks what a swarmfs node expects of a peer of the drive torrent: the BitTorrent
handshake (with the BEP 10 bit) naming the drive torrent by its v2 infohash truncated to
20 bytes, the extended handshake naming "swarmfs_sync", then ledger messages in the
framing fs/ uses: each extension message is one flag byte (1: more follows, 0: the last)
and at most 900,000 bytes of a canonical bencoded ledger message. What it then sends is
what an attacker would.

It connects FROM a loopback address other than 127.0.0.1 (--src, default 127.0.0.66;
--sources N uses N addresses from there up), so that a ban of its address keeps the
honest nodes on 127.0.0.1 in.

usage: hostile_peer.py --port PORT --infohash HEX MODE [options]

modes:
  tx-flood   --records FILE (from hostile_records): send its tx messages as fast as
             the node takes them; after a drop, go on from the next source address
  getblocks  send getblocks (256 blocks from the first) at --rate a second and never
             read a byte of the answers
  fragments  --conns N connections, each --frags fragments of 900,000 bytes that all
             say "more follows", then hold them open
  garbage    --burst N messages that are no ledger message, in one write
  status     connect, wait to be served a status, hold --seconds (a probe)

--reconnect (tx-flood, getblocks, garbage): after the node drops the connection, connect
again once from the same address and say whether the node serves it.

It prints one line per event, flushed, for the test that runs it to poll:
  served SRC                      the node sent its sync status: we are a sync peer
  dropped SRC after N messages in T s   the node closed the connection
  refused SRC in T s              closed before we were served (a ban)
  open SRC after T s              neither served nor closed (reconnect probe)
  finished SRC: N messages        --seconds passed with the connection still up
  progress N messages             tx-flood: N sent in all, every 25
  done
Exit status 0 once it ran its course (whatever the node did), 2 on a usage error.
"""
import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

EXT_NAME = b"swarmfs_sync"
OUR_EXT_ID = 7    # the id we ask the node to use for swarmfs_sync messages to us
FRAG_MAX = 900 * 1000
POLL_CLOSED = select.POLLHUP | select.POLLERR | select.POLLRDHUP | select.POLLNVAL


def say(*words):
    print(*words, flush=True)


class Closed(Exception):
    """The node closed the connection."""


# ---- bencode (canonical: sorted keys) ----

def benc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"
    raise TypeError(type(v))


def bdec(b, i=0):
    """(value, next index); enough for an extended handshake."""
    c = b[i:i + 1]
    if c == b"i":
        e = b.index(b"e", i)
        return int(b[i + 1:e]), e + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = bdec(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while b[i:i + 1] != b"e":
            k, i = bdec(b, i)
            v, i = bdec(b, i)
            out[k] = v
        return out, i + 1
    colon = b.index(b":", i)
    n = int(b[i:colon])
    return b[colon + 1:colon + 1 + n], colon + 1 + n


# ---- one connection ----

class Conn:
    def __init__(self, args, src):
        self.args, self.src = args, src
        self.t0 = time.monotonic()
        self.sent = 0  # ledger messages sent
        self.their_id = None
        self.rbuf = b""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if args.rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
        self.sock.bind((src, 0))
        self.sock.settimeout(10)
        try:
            self.sock.connect((args.host, args.port))
        except OSError as e:
            raise Closed(str(e))
        self.sock.setblocking(False)
        self.poll = select.poll()
        self.poll.register(self.sock, select.POLLIN | POLL_CLOSED)

    def elapsed(self):
        return time.monotonic() - self.t0

    def close(self):
        self.sock.close()

    def is_closed(self, timeout_ms=0):
        """Whether the node closed it, without reading a byte."""
        for _, ev in self.poll.poll(timeout_ms):
            if ev & POLL_CLOSED:
                return True
        return False

    def send_bytes(self, data, deadline=None):
        """All of data, or Closed; False when the deadline passed first."""
        view, off = memoryview(data), 0
        p = select.poll()
        p.register(self.sock, select.POLLOUT | POLL_CLOSED)
        while off < len(data):
            if deadline is not None and time.monotonic() > deadline:
                return False
            for _, ev in p.poll(200):
                if ev & POLL_CLOSED:
                    raise Closed("hangup")
                if ev & select.POLLOUT:
                    try:
                        off += self.sock.send(view[off:])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError as e:
                        raise Closed(str(e))
        return True

    def recv_some(self, timeout_ms):
        for _, ev in self.poll.poll(timeout_ms):
            if ev & (select.POLLIN | POLL_CLOSED):
                try:
                    b = self.sock.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as e:
                    raise Closed(str(e))
                if not b:
                    raise Closed("eof")
                self.rbuf += b

    def recv_exact(self, n, deadline):
        while len(self.rbuf) < n:
            if time.monotonic() > deadline:
                raise TimeoutError
            self.recv_some(100)
        out, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return out

    def read_message(self, deadline):
        """One BitTorrent message: (id, payload), id None for a keep-alive."""
        (n,) = struct.unpack(">I", self.recv_exact(4, deadline))
        if n == 0:
            return None, b""
        body = self.recv_exact(n, deadline)
        return body[0], body[1:]

    def handshake(self, infohash20):
        """BitTorrent and extended handshakes; then wait for the node's status."""
        reserved = bytearray(8)
        reserved[5] |= 0x10  # BEP 10
        peer_id = b"-HP0001-" + os.urandom(12)
        ext = benc({"m": {EXT_NAME: OUR_EXT_ID}, "v": "hostile_peer"})
        self.send_bytes(b"\x13BitTorrent protocol" + bytes(reserved) + infohash20 + peer_id +
                        struct.pack(">IBB", len(ext) + 2, 20, 0) + ext)
        deadline = time.monotonic() + 10
        head = self.recv_exact(68, deadline)
        if head[28:48] != infohash20:
            raise Closed("the node answered for another torrent")
        while True:  # their extended handshake, then our first sync message
            mid, payload = self.read_message(deadline)
            if mid != 20 or not payload:
                continue
            if payload[0] == 0:
                m = bdec(payload[1:])[0].get(b"m", {})
                self.their_id = m.get(EXT_NAME)
                if not self.their_id:
                    raise Closed("the node has no swarmfs_sync channel")
            elif payload[0] == OUR_EXT_ID and payload[1:2] == b"\x00":
                if b"6:status" in payload[2:]:
                    return

    def ext_frame(self, flag, chunk):
        return struct.pack(">IBBB", len(chunk) + 3, 20, self.their_id, flag) + chunk

    def frames(self, msg):
        """A ledger message as the node's fragments, as bytes for one write."""
        out, off = [], 0
        while True:
            chunk = msg[off:off + FRAG_MAX]
            off += len(chunk)
            out.append(self.ext_frame(1 if off < len(msg) else 0, chunk))
            if off >= len(msg):
                return b"".join(out)

    def drain(self):
        """Read and forget what the node sent (modes that read)."""
        self.recv_some(0)
        self.rbuf = b""


def open_served(args, src):
    """A connection the node serves, or None (said why)."""
    try:
        c = Conn(args, src)
    except Closed:
        say("refused", src, "in 0.0 s")
        return None
    try:
        c.handshake(bytes.fromhex(args.infohash[:40]))
    except Closed:
        say("refused", src, "in %.1f s" % c.elapsed())
        c.close()
        return None
    except TimeoutError:
        say("open", src, "after %.1f s" % c.elapsed())
        c.close()
        return None
    say("served", src)
    return c


def dropped(c):
    say("dropped", c.src, "after", c.sent, "messages in %.1f s" % c.elapsed())
    c.close()


def hold(c, end):
    """Keep c open, reading, until end; False (and said so) if the node closed it."""
    try:
        while time.monotonic() < end:
            c.drain()
            time.sleep(0.05)
    except Closed:
        dropped(c)
        return False
    say("finished", c.src + ":", c.sent, "messages")
    c.close()
    return True


def probe_again(args, src):
    """--reconnect: the same address once more; does the node serve it?"""
    c = open_served(args, src)
    if c:
        c.close()


# ---- modes ----

def read_records(path):
    msgs, data = [], open(path, "rb").read()
    off = 0
    while off < len(data):
        (n,) = struct.unpack(">I", data[off:off + 4])
        msgs.append(data[off + 4:off + 4 + n])
        off += 4 + n
    if not msgs:
        raise SystemExit("hostile_peer: %s holds no message" % path)
    return msgs


def mode_tx_flood(args, sources, end):
    msgs = read_records(args.records)
    total = 0
    for src in sources:
        if time.monotonic() > end:
            break
        c = open_served(args, src)
        if not c:
            continue
        try:
            while time.monotonic() < end:
                if c.send_bytes(c.frames(msgs[c.sent % len(msgs)]), end):
                    c.sent += 1
                    total += 1
                    if total % 25 == 0:
                        say("progress", total, "messages")
                c.drain()
            say("finished", src + ":", c.sent, "messages")
            c.close()
            return
        except Closed:
            dropped(c)
            if args.reconnect:
                probe_again(args, src)
                return


def mode_getblocks(args, sources, end):
    msg = benc({"m": "getblocks", "loc": [], "n": 256})
    src = sources[0]
    c = open_served(args, src)
    if not c:
        return
    gap = 1.0 / args.rate if args.rate else 0
    frame = c.frames(msg)
    try:
        next_at = time.monotonic()
        while time.monotonic() < end:
            if gap:
                wait = next_at - time.monotonic()
                if wait > 0 and c.is_closed(int(wait * 1000)):
                    raise Closed("hangup")
                next_at += gap
            if c.send_bytes(frame, end):
                c.sent += 1
            if args.read:
                c.drain()
        say("finished", src + ":", c.sent, "messages")
        c.close()
    except Closed:
        dropped(c)
        if args.reconnect:
            probe_again(args, src)


def mode_fragments(args, sources, end):
    conns = []
    chunk = b"x" * FRAG_MAX
    for src in sources[:args.conns]:
        c = open_served(args, src)
        if not c:
            continue
        try:
            for _ in range(args.frags):
                c.send_bytes(c.ext_frame(1, chunk), end)
                c.sent += 1
            say("holding", src, "after", c.sent, "fragments")
            conns.append(c)
        except Closed:
            dropped(c)
    while conns and time.monotonic() < end:
        for c in list(conns):
            try:
                c.drain()
            except Closed:
                dropped(c)
                conns.remove(c)
        time.sleep(0.05)
    for c in conns:
        say("finished", c.src + ":", c.sent, "fragments")
        c.close()


def mode_garbage(args, sources, end):
    src = sources[0]
    c = open_served(args, src)
    if not c:
        return
    burst = b"".join(c.frames(b"garbage %d: no bencode" % i) for i in range(args.burst))
    try:
        c.send_bytes(burst, end)
        c.sent = args.burst
    except Closed:
        pass
    if not hold(c, end) and args.reconnect:
        probe_again(args, src)


def mode_status(args, sources, end):
    c = open_served(args, sources[0])
    if c:
        hold(c, end)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["tx-flood", "getblocks", "fragments", "garbage", "status"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--infohash", required=True, help="the drive torrent's v2 infohash, hex")
    ap.add_argument("--src", default="127.0.0.66")
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--records")
    ap.add_argument("--rate", type=float, default=0, help="getblocks a second (0: no pause)")
    ap.add_argument("--read", action="store_true", help="getblocks: read the answers")
    ap.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of our sockets")
    ap.add_argument("--conns", type=int, default=12)
    ap.add_argument("--frags", type=int, default=9)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--reconnect", action="store_true")
    args = ap.parse_args()
    if len(args.infohash) not in (40, 64):
        ap.error("--infohash: 40 or 64 hex digits")
    if args.mode == "tx-flood" and not args.records:
        ap.error("tx-flood needs --records")
    first = ipaddress.IPv4Address(args.src)
    n = max(args.sources, args.conns if args.mode == "fragments" else 1)
    sources = [str(first + i) for i in range(n)]
    end = time.monotonic() + args.seconds
    {"tx-flood": mode_tx_flood, "getblocks": mode_getblocks, "fragments": mode_fragments,
     "garbage": mode_garbage, "status": mode_status}[args.mode](args, sources, end)
    say("done")


if __name__ == "__main__":
    main()
