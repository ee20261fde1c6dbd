# An OpenAI-shaped embedding server that answers at once: what is left of a run is kass's own path.
#
#   python3 scripts/instant_embed.py PORT [DIM]
#
# `vector(text, dim)` is importable, so a benchmark can hand the Python client exactly the vectors
# kass stored (HNSW's insert cost depends on the vectors, not only on their number).
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def vector(text, dim=384):
    # A stable hash (Python's own hash() changes per process): the same text, the same vector.
    h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return [((h >> (k % 60)) & 7) / 7.0 + 0.01 for k in range(dim)]


def serve(port, dim):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": vector(text, dim)}
                    for i, text in enumerate(inputs)]
            out = json.dumps({"object": "list", "data": data, "model": body.get("model"),
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 384)
