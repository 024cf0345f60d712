# tests/host/conftest.py: the session fixtures that start real servers for the scale-out
# tests (postgres, redis_server, slapd; tests/host/servers.py) are visible to every
# test module here.
from servers import postgres, redis_server, slapd  # noqa: F401
