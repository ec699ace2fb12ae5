"""A real HTTP server on loopback that speaks just enough of the OpenAI chat API to inject
faults: 429 with Retry-After, 500, replies slower than the client's timeout, unreadable
bodies and schema-violating content, in scripted bursts. Between faults it answers with
a minimal instance of the JSON schema the request asked for. `hold` keeps a reply back until
`let_go()` (requests in flight at a known moment, for a stop signal to find).

A teacher's start-up check (`TeacherLLM.start`, schema `ReadyCheck`) is answered before and
outside the script and `content`, and counted in `ready_checks` only: scripted faults land
on the calls a run pays for, as they did before runs checked their teacher first."""

from __future__ import annotations

import hashlib
import json
import random
import re
import re._parser as regex_parser
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any, Self

from teachloop.environments.skillworld import SkillWorld


def instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value that fits a (pydantic-generated) JSON schema."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return instance(defs[schema["$ref"].split("/")[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return instance(options[0], defs)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, defs) for name, sub in props.items()}
    if kind == "array":
        return [instance(schema.get("items", {}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        if "pattern" in schema:
            return shortest_match(schema["pattern"])
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return True
    return None


def shortest_match(pattern: str) -> str:
    """A shortest string the regex matches (literals, classes, groups, `|`, quantifiers,
    anchors): what a minimal item of a patterned schema looks like."""

    def walk(items) -> str:  # noqa: ANN001
        out = []
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "IN":
                first = arg[0]
                out.append(chr(first[1][0] if str(first[0]) == "RANGE" else first[1]))
            elif name == "SUBPATTERN":
                out.append(walk(arg[-1]))
            elif name == "BRANCH":
                out.append(min((walk(b) for b in arg[1]), key=len))
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, _, sub = arg
                out.append(walk(sub) * low)
            elif name == "ANY":
                out.append("x")
        return "".join(out)

    return walk(regex_parser.parse(pattern)) or "x"


def chat_reply(request: dict[str, Any], content: str) -> dict[str, Any]:
    """An OpenAI chat.completion body answering `request` with `content`."""
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class LoopbackServer:
    """A threaded HTTP server on a free loopback port, run in the background as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultServer(LoopbackServer):
    def __init__(
        self,
        script: list[str] | None = None,
        slow_seconds: float = 1.5,
        port: int = 0,
        retry_after: str = "0.05",
        content: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        """`content(request) -> object`: the JSON reply for an answered request (default: the
        smallest instance of the requested schema). Every request is kept in `requests`
        with its arrival time (`arrivals`)."""
        self.script: deque[str] = deque(script or [])
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.content = content
        self.served: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.ready_checks = 0
        self.held = 0  # `hold` requests that arrived (answered once let go)
        self.released = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                schema = request["response_format"]["json_schema"]["schema"]
                if schema.get("title") == "ReadyCheck":
                    with server.lock:
                        server.ready_checks += 1
                    return self._send(200, json.dumps(chat_reply(request, json.dumps({"ok": True}))).encode())
                with server.lock:
                    kind = server.script.popleft() if server.script else "ok"
                    server.served[kind] += 1
                    server.requests.append(request | {"authorization": self.headers.get("Authorization")})
                    server.arrivals.append(time.monotonic())
                if kind == "429":
                    return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": server.retry_after})
                if kind == "500":
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if kind == "reject":
                    return self._send(400, b'{"error": {"message": "prompt is longer than the context"}}')
                if kind == "badbody":
                    return self._send(200, b"{this is not json")
                if kind == "slow":
                    time.sleep(server.slow_seconds)
                if kind == "hold":
                    with server.lock:
                        server.held += 1
                    server.released.wait(timeout=120)
                answer = server.content(request) if server.content else instance(schema)
                content = "not json at all" if kind == "badcontent" else json.dumps(answer)
                return self._send(200, json.dumps(chat_reply(request, content)).encode())

        super().__init__(Handler, port)

    def total(self) -> int:
        return sum(self.served.values())

    def let_go(self) -> None:
        """Answer the held requests (and every later `hold` at once)."""
        self.released.set()

    def __exit__(self, *exc: Any) -> None:
        self.let_go()  # held handler threads must not outlive the server
        super().__exit__(*exc)


class GatedProxy(LoopbackServer):
    """A real HTTP proxy on loopback in front of an OpenAI-compatible server. It forwards
    every request, except that once `open_count` requests asking for the JSON schema
    `gated_schema` have been answered, further such requests are held (the client sees a
    teacher that stopped answering mid-phase) until `release()`. This pins a run at a known
    point of its generation phase, so a test can kill it there on a machine of any speed."""

    def __init__(self, upstream_base_url: str, gated_schema: str, open_count: int) -> None:
        self.upstream = upstream_base_url.rstrip("/").removesuffix("/v1")
        self.gated_schema = gated_schema
        self.open_count = open_count
        self.admitted = 0
        self.answered = 0
        self.held = 0
        self.released = threading.Event()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                schema = json.loads(body).get("response_format", {}).get("json_schema", {}).get("name")
                gated = schema == proxy.gated_schema
                if gated:
                    with proxy.lock:
                        admit = proxy.admitted < proxy.open_count
                        proxy.admitted += admit
                        proxy.held += not admit
                    if not admit:
                        proxy.released.wait()
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=600) as reply:
                        code, payload = reply.status, reply.read()
                except urllib.error.HTTPError as error:
                    code, payload = error.code, error.read()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return
                if gated:
                    with proxy.lock:
                        proxy.answered += 1

        super().__init__(Handler)

    def release(self) -> None:
        self.released.set()

    def __exit__(self, *exc: Any) -> None:
        self.release()  # held handler threads must not outlive the server
        super().__exit__(*exc)


def copy_items(request: dict) -> dict:
    """A teacher that writes a distinct, correct item of the requested skill for every request."""
    text = request["messages"][-1]["content"]
    variant = re.search(r"\(variant (\S+)\)", text).group(1)
    skill = re.search(r"^Skill: (\w+)", text).group(1)
    item = SkillWorld().make(skill, random.Random(hashlib.sha256(variant.encode()).hexdigest()))
    return {"question": item.prompt.strip(), "answer": item.answer}
