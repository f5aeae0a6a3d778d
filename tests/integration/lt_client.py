#!/usr/bin/python3
"""A standard BitTorrent client for the tests: python3-libtorrent (Debian's), kept to
127.0.0.1 (no DHT, LSD, UPnP or NAT-PMP). Downloads a magnet into a directory and exits
0 once it has every piece, 1 on timeout; says how many pieces it has and how many bytes
failed their hash check.

usage: lt_client.py MAGNET OUTDIR TIMEOUT_SECONDS [seed]
With "seed" it stays up after the download, seeding (a seedbox), until it is killed or
TIMEOUT_SECONDS pass; "complete" is printed (and flushed) when it has every piece.
"""
import sys
import time

import libtorrent as lt

magnet, outdir, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
seed = len(sys.argv) > 4 and sys.argv[4] == "seed"
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    # opentracker hands every peer its own address back; allow both ends on 127.0.0.1
    "allow_multiple_connections_per_ip": True,
})
params = lt.parse_magnet_uri(magnet)
params.save_path = outdir
handle = ses.add_torrent(params)
deadline = time.time() + timeout
while time.time() < deadline:
    st = handle.status()
    if st.is_seeding:
        print("complete", st.total_wanted, "bytes from", st.num_peers, "peers",
              "failed_bytes", st.total_failed_bytes, flush=True)
        if not seed:
            sys.exit(0)
        while time.time() < deadline:
            time.sleep(0.2)
        sys.exit(0)
    time.sleep(0.1)
st = handle.status()
print("timeout: state", st.state, "progress", st.progress, "peers", st.num_peers,
      "has metadata", st.has_metadata, "pieces", st.num_pieces,
      "failed_bytes", st.total_failed_bytes)
sys.exit(1)
