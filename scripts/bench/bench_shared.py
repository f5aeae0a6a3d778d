#!/usr/bin/python3
"""Measuring tools for scripts/bench/shared.sh and firstread.sh (a drive shared by several
nodes over loopback). Each prints "key value" lines on stdout. Needs Debian's
python3-libtorrent, hence /usr/bin/python3 (a pyenv python on PATH may lack it).

  bench_shared.py download MAGNET DIR PEER[,PEER...] [TIMEOUT]
        the baseline: a plain libtorrent session (127.0.0.1, no DHT/LSD/UPnP/NAT-PMP)
        downloads MAGNET from the PEERs (HOST:PORT) into DIR, from adding the magnet to having
        every piece (metadata included): seconds, MiB/s, most peers, CPU seconds and
        peak RSS of this process
  bench_shared.py read FILE
        reads FILE from start to end, 1 MiB at a time (what dd bs=1M does), sampling its
        user.swarmfs.peers xattr every 0.1 s: seconds, MiB/s, most peers seen
  bench_shared.py ttfb FILE COUNT SEED
        COUNT preads of 16 KiB at random 16 KiB-aligned offsets (the same offsets for the
        same SEED and file size), the file opened once: p50, p99, max and the first read's time in ms
  bench_shared.py first FILE...
        the first read of each FILE (another member's, not opened before): open and a 4 KiB
        pread in its middle, metadata fetch included: p50 and max in ms
  bench_shared.py plainfirst PEER MAGNET...
        the baseline of "first": one plain libtorrent session adds each MAGNET with PEER
        (HOST:PORT) as its peer and times it to having the piece of the file's middle,
        metadata included: p50 and max in ms, added as a client does (dialled at libtorrent's
        next once-a-second round), and paused then resumed (dialled at once: "now_" keys)
  bench_shared.py listed PATH T0
        polls every 1 ms until PATH exists (a file another node published, on a mount
        just made): ms from T0 (seconds since the epoch, `date +%s.%N` as the mount came up)
  bench_shared.py plainconnect PEER MAGNET COUNT
        the baseline of "listed": COUNT times, one plain libtorrent session adds MAGNET
        paused with PEER (HOST:PORT) as its peer and resumes it (dialled at once), and
        times it to a connected peer (5 s at most a try): p50 and max in ms, and how many
        tries got no peer
  bench_shared.py random4k FILE COUNT SEED [RAW]
        COUNT preads of 4 KiB at random 4 KiB-aligned offsets (the same for the same SEED and
        file size), one after the other, from the start: p50, p99, max in ms, how many took
        over 50 ms, and the whole run's seconds; each time in ms is appended to RAW
  bench_shared.py pctl RAW
        p50, p99 and max of the times in RAW, and how many of them are over 50 ms
  bench_shared.py publish SRC_DIR MNT_A MNT_B COUNT SIZE
        COUNT times: writes SIZE random bytes to SRC_DIR, `cp`s it into MNT_A, and from
        cp's return polls every 5 ms for it in a listing of MNT_B and for status
        "confirmed" on MNT_A: p50 and max of both, in ms
  bench_shared.py join SWARMFS HOME URI MNT
        one node joining a drive: `SWARMFS mount -f` of URI with a fresh HOME (its key
        made, on a private drive a member already), stderr read line by line as it comes
        (SWARMFS_DEBUG=1): join_ms, from starting the command to its status saying "in
        sync", and on a private drive handshake_ms, from the sync channel being up ("sync:
        member N is ...", the hello sent right after) to the other member admitted ("sync:
        admitted peer", its auth checked); then unmounts
"""
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import libtorrent as lt

MiB = 1024.0 * 1024.0


def pct(sorted_ms, p):
    """nearest-rank percentile of a sorted list"""
    return sorted_ms[max(0, math.ceil(p / 100.0 * len(sorted_ms)) - 1)]


def download(magnet, outdir, peer, timeout=600.0):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
        # swarmfs nodes take TCP only: a uTP attempt first would only time out
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })
    peers = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in peer.split(","))]
    params = lt.parse_magnet_uri(magnet)
    params.save_path = outdir
    t0 = time.perf_counter()
    handle = ses.add_torrent(params)
    for p in peers:
        handle.connect_peer(p)
    tried = t0
    most = 0
    while True:
        st = handle.status()
        most = max(most, st.num_peers)
        if st.is_seeding:
            break
        if time.perf_counter() - t0 > timeout:
            sys.exit("download: timeout at progress %.3f, %d peers" % (st.progress, st.num_peers))
        # a peer refused before the metadata came is not retried by itself
        if st.num_peers < len(peers) and time.perf_counter() - tried > 0.5:
            tried = time.perf_counter()
            for p in peers:
                handle.connect_peer(p)
        time.sleep(0.005)
    secs = time.perf_counter() - t0
    size = st.total_wanted
    print("seconds %.3f" % secs)
    print("mib_s %.1f" % (size / MiB / secs))
    print("bytes %d" % size)
    print("max_peers %d" % most)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("cpu_s %.2f" % (ru.ru_utime + ru.ru_stime))
    print("rss_hwm_mb %.0f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


def read(path):
    peers = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.1):
            try:
                peers[0] = max(peers[0], int(os.getxattr(path, "user.swarmfs.peers")))
            except (OSError, ValueError):
                pass

    th = threading.Thread(target=sample)
    th.start()
    n = 0
    t0 = time.perf_counter()
    try:
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
    finally:
        done.set()
        th.join()
    secs = time.perf_counter() - t0
    print("seconds %.3f" % secs)
    print("mib_s %.1f" % (n / MiB / secs))
    print("bytes %d" % n)
    print("max_peers %d" % peers[0])


