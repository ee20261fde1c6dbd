# An OpenAI-shaped embedding server that answers at once: what is left of a run is kass's own path.
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIM = int(sys.argv[2]) if len(sys.argv) > 2 else 384

class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            h = abs(hash(text))
            v = [((h >> (k % 60)) & 7) / 7.0 + 0.01 for k in range(DIM)]
            data.append({"object": "embedding", "index": i, "embedding": v})
        out = json.dumps({"object": "list", "data": data, "model": body.get("model"),
                          "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
