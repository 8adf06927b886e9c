"""The Downloader's default parallelism, in a module of its own.

The command shows these in ``--help``; importing them from here keeps the
transfers, requests and the thread pool out of that start-up.
"""

# At most this many connections to any one host. Hosts that cap each
# connection (CDNs, university servers) give about N times one connection's
# speed; 8 is what download managers commonly default to, half of aria2c's
# ceiling of 16, and below the per-client limits servers commonly set.
CONNECTIONS = 8

# Files at once: enough to keep every connection busy while the small files
# go by; a large file fills the connections with its byte ranges anyway.
JOBS = 4
