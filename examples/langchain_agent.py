"""A LangChain agent loop that speaks a sentence and then listens to what it said.

The chat model is LangChain's fake one (no network): it asks for `speak`, then for `transcribe` of
the audio handle `speak` returned. The tools are speech-tools' own, served in-process on the bundled
models. Run: .venv/bin/python examples/langchain_agent.py
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agent_tools.core.runtime import Runtime
from agent_tools.settings import Settings
from agent_tools.tools.langchain import speech_tools

SENTENCE = "The meeting moved to Thursday at three in the afternoon."


def scripted_replies(history: list[BaseMessage]) -> Iterator[AIMessage]:
    """What the fake model says next, reading the conversation so far."""
    yield AIMessage(content="", tool_calls=[{"name": "speak", "args": {"text": SENTENCE}, "id": "call-1"}])
    spoken = json.loads(str(history[-1].content))
    args = {"audio_uri": spoken["audio_uri"]}
    yield AIMessage(content="", tool_calls=[{"name": "transcribe", "args": args, "id": "call-2"}])
    heard = json.loads(str(history[-1].content))
    yield AIMessage(content=f"I said it and heard: {heard['text']}")


async def main() -> None:
    runtime = Runtime.build(Settings())
    await anyio.to_thread.run_sync(runtime.load)
    tools = {tool.name: tool for tool in await speech_tools(runtime)}
    history: list[BaseMessage] = [HumanMessage(content="Say the meeting time out loud, then check it.")]
    model = GenericFakeChatModel(messages=scripted_replies(history))
    while True:
        reply = await model.ainvoke(history)
        history.append(reply)
        if not reply.tool_calls:
            break
        for call in reply.tool_calls:
            message = await tools[call["name"]].ainvoke({**call, "type": "tool_call"})
            assert isinstance(message, ToolMessage)
            history.append(message)
    print(history[-1].content)


if __name__ == "__main__":
    anyio.run(main)
