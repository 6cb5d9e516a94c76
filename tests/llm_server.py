"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests that go through real HTTP.

Use the ``llm_server`` fixture (registered in ``conftest.py``)::

    def test_x(llm_server):
        llm_server.script("a red ball rolls", Reply(status=429), Reply(delay=5.0), ...)
        client = LLMClient("test-model", base_url=llm_server.url)
        ...
        assert llm_server.requests[0]["messages"][1]["content"].startswith("Let me give you")

Each POST to ``/v1/chat/completions`` pops the next scripted reply (a string
is a normal answer); when the script runs out, ``default`` answers (or a 500
when it is ``None``). A reply can be an HTTP error with a status code, a
delay (to trigger client timeouts), a malformed body, or a function of the
request. Every request body is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted response.

    Args:
        content: the assistant's answer (for a 200).
        status: HTTP status; not 200 sends an OpenAI-style error body.
        delay: seconds to wait before answering.
        raw: a body sent as it is (malformed JSON, empty, ...), overriding ``content``.
    """

    content: str | Callable[[dict[str, Any]], str] = ""
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None


def _completion(content: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class ScriptedLLMServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default: Reply | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                with server._lock:
                    server.requests.append(body)
                    reply = server.replies.popleft() if server.replies else server.default
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    reply = Reply(status=404)
                if reply is None:
                    reply = Reply(status=500)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw is not None:
                    data, status = reply.raw, reply.status
                elif reply.status != 200:
                    error = {
                        "message": f"scripted status {reply.status}",
                        "type": "server_error",
                        "code": None,
                    }
                    data, status = json.dumps({"error": error}).encode(), reply.status
                else:
                    content = reply.content(body) if callable(reply.content) else reply.content
                    data, status = json.dumps(_completion(content, body.get("model", "test"))).encode(), 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply | str) -> None:
        """Queue replies; a string is a 200 answer with that content."""
        with self._lock:
            self.replies.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def user_messages(self) -> list[str]:
        """The last user message of every request received, in order."""
        out = []
        for body in self.requests:
            users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
            out.append(users[-1] if users else "")
        return out

    def start(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def llm_server():
    """A fresh scripted OpenAI-compatible server for one test."""
    server = ScriptedLLMServer().start()
    try:
        yield server
    finally:
        server.stop()
