"""Load tool: drives a real `genspot serve` process (with real Redis) from many async clients.

Run ``python -m tests.load.run --help``. Everything it talks to is on loopback: a local image
server, a redis-server it starts, and the service under test. Every run is bounded in
request count and in time.
"""
