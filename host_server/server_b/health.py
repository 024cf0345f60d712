# host_server.server_b.health: B's HTTP endpoint for operations, in a thread beside the UDP
# loop: GET /metrics (Prometheus text, every metric labelled with the instance; also
# served on / as before) and GET /health (JSON: status, instance, worker, store, sink,
# redis, revocation stream, counts). /health answers 200 while B can serve handshakes,
# "degraded" when it runs without a dependency (Redis down: 0-RTT refused; store or CS
# unreachable: cached devices only), and 503 only when B is stopping.
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

Health = Callable[[], tuple[int, dict[str, Any]]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass


def serve(host: str, port: int, registry: CollectorRegistry,
          health: Health) -> tuple[WSGIServer, threading.Thread]:
    """Start the endpoint; returns (server, thread). OSError if the port is taken."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/health":
            try:
                status, body = health()
            except Exception as e:  # noqa: BLE001 - a health check must answer
                status, body = 500, {"status": "error", "error": type(e).__name__}
            data = json.dumps(body, separators=(",", ":")).encode()
            start_response(f"{status} {'OK' if status == 200 else 'Unavailable'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
            return [data]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="b-metrics", daemon=True)
    thread.start()
    return server, thread
