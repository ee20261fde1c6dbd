"""A counting HTTP proxy in front of a Chroma server, for benchmarks: every request is
forwarded unchanged and counted by method and route (the collection id folded away), so two
kass builds can be compared by the requests they make to the store, measured at the wire.

Usage: python3 count_requests_proxy.py LISTEN_PORT UPSTREAM_URL COUNTS_FILE
The counts are written to COUNTS_FILE (JSON) after every request.
"""
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, upstream, counts_file = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
counts = {}
lock = threading.Lock()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        route = f"{self.command} {UUID.sub('{id}', self.path.split('?')[0])}"
        with lock:
            counts[route] = counts.get(route, 0) + 1
            with open(counts_file, "w") as f:
                json.dump(counts, f, indent=1, sort_keys=True)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                status, answer_headers, data = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as e:
            status, answer_headers, data = e.code, e.headers, e.read()
        self.send_response(status)
        for k, v in answer_headers.items():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
