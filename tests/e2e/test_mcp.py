"""`rumor mcp` driven by a real MCP client (the `mcp` package from PyPI) over stdio."""

import json
import os
import time

import anyio
import pytest

from conftest import rumor_binary, wait_until

mcp = pytest.importorskip("mcp", reason="pip install mcp (CI installs it)")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def server(agent):
    return StdioServerParameters(command=rumor_binary(), args=["mcp", "--api", agent.api], env=dict(os.environ))


def text(result):
    assert result.content, result
    return result.content[0].text


async def scenario(a, b):
    updates = []

    async def on_message(message):
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            updates.append(str(root.params.uri))

    async with stdio_client(server(a)) as (read_a, write_a), stdio_client(server(b)) as (read_b, write_b):
        async with ClientSession(read_a, write_a) as on_a, ClientSession(read_b, write_b, message_handler=on_message) as on_b:
            await on_a.initialize()
            info = await on_b.initialize()
            assert info.capabilities.resources.subscribe, info.capabilities

            tools = {tool.name: tool for tool in (await on_a.list_tools()).tools}
            assert {"members", "get", "put", "delete", "list", "status", "event", "query"} <= set(tools), tools
            assert {"ttl", "ephemeral", "wait"} <= set(tools["put"].input_schema["properties"]), tools["put"].input_schema

            members = json.loads(text(await on_a.call_tool("members", {})))
            assert {m["name"] for m in members["members"]} == {"a", "b"}

            written = await on_a.call_tool("put", {"key": "task/42", "value": '{"owner":"a"}', "wait": "all"})
            assert not written.is_error, text(written)
            assert sorted(json.loads(text(written))["replicas"]) == ["a", "b"]

            read = json.loads(text(await on_b.call_tool("get", {"key": "task/42"})))
            assert read["value"] == '{"owner":"a"}', read

            resources = (await on_b.list_resources()).resources
            assert "rumor://kv/task/42" in {str(r.uri) for r in resources}
            contents = await on_b.read_resource("rumor://kv/task/42")
            assert contents.contents[0].text == '{"owner":"a"}'

            await on_b.subscribe_resource("rumor://kv/task/42")
            await anyio.sleep(0.3)
            await on_a.call_tool("put", {"key": "task/42", "value": '{"owner":"b"}'})
            await on_a.call_tool("put", {"key": "task/other", "value": "x"})
            with anyio.fail_after(10):
                while "rumor://kv/task/42" not in updates:
                    await anyio.sleep(0.05)
            assert "rumor://kv/task/other" not in updates, updates

            missing = await on_b.call_tool("get", {"key": "nope"})
            assert missing.is_error
            error = json.loads(text(missing))
            assert error["code"] == "key_not_found" and error["hint"], error

            bad = await on_a.call_tool("put", {"key": "k"})
            assert bad.is_error and json.loads(text(bad))["code"] == "bad_arguments"
            bad_ttl = await on_a.call_tool("put", {"key": "k", "value": "v", "ttl": "soon"})
            assert bad_ttl.is_error and json.loads(text(bad_ttl))["code"] == "bad_arguments"
            refused = await on_a.call_tool("put", {"key": "", "value": "v"})
            assert refused.is_error and json.loads(text(refused))["code"] == "empty_key"

            ephemeral = await on_a.call_tool("put", {"key": "presence/a", "value": "here", "ephemeral": True, "ttl": "1h"})
            assert json.loads(text(ephemeral))["ephemeral"] is True

            deleted = await on_b.call_tool("delete", {"key": "task/42"})
            assert not deleted.is_error
            status = json.loads(text(await on_a.call_tool("status", {})))
            assert "tombstones" in status

            # Events and queries (Serf's layer) as tools.
            sent = json.loads(text(await on_a.call_tool("event", {"name": "deploy", "payload": "v2"})))
            assert sent["name"] == "deploy" and sent["payload"] == "v2", sent
            answered = json.loads(text(await on_b.call_tool("query", {"name": "ping", "timeout": "1s", "nodes": ["a"]})))
            assert answered == {"acks": ["a"], "responses": {}}, answered
            bad_query = await on_b.call_tool("query", {"name": "_serf_ping"})
            assert bad_query.is_error and json.loads(text(bad_query))["code"] == "bad_request"


def test_an_mcp_client_puts_through_one_agent_reads_through_another_and_is_notified(swarm):
    a = swarm.agent("a")
    b = swarm.agent("b", join=[a.address])
    wait_until(lambda: len(a.members()) == 2 and len(b.members()) == 2, 10, "a and b see each other")
    start = time.monotonic()
    anyio.run(scenario, a, b)
    print(f"MEASURE mcp scenario={time.monotonic() - start:.3f}s")


def test_an_idle_mcp_server_uses_almost_no_cpu(swarm):
    import subprocess

    from test_cli_agents import cpu_percent
    agent = swarm.agent("quiet")
    process = subprocess.Popen([rumor_binary(), "mcp", "--api", agent.api], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        assert process.poll() is None, process.stderr.read()
        idle = cpu_percent(process.pid, 5)
        assert idle <= 0.5, f"an idle `rumor mcp` used {idle:.2f} % CPU over 5 s (polling?)"
    finally:
        process.kill()
        process.wait()


async def syncing_scenario(agent):
    async with stdio_client(server(agent)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert "stale" in tools["get"].input_schema["properties"] and "stale" in tools["list"].input_schema["properties"]
            written = await session.call_tool("put", {"key": "k", "value": "v"})
            assert not written.is_error, text(written)  # writes are taken while syncing
            for name, arguments in (("get", {"key": "k"}), ("list", {})):
                refused = await session.call_tool(name, arguments)
                assert refused.is_error, text(refused)
                error = json.loads(text(refused))
                assert error["code"] == "not_ready" and "rumor wait --ready" in error["hint"], error
            stale = json.loads(text(await session.call_tool("get", {"key": "k", "stale": True})))
            assert stale["value"] == "v", stale
            listed = json.loads(text(await session.call_tool("list", {"stale": True})))
            assert [e["key"] for e in listed["entries"]] == ["k"], listed
            with pytest.raises(Exception, match="not_ready"):
                await session.read_resource("rumor://kv/k")


def test_mcp_reads_of_a_syncing_agent_answer_not_ready_unless_stale(swarm):
    from conftest import free_port
    # Its only seed never answers: the agent stays syncing for its 30 s ready timeout.
    agent = swarm.agent("syncing", join=[f"127.0.0.1:{free_port()}"], extra=["--ready-timeout", "30s"], ready=False)
    anyio.run(syncing_scenario, agent)
