#!/usr/bin/python3
"""A standard seeder for the tests: python3-libtorrent (Debian's) makes a torrent of a
file or directory (hybrid v1+v2 by default, libtorrent 2's own choice) and seeds it on
127.0.0.1 (no DHT, LSD, UPnP or NAT-PMP) until killed. Writes the .torrent first, then
prints "seeding PORT" once it listens and has checked its data.

usage: lt_seed.py PATH OUT.torrent PIECE_LENGTH
"""
import os
import sys
import time

import libtorrent as lt

path, out, plen = sys.argv[1], sys.argv[2], int(sys.argv[3])
fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, plen)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
data = lt.bencode(ct.generate())
with open(out, "wb") as f:
    f.write(data)
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
})
params = lt.add_torrent_params()
params.ti = lt.torrent_info(data)
params.save_path = os.path.dirname(os.path.abspath(path))
handle = ses.add_torrent(params)
deadline = time.time() + 60
while time.time() < deadline and not handle.status().is_seeding:
    time.sleep(0.05)
if not handle.status().is_seeding:
    sys.exit("seeder: data does not check")
print("seeding", ses.listen_port(), flush=True)
while True:
    time.sleep(1)
