"""Narrowing helpers for tests: the content a test expects, with a clear failure when it is not there."""

from __future__ import annotations

from typing import Any, TypeVar

from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    ReadResourceResult,
    TextContent,
    TextResourceContents,
)

T = TypeVar("T")


def present(value: T | None) -> T:
    """`value`, which the test needs to be there."""
    assert value is not None
    return value


def first_text(result: CallToolResult) -> str:
    """The text of a tool result's first content block."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def blob(read: ReadResourceResult) -> str:
    """The base64 blob of a resource read."""
    contents = read.contents[0]
    assert isinstance(contents, BlobResourceContents), contents
    return contents.blob


def text(read: ReadResourceResult) -> str:
    """The text of a resource read."""
    contents = read.contents[0]
    assert isinstance(contents, TextResourceContents), contents
    return contents.text


def tool_error(result: CallToolResult) -> dict[str, Any]:
    """The error object of a tool result that must be an error."""
    from agent_tools.tools.client_results import result_error

    return present(result_error(result))
