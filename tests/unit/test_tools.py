"""The tools of a request: one built-in tool of each kind, but any number of MCP servers,
told apart by their labels (a set of what is taken: comparing each tool with every earlier
one was quadratic, minutes for 100,000 MCP tools held on the event loop)."""

from __future__ import annotations

from typing import Any

import pytest

from kotae.errors import InvalidRequest
from kotae.services.responses.tools import parse_tools


def mcp(label: str) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": label,
        "server_url": "https://mcp.example.com/mcp",
        "require_approval": "never",
    }


def test_one_tool_of_each_kind() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_tools([{"type": "web_search_preview"}, {"type": "web_search_preview"}], None)
    assert err.value.param == "tools[1]" and "Only one web_search" in err.value.message


def test_mcp_servers_are_told_apart_by_their_labels() -> None:
    setup = parse_tools([mcp(f"s{i}") for i in range(5_000)], None)
    assert len(setup.builtins) == 5_000
    with pytest.raises(InvalidRequest) as err:
        parse_tools([mcp("a"), mcp("b"), mcp("a")], None)
    assert err.value.param == "tools[2]" and "Only one mcp tool" in err.value.message
