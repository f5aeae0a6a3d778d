#!/usr/bin/python3
"""A DHT bootstrap node for the tests: a python3-libtorrent session with the DHT on, no
torrents, no routers of its own (it is the first node), listening on ADDR:PORT only.
Private addresses are allowed in its routing table. Prints "dht PORT" once it listens;
runs until killed.

usage: lt_dht_node.py ADDR PORT
"""
import sys
import time

import libtorrent as lt

addr, port = sys.argv[1], int(sys.argv[2])
ses = lt.session({
    "listen_interfaces": "%s:%d" % (addr, port),
    "enable_dht": True, "dht_bootstrap_nodes": "",
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
})
deadline = time.time() + 30
while time.time() < deadline and ses.listen_port() == 0:
    time.sleep(0.05)
print("dht", ses.listen_port(), flush=True)
while True:
    time.sleep(1)