def ttfb(path, count, seed):
    size = os.path.getsize(path)
    rnd = random.Random(seed)
    fd = os.open(path, os.O_RDONLY)
    t = []
    for _ in range(count):
        off = rnd.randrange(0, size // 16384) * 16384
        s = time.perf_counter()
        b = os.pread(fd, 16384, off)
        t.append((time.perf_counter() - s) * 1000.0)
        if len(t) == 1:
            first = t[0]
        if len(b) != min(16384, size - off):
            sys.exit("ttfb: short read at %d" % off)
    os.close(fd)
    t.sort()
    print("p50_ms %.2f" % pct(t, 50))
    print("p99_ms %.2f" % pct(t, 99))
    print("max_ms %.2f" % t[-1])
    print("first_ms %.2f" % first)


def first(paths):
    t = []
    for path in paths:
        s = time.perf_counter()
        fd = os.open(path, os.O_RDONLY)
        try:
            off = os.fstat(fd).st_size // 2 // 4096 * 4096
            if len(os.pread(fd, 4096, off)) == 0:
                sys.exit("first: nothing read from %s" % path)
        finally:
            os.close(fd)
        t.append((time.perf_counter() - s) * 1000.0)
    print("all_ms %s" % ",".join("%.1f" % x for x in t))
    t.sort()
    print("p50_ms %.1f" % pct(t, 50))
    print("max_ms %.1f" % t[-1])


def plainfirst(peer, magnets):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.piece_progress_notification,
    })
    host, port = peer.rsplit(":", 1)
    res = {"": [], "now_": []}
    outdir = tempfile.mkdtemp(prefix="plainfirst-")
    for i, magnet in enumerate(magnets * 2):
        mode = "" if i < len(magnets) else "now_"
        params = lt.parse_magnet_uri(magnet)
        params.save_path = outdir
        params.peers = [(host, int(port))]
        if mode:
            params.flags |= lt.torrent_flags.paused
            params.flags &= ~lt.torrent_flags.auto_managed
        s = time.perf_counter()
        h = ses.add_torrent(params)
        if mode:
            h.resume()
        want = None
        while True:
            if time.perf_counter() - s > 30:
                sys.exit("plainfirst: nothing after 30 s")
            for a in ses.pop_alerts():
                if isinstance(a, lt.metadata_received_alert) and want is None:
                    ti = h.torrent_file()
                    want = ti.map_file(0, ti.files().file_size(0) // 2 // 4096 * 4096, 1).piece
                    h.set_piece_deadline(want, 0)
            if want is not None and h.have_piece(want):
                break
            time.sleep(0.0005)
        res[mode].append((time.perf_counter() - s) * 1000.0)
        ses.remove_torrent(h, lt.session.delete_files)
    shutil.rmtree(outdir, ignore_errors=True)
    for mode, t in res.items():
        t.sort()
        print("%sp50_ms %.1f" % (mode, pct(t, 50)))
        print("%smax_ms %.1f" % (mode, t[-1]))


def pctl_print(t):
    t = sorted(t)
    print("p50_ms %.2f" % pct(t, 50))
    print("p99_ms %.2f" % pct(t, 99))
    print("max_ms %.1f" % t[-1])
    print("over50 %d" % sum(1 for x in t if x > 50.0))


def listed(path, t0):
    while not os.path.exists(path):
        if time.time() - t0 > 30:
            sys.exit("listed: no %s after 30 s" % path)
        time.sleep(0.001)
    print("ms %.1f" % ((time.time() - t0) * 1000.0))


def plainconnect(peer, magnet, count):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })
    host, port = peer.rsplit(":", 1)
    outdir = tempfile.mkdtemp(prefix="plainconnect-")
    t, failed = [], 0
    for _ in range(count):
        params = lt.parse_magnet_uri(magnet)
        params.save_path = outdir
        params.peers = [(host, int(port))]
        params.flags |= lt.torrent_flags.paused
        params.flags &= ~lt.torrent_flags.auto_managed
        s = time.perf_counter()
        h = ses.add_torrent(params)
        h.resume()
        while h.status().num_peers == 0 and time.perf_counter() - s < 5:
            time.sleep(0.0005)
        if h.status().num_peers:
            t.append((time.perf_counter() - s) * 1000.0)
        else:
            failed += 1  # seen now and then under load: counted, not timed
        ses.remove_torrent(h, lt.session.delete_files)
        time.sleep(0.05)
    shutil.rmtree(outdir, ignore_errors=True)
    if not t:
        sys.exit("plainconnect: no peer in %d tries of 5 s" % count)
    t.sort()
    print("p50_ms %.1f" % pct(t, 50))
    print("max_ms %.1f" % t[-1])
    print("failed %d" % failed)


