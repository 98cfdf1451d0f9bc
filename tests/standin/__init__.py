"""Stand-in model servers for the LLM agents' tests: real SDKs, real HTTP, loopback only, no key needed.

:class:`StandIn` listens on 127.0.0.1 at a free port and answers every POST with the next scripted reply
(a JSON body, a :class:`Status` for an HTTP error, a :class:`Stall` that sleeps past the client's timeout),
or, once the script is used up, with ``default(request body)``. Every request is recorded (path, headers,
body), so a test can check what the SDK actually sent.
"""

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass(frozen=True)
class Status:
    code: int
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Stall:
    seconds: float
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    raw: bytes


class StandIn:
    def __init__(self, script: list[Any] = (), default: Callable[[dict[str, Any]], Any] | None = None):
        self.script = list(script)
        self.default = default
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                body = json.loads(raw)
                with standin._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    standin.requests.append(Request(self.path, headers, body, raw))
                    reply = standin.script.pop(0) if standin.script else None
                if reply is None:
                    assert standin.default is not None, "the stand-in's script is used up"
                    reply = standin.default(body)
                code = 200
                if isinstance(reply, Stall):
                    time.sleep(reply.seconds)
                    reply = reply.body
                if isinstance(reply, Status):
                    code, reply = reply.code, reply.body
                data = json.dumps(reply).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "StandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- reply bodies in each API's wire format -------------------------------------------------------------
def anthropic_tool(
    data: dict[str, Any], *, model: str = "claude-standin", tokens: tuple[int, int] = (1000, 100)
):
    """A Messages API reply holding one ``propose`` tool call."""
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "tool_use", "id": "toolu_standin", "name": "propose", "input": data}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


def openai_text(text: str, *, model: str = "local-standin", tokens: tuple[int, int] = (1000, 100)):
    """A chat-completions reply holding ``text``."""
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)},
    }


# --- a default responder: valid proposals for whatever the request asks -----------------------------------
def request_text(body: dict[str, Any]) -> str:
    """The user text of a request in either wire format."""
    for message in body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content)
    raise AssertionError("no user message")


def proposals_for(text: str) -> dict[str, Any]:
    """One valid proposal per requested iteration: mutate the highest-UCB node of the block if the UCB table
    has one (else the root), with a learning rate that depends on the iteration, so the tree is scripted."""
    iterations = [int(i) for i in re.findall(r"^- iteration (\d+):", text, flags=re.MULTILINE)]
    ucb = re.search(r"^Node (\d+): UCB", text, flags=re.MULTILINE)
    parent = int(ucb.group(1)) if ucb else None
    return {
        "proposals": [
            {
                "iteration": i,
                "parent": parent,
                "mutation": {"training.learning_rate_k": round(0.002 * (1 + i), 6)},
                "strategy": "exploit",
                "rationale": f"step the learning rate for iteration {i}",
            }
            for i in iterations
        ]
    }


def anthropic_default(body: dict[str, Any]) -> dict[str, Any]:
    return anthropic_tool(proposals_for(request_text(body)))


def openai_default(body: dict[str, Any]) -> dict[str, Any]:
    return openai_text(json.dumps(proposals_for(request_text(body))))
