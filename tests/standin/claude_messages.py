"""A stand-in Anthropic Messages API for the real Claude Code CLI, on loopback only.

Why: the ``claude`` agent backend drives the real CLI, and CI has no network and no key. The CLI only needs an
HTTP endpoint that speaks the Messages API with SSE streaming, so this server scripts the model's side of
the conversation: a queue of turns, each a list of blocks (text, or tool_use for Read/Edit/Write). Every
request is recorded (path and JSON body) so tests can assert what the CLI sent. Any request the script
does not cover (telemetry, feature flags, token counting) gets a minimal answer so the CLI proceeds.
"""

import dataclasses
import http.server
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": name, "input": tool_input}


# a turn: its blocks, or a function of the request body (to answer what a tool returned, e.g. a file read)
Turn = list[dict[str, Any]] | Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    body: Any


class ClaudeMessagesStandIn:
    """``with ClaudeMessagesStandIn(turns) as s: ... s.url``; each POST /v1/messages consumes one turn.

    A turn ending in tool_use blocks stops with ``stop_reason="tool_use"`` (the CLI runs the tools and asks
    again); a text-only turn ends the conversation. When the queue is empty the answer is a plain "done".
    """

    def __init__(self, turns: list[Turn], model: str = "claude-standin") -> None:
        self.turns = list(turns)
        self.model = model
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def messages(self) -> list[Any]:
        """The bodies of the POST /v1/messages requests, in order."""
        return [
            r.body for r in self.requests if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"
        ]

    def __enter__(self) -> "ClaudeMessagesStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_turn(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            turn = self.turns.pop(0) if self.turns else [text("done")]
        return turn(body) if callable(turn) else turn

    def _events(self, blocks: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        usage = {"input_tokens": 10, "output_tokens": 0}
        message = {
            "id": f"msg_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        yield "message_start", {"type": "message_start", "message": message}
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                start = {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._ids)}",
                    "name": block["name"],
                    "input": {},
                }
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: requests are recorded instead
                pass

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                standin.requests.append(Recorded("GET", self.path, None))
                self._json(
                    404, {"type": "error", "error": {"type": "not_found_error", "message": "stand-in"}}
                )

            def do_HEAD(self) -> None:
                standin.requests.append(Recorded("HEAD", self.path, None))
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                standin.requests.append(Recorded("POST", self.path, body))
                path = self.path.split("?")[0]
                if path == "/v1/messages/count_tokens":
                    self._json(200, {"input_tokens": 10})
                elif path != "/v1/messages":
                    self._json(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": "stand-in"}}
                    )
                elif isinstance(body, dict) and body.get("stream"):
                    self._stream(standin._next_turn(body))
                else:
                    self._whole(standin._next_turn(body))

            def _whole(self, blocks: list[dict[str, Any]]) -> None:
                events = dict(standin._events(blocks))
                message = events["message_start"]["message"]
                content = [
                    {**b, "id": f"toolu_{next(standin._ids)}"} if b["type"] == "tool_use" else b
                    for b in blocks
                ]
                stop = events["message_delta"]["delta"]["stop_reason"]
                self._json(200, {**message, "content": content, "stop_reason": stop})

            def _stream(self, blocks: list[dict[str, Any]]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                for event, data in standin._events(blocks):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

        return Handler