def random4k(path, count, seed, raw=None):
    size = os.path.getsize(path)
    rnd = random.Random(seed)
    t = []
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    for _ in range(count):
        off = rnd.randrange(0, size // 4096) * 4096
        s = time.perf_counter()
        if len(os.pread(fd, 4096, off)) != min(4096, size - off):
            sys.exit("random4k: short read at %d" % off)
        t.append((time.perf_counter() - s) * 1000.0)
    os.close(fd)
    if raw:
        with open(raw, "a") as f:
            f.write("".join("%.3f\n" % x for x in t))
    pctl_print(t)
    print("secs %.2f" % (time.perf_counter() - t0))


def publish(src, mnt_a, mnt_b, count, size):
    seen, conf = [], []
    for i in range(count):
        name = "pub-%03d.bin" % i
        with open(os.path.join(src, name), "wb") as f:
            f.write(os.urandom(size))
        subprocess.run(["cp", os.path.join(src, name), mnt_a + "/"], check=True)
        t0 = time.perf_counter()
        got_b = got_a = None
        while got_b is None or got_a is None:
            now = time.perf_counter() - t0
            if now > 30:
                sys.exit("publish: %s not on B after 30 s (confirmed on A: %s)" % (name, got_a))
            if got_b is None and name in os.listdir(mnt_b):
                got_b = now
            if got_a is None:
                try:
                    if os.getxattr(os.path.join(mnt_a, name), "user.swarmfs.status") == b"confirmed":
                        got_a = now
                except OSError:
                    pass
            time.sleep(0.005)
        seen.append(got_b * 1000.0)
        conf.append(got_a * 1000.0)
        os.unlink(os.path.join(src, name))
    seen.sort()
    conf.sort()
    print("visible_p50_ms %.0f" % pct(seen, 50))
    print("visible_max_ms %.0f" % seen[-1])
    print("confirmed_p50_ms %.0f" % pct(conf, 50))
    print("confirmed_max_ms %.0f" % conf[-1])


def join(swarmfs, home, uri, mnt, timeout=60.0):
    os.makedirs(mnt, exist_ok=True)
    env = dict(os.environ, SWARMFS_DEBUG="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([swarmfs, "mount", "-f", "--home", home, "--no-dht", "--listen",
                          "127.0.0.1:0", uri, mnt, "-o", "auto_unmount"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    marks = {}
    tail = []

    def reader():
        for raw in p.stderr:
            now = time.perf_counter()
            line = raw.decode("utf-8", "replace")
            if "up" not in marks and "sync: member " in line and " is " in line:
                marks["up"] = now
            if "admit" not in marks and "sync: admitted peer" in line:
                marks["admit"] = now
            tail.append(line)
            del tail[:-20]

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    synced = None
    while time.perf_counter() - t0 < timeout and p.poll() is None:
        try:
            if b"sync: in sync" in os.getxattr(mnt, "user.swarmfs.drive"):
                synced = time.perf_counter()
                break
        except OSError:
            pass
        time.sleep(0.002)
    if os.path.ismount(mnt):
        subprocess.run(["fusermount3", "-u", mnt], check=False)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    th.join(5)
    if synced is None:
        sys.exit("join of %s did not get in sync; its log ends:\n%s" % (uri, "".join(tail)))
    print("join_ms %.1f" % ((synced - t0) * 1000.0))
    if "up" in marks and "admit" in marks:
        print("handshake_ms %.1f" % ((marks["admit"] - marks["up"]) * 1000.0))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "download" and len(argv) in (5, 6):
        download(argv[2], argv[3], argv[4], float(argv[5]) if len(argv) == 6 else 600.0)
    elif cmd == "read" and len(argv) == 3:
        read(argv[2])
    elif cmd == "ttfb" and len(argv) == 5:
        ttfb(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "join" and len(argv) == 6:
        join(argv[2], argv[3], argv[4], argv[5])
    elif cmd == "first" and len(argv) >= 3:
        first(argv[2:])
    elif cmd == "plainfirst" and len(argv) >= 4:
        plainfirst(argv[2], argv[3:])
    elif cmd == "listed" and len(argv) == 4:
        listed(argv[2], float(argv[3]))
    elif cmd == "plainconnect" and len(argv) == 5:
        plainconnect(argv[2], argv[3], int(argv[4]))
    elif cmd == "random4k" and len(argv) in (5, 6):
        random4k(argv[2], int(argv[3]), int(argv[4]), argv[5] if len(argv) == 6 else None)
    elif cmd == "pctl" and len(argv) == 3:
        with open(argv[2]) as f:
            pctl_print([float(x) for x in f.read().split()])
    elif cmd == "publish" and len(argv) == 7:
        publish(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
