"""A Python MCP client (the official `mcp` SDK's ClientSession over Streamable
HTTP), driven by the integration tests one JSON line at a time.

argv[1]: the MCP URL. Prints {"connected": <session id>} once initialized.
Then reads commands from stdin, one JSON object per line, each with an "id":
  {"id": 1, "op": "whoami"}            -> {"id": 1, "ok": {"pod": ..., "session": ...}}
  {"id": 2, "op": "echo", "text": "x"} -> {"id": 2, "ok": {"pod": ..., "text": "x"}}
  {"id": 3, "op": "session"}           -> {"id": 3, "ok": <the client's session id>}
  {"id": 4, "op": "subscribe", "uri": "demo://counter"}   (and "unsubscribe")
  {"id": 5, "op": "setLevel", "level": "warning"}
  {"id": 6, "op": "heard"}             -> {"id": 6, "ok": {"updates": [uri, ...], "logs": [data, ...]}}
                                          (resource updates and log messages received so far)
  {"id": 7, "op": "forget"}            empties what "heard" returns
Commands run concurrently (each in its own task); a failure answers
{"id": n, "error": "<type>: <message>"}. End of stdin closes the session
(DELETE) and exits.
"""

import json
import sys
from datetime import timedelta

import anyio
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(url: str) -> None:
    # The SDK's own defaults wait up to 300 s for a stream that went quiet;
    # a test wants to hear about a hang within its own time.
    async with streamablehttp_client(url, timeout=10, sse_read_timeout=30) as (read, write, session_id):
        heard = {"updates": [], "logs": []}

        async def on_message(message) -> None:
            if isinstance(message, types.ServerNotification) and isinstance(message.root, types.ResourceUpdatedNotification):
                heard["updates"].append(str(message.root.params.uri))

        async def on_log(params) -> None:
            heard["logs"].append(str(params.data))

        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=30), logging_callback=on_log, message_handler=on_message) as session:
            await session.initialize()
            emit({"connected": session_id()})

            async def run(cmd) -> None:
                try:
                    op = cmd["op"]
                    if op == "session":
                        result = session_id()
                    elif op == "whoami":
                        res = await session.call_tool("whoami", {})
                        result = json.loads(res.content[0].text)
                    elif op == "echo":
                        res = await session.call_tool("echo", {"text": cmd["text"]})
                        if res.isError:
                            raise RuntimeError(res.content[0].text)
                        result = json.loads(res.content[0].text)
                    elif op == "subscribe":
                        await session.subscribe_resource(cmd["uri"])
                        result = {}
                    elif op == "unsubscribe":
                        await session.unsubscribe_resource(cmd["uri"])
                        result = {}
                    elif op == "setLevel":
                        await session.set_logging_level(cmd["level"])
                        result = {}
                    elif op == "heard":
                        result = {"updates": list(heard["updates"]), "logs": list(heard["logs"])}
                    elif op == "forget":
                        heard["updates"].clear()
                        heard["logs"].clear()
                        result = {}
                    else:
                        raise ValueError(f"unknown op {op}")
                    emit({"id": cmd["id"], "ok": result})
                except Exception as err:  # reported to the test, which decides
                    emit({"id": cmd.get("id"), "error": f"{type(err).__name__}: {err}"})

            stdin = anyio.wrap_file(sys.stdin)
            async with anyio.create_task_group() as tg:
                async for line in stdin:
                    if line.strip():
                        tg.start_soon(run, json.loads(line))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
