"""The Downloader's defaults (parallelism, timeouts, pieces), in a module of its own.

The command shows some in ``--help`` and the library's signatures name them;
importing them from here keeps the transfers, requests and the thread pool
out of that start-up.
"""

# At most this many connections to any one host. Hosts that cap each
# connection (CDNs, university servers) give about N times one connection's
# speed; 8 is what download managers commonly default to, half of aria2c's
# ceiling of 16, and below the per-client limits servers commonly set.
CONNECTIONS = 8

# The most either may be set to. Each connection is a pooled socket and a
# thread, each job a thread: a number from a typo (--connections 1000000000)
# made urllib3 fill a pool queue of that many slots, a process growing by GBs
# that no Ctrl-C could stop. 64 is 4x aria2c's ceiling of 16 connections.
MAX_CONNECTIONS = 64
MAX_JOBS = 64

# Files at once: enough to keep every connection busy while the small files
# go by; a large file fills the connections with its byte ranges anyway.
JOBS = 4

# Connect quickly or give up (a dead host should cost seconds, not minutes);
# a read may stall longer on a slow mirror before we call it a stall.
TIMEOUT = (10.0, 30.0)

# Byte ranges are handed out in order, to whichever connection is free (as
# aria2c does with its pieces): fast connections take more, the contiguous
# prefix grows steadily so hashing keeps pace, and a cut costs a retry of the
# rest of one piece, not of a whole segment. 8 MiB is the last round's size;
# before it, ranges are twice that (pieces.cut says why).
PIECE = 8 << 20
# A connection faster than this (50 MB/s, 400 Mbit/s) is not what limits a
# download on a machine that must also write and hash every byte: no more are
# opened. Its speed is taken over the first 2 MiB: 100 ms at 20 MB/s, a few ms
# over loopback even with other files arriving at the same time.
FAST_CONNECTION = 50e6
