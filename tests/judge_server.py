"""A chat-completions server on 127.0.0.1 for the judge tests: it rates a response by its own text and
misbehaves on request, and counts what it receives and answers per response text.

The rating of a response is len(response) % 6. Markers in the response text make it misbehave on its
first request: "[429]" (a 429 with Retry-After: 0), "[503]", "[slow]" (a reply after `slow_seconds`,
past the client's timeout), "[garbage]" (a 200 whose reply holds no rating), "[notjson]" (a 200 whose
body is not JSON); "[never]" replies without a rating every time; "[gate]" holds every request until
`gate` is set. `answered` counts the 200s with a rating sent per response text (what a client may
keep), `received` every request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RESPONSE = re.compile(r"\nResponse: (.*?)\n\nPlease rate", re.DOTALL)


def rating_of(response: str) -> int:
    return len(response) % 6


class JudgeServer:
    def __init__(self, slow_seconds: float = 3.0, require_key: str | None = None):
        self.received: Counter = Counter()
        self.answered: Counter = Counter()
        self.slow_seconds = slow_seconds
        self.require_key = require_key
        self.gate = threading.Event()
        self.waiting = 0  # requests held at the gate right now
        self.lock = threading.Lock()
        self.tokens = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:  # the client went away (timed out, or was killed)
                    return False
                return True

            def _peer_gone(self) -> bool:
                import select
                import socket

                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def do_GET(self):
                self._send(200, json.dumps({"data": [{"id": "judge"}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if server.require_key and self.headers.get("Authorization") != f"Bearer {server.require_key}":
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                    return
                if body.get("model") != "judge":
                    self._send(404, b'{"error": {"message": "model not found"}}')
                    return
                prompt = body["messages"][-1]["content"]
                match = _RESPONSE.search(prompt)
                response = match.group(1) if match else prompt
                with server.lock:
                    server.received[response] += 1
                    first = server.received[response] == 1
                if "[gate]" in response:
                    with server.lock:
                        server.waiting += 1
                    server.gate.wait(30)
                    with server.lock:
                        server.waiting -= 1
                    if self._peer_gone():  # the client was killed while held: nothing to answer
                        return
                if first and "[429]" in response:
                    self._send(429, b'{"error": "slow down"}', {"Retry-After": "0"})
                    return
                if first and "[503]" in response:
                    self._send(503, b'{"error": "overloaded"}')
                    return
                if first and "[slow]" in response:
                    time.sleep(server.slow_seconds)
                if first and "[notjson]" in response:
                    self._send(200, b"<html>oops</html>")
                    return
                if "[never]" in response or (first and "[garbage]" in response):
                    text = "I would rather not say."
                    rated = False
                else:
                    text = f"Score: {rating_of(response)}\nThe answer is fine."
                    rated = True
                reply = {"choices": [{"message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
                late = first and "[slow]" in response  # sent after the client gave up waiting
                if self._send(200, json.dumps(reply).encode()) and rated and not late:
                    with server.lock:
                        server.answered[response] += 1
                        server.tokens += 15

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "JudgeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()
