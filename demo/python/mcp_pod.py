"""A stock Python MCP server pod: the official `mcp` SDK's FastMCP, stateful
Streamable HTTP, run by uvicorn, as the SDK's own examples run it.

The same tools and test endpoints as demo/mcp-pod.ts, so the integration tests
drive either kind of pod alike:
  tools: whoami (pod and session), echo (text), slow (ms)
  resources: demo://counter (changes on POST /_touch) and demo://other, which
                 a client may subscribe to (any other URI is refused:
                 "Resource not found"); logging/setLevel per session
  POST /_touch?uri=U   notifications/resources/updated to every session
                 subscribed to U
  POST /_log?level=L   a log message at level L to every session at or
                 below it (each session's own level, as logging/setLevel set it)
  GET /_record   what this process saw: every request (HTTP method, session id,
                 JSON-RPC method, status), the session ids it created
                 (initialize), notifications/initialized and DELETEs, and
                 inFlight: POST/DELETE requests not yet answered in full
                 (what a preStop hook waits on before the pod gets SIGTERM)
Nothing about session handling is changed: an unknown session id gets exactly
what this `mcp` version answers (400 before 1.26, 404 from 1.26 on).

Env: POD_NAME, POD_HOST (default 127.0.0.1), POD_PORT (default 0).
Prints one JSON line {"listening": "host:port", "name": ..., "mcp": version}
when it accepts connections. SIGTERM: uvicorn's own shutdown (it closes open
SSE responses at once: what a rollout has to plan for).
"""

import asyncio
import importlib.metadata
import json
import os
import socket
import sys

import uvicorn
from mcp import types
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import McpError
from urllib.parse import parse_qs

NAME = os.environ.get("POD_NAME", "pod")
HOST = os.environ.get("POD_HOST", "127.0.0.1")
PORT = int(os.environ.get("POD_PORT", "0"))
MCP_VERSION = importlib.metadata.version("mcp")

record = {"name": NAME, "mcp": MCP_VERSION, "initialize": [], "initialized": [], "deleted": [], "reads": [], "requests": [], "inFlight": 0}

# Envoy forwards the client's Host header; the pods sit behind it on loopback,
# so the SDK's DNS-rebinding check (meant for servers on a developer's laptop)
# is off, as a deployment behind a proxy sets it.
mcp = FastMCP(f"demo-{NAME}", transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))


def session_of(ctx: Context) -> str | None:
    request = ctx.request_context.request
    return request.headers.get("mcp-session-id") if request is not None else None


@mcp.tool(description="Which pod and session answered")
async def whoami(ctx: Context) -> str:
    return json.dumps({"pod": NAME, "session": session_of(ctx)})


@mcp.tool(description="Echoes its argument back, with the pod name")
async def echo(text: str) -> str:
    return json.dumps({"pod": NAME, "text": text})


@mcp.tool(description="Answers after `ms` milliseconds")
async def slow(ms: int) -> str:
    await asyncio.sleep(ms / 1000)
    return json.dumps({"pod": NAME, "slept": ms})


SUBSCRIBABLE = {"demo://counter", "demo://other"}
LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]
# Per session: the server session (to notify it outside a request), its subscriptions and its level.
sessions: dict[str, dict] = {}
counter = {"value": 0}


@mcp.resource("demo://counter", description="A number that changes on POST /_touch")
def counter_resource() -> str:
    return json.dumps({"pod": NAME, "counter": counter["value"]})


@mcp.resource("demo://other", description="Another resource one may subscribe to")
def other_resource() -> str:
    return NAME


lowlevel = mcp._mcp_server


def this_session() -> dict:
    ctx = lowlevel.request_context
    sid = ctx.request.headers.get("mcp-session-id") if ctx.request is not None else None
    entry = sessions.setdefault(sid or "", {"subscriptions": set(), "level": None})
    entry["session"] = ctx.session
    return entry


@lowlevel.subscribe_resource()
async def on_subscribe(uri) -> None:
    if str(uri) not in SUBSCRIBABLE:
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message="Resource not found"))
    this_session()["subscriptions"].add(str(uri))


@lowlevel.unsubscribe_resource()
async def on_unsubscribe(uri) -> None:
    this_session()["subscriptions"].discard(str(uri))


@lowlevel.set_logging_level()
async def on_level(level) -> None:
    this_session()["level"] = level


# The SDK advertises no subscriptions even with the handlers above; this pod supports them.
_capabilities = lowlevel.get_capabilities


def get_capabilities(*args, **kwargs):
    caps = _capabilities(*args, **kwargs)
    if caps.resources is not None:
        caps.resources.subscribe = True
    return caps


lowlevel.get_capabilities = get_capabilities


async def touch(uri: str) -> int:
    counter["value"] += 1
    sent = 0
    for entry in list(sessions.values()):
        if uri in entry["subscriptions"] and "session" in entry:
            try:
                await entry["session"].send_resource_updated(uri)
                sent += 1
            except Exception:  # noqa: BLE001 - a closed session is not this pod's failure
                pass
    return sent


async def log(level: str) -> None:
    for entry in list(sessions.values()):
        if "session" not in entry:
            continue
        if entry["level"] is not None and LEVELS.index(level) < LEVELS.index(entry["level"]):
            continue
        try:
            await entry["session"].send_log_message(level=level, data=f"{level} from {NAME}")
        except Exception:  # noqa: BLE001
            pass


def rpc_methods(body: bytes) -> list[str]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return [m["method"] for m in items if isinstance(m, dict) and isinstance(m.get("method"), str)]


def recording(app):
    """ASGI middleware: notes each request (the body is read here and replayed to the app)."""

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        if scope["path"] == "/_record" and scope["method"] == "GET":
            body = json.dumps(record).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": body})
        if scope["path"] in ("/_touch", "/_log") and scope["method"] == "POST":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if scope["path"] == "/_touch":
                result = {"sent": await touch(query.get("uri", [""])[0])}
            else:
                await log(query.get("level", ["info"])[0])
                result = {"sent": len(sessions)}
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": json.dumps(result).encode()})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        methods = rpc_methods(body) if scope["method"] == "POST" else []
        sid = headers.get("mcp-session-id")
        seen = {"httpMethod": scope["method"], "sessionId": sid, "rpcMethod": methods[0] if methods else None}
        if "mcp-protocol-version" in headers:
            seen["protocolVersion"] = headers["mcp-protocol-version"]
        leaked = [h for h in headers if h.startswith("x-mcp-pin")]
        if leaked:
            seen["pinHeaders"] = leaked
        record["requests"].append(seen)
        if sid is not None and "notifications/initialized" in methods:
            record["initialized"].append(sid)
        if sid is not None and scope["method"] == "DELETE":
            record["deleted"].append(sid)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                if "initialize" in methods:
                    for k, v in message.get("headers", []):
                        if k.decode("latin-1").lower() == "mcp-session-id":
                            record["initialize"].append(v.decode("latin-1"))
            await send(message)

        counted = scope["method"] != "GET"  # a standalone GET stream never ends by itself
        if counted:
            record["inFlight"] += 1
        try:
            await app(scope, replay, watch)
        finally:
            if counted:
                record["inFlight"] -= 1

    return middleware


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, PORT))
    app = recording(mcp.streamable_http_app())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        port = sock.getsockname()[1]
        print(json.dumps({"listening": f"{HOST}:{port}", "name": NAME, "mcp": MCP_VERSION}), flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
