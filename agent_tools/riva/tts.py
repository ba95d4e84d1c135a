"""`nvidia.riva.tts.RivaSpeechSynthesis` over core's speech streams: `Synthesize` (the whole
utterance), `SynthesizeOnline` (each request's text streamed as its sentences are made, the
lead-in first) and `GetRivaSynthesisConfig` (the voices). A request is checked by core's request
rules (`SpeakRequest`: the same codes and words as every other surface)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import riva.client.proto.riva_audio_pb2 as riva_audio
import riva.client.proto.riva_tts_pb2 as rtts
import riva.client.proto.riva_tts_pb2_grpc as rtts_grpc
from pydantic import ValidationError

from agent_tools.core.outputs import SpeechFrame, SpeechFrames, WordSpan
from agent_tools.core.requests import SpeakRequest, invalid_request
from agent_tools.core.runtime import Runtime
from agent_tools.riva.calls import Call, Calls
from speech_backend import Audio, InvalidArgument, encode_audio

LINEAR_PCM, OGGOPUS = riva_audio.AudioEncoding.LINEAR_PCM, riva_audio.AudioEncoding.OGGOPUS
Context = grpc.aio.ServicerContext[Any, Any]


def riva_language(language: str) -> str:
    """Our language tag (`en_US`) as Riva writes it (`en-US`)."""
    return language.replace("_", "-")


class Synthesis(rtts_grpc.RivaSpeechSynthesisServicer):  # type: ignore[misc]  # (generated, untyped)
    """The TTS service over one runtime."""

    def __init__(self, runtime: Runtime, calls: Calls) -> None:
        self.runtime = runtime
        self.calls = calls

    async def Synthesize(
        self, request: rtts.SynthesizeSpeechRequest, context: Context
    ) -> rtts.SynthesizeSpeechResponse:
        """The whole utterance's audio, in the encoding asked for (LINEAR_PCM or OGGOPUS)."""

        async def work(call: Call) -> rtts.SynthesizeSpeechResponse:
            frames, sent = await self._speak(request, call)
            audio = b"".join(frame.pcm_bytes for frame in sent)
            if request.encoding == OGGOPUS and sent:
                audio = encode_audio(_audio(audio, sent[0].sample_rate), "opus")
            return rtts.SynthesizeSpeechResponse(audio=audio, meta=_meta(request, frames.words))

        return await self.calls.unary(context, "speak", work)

    async def SynthesizeOnline(
        self, request_iterator: AsyncIterator[rtts.SynthesizeSpeechRequest], context: Context
    ) -> None:
        """Each request's speech as it is made: one response per sentence (the lead-in first)."""
        async for request in request_iterator:
            async with self.calls.serving(context, "speak") as call:
                await self._speak(request, call, context)

    async def GetRivaSynthesisConfig(
        self, request: rtts.RivaSynthesisConfigRequest, context: Context
    ) -> rtts.RivaSynthesisConfigResponse:
        """Every voice the caller may use, as Riva lists its TTS models."""

        async def work(call: Call) -> rtts.RivaSynthesisConfigResponse:
            voices = await self.runtime.service.voices(principal=call.principal)
            configs = [
                rtts.RivaSynthesisConfigResponse.Config(
                    model_name=v.id,
                    parameters={
                        "voice_name": v.id,
                        "language_code": riva_language(v.language),
                        "sample_rate": str(v.sample_rate),
                        "engine": v.engine,
                        "subvoices": v.id,
                    },
                )
                for v in voices
                if not request.model_name or request.model_name == v.id
            ]
            return rtts.RivaSynthesisConfigResponse(model_config=configs)

        return await self.calls.unary(context, "list_voices", work)

    async def _speak(
        self, request: rtts.SynthesizeSpeechRequest, call: Call, context: Context | None = None
    ) -> tuple[SpeechFrames, list[SpeechFrame]]:
        """Speak one request through core's streams: each sentence written to `context` as it is
        made (SynthesizeOnline), else kept and returned (Synthesize)."""
        streams, streamed = self.runtime.streams, context is not None
        if request.custom_dictionary:
            raise InvalidArgument(
                "custom_dictionary is not served per request; the server's lexicon "
                "(SPEECH_TOOLS_ENGINES__LEXICON_FILE) says how words are spoken"
            )
        plain = (riva_audio.AudioEncoding.ENCODING_UNSPECIFIED, LINEAR_PCM)
        if request.encoding not in plain and (streamed or request.encoding != OGGOPUS):
            raise InvalidArgument("encoding must be LINEAR_PCM (or OGGOPUS for Synthesize)")
        voice = await self._voice(request, call)
        try:
            body = SpeakRequest(text=request.text, voice=voice, sample_rate=request.sample_rate_hz or None)
        except ValidationError as exc:
            raise invalid_request(exc) from exc
        call.chars = len(body.text)
        frames, sent = SpeechFrames(body.sample_rate), []
        plan = await streams.start(body.text, voice=body.voice, principal=call.principal, cost=frames.cost)
        try:
            async with streams.frames(plan, frames, "grpc") as receive:
                async for item in receive:
                    if isinstance(item, Exception):
                        raise item
                    if context is not None:
                        meta = _meta(request, item.words)
                        await context.write(rtts.SynthesizeSpeechResponse(audio=item.pcm_bytes, meta=meta))
                    else:
                        sent.append(item)
                    frames.sent(item)
                    call.audio_seconds = frames.audio_seconds
        finally:
            await plan.slot.release()
        return frames, sent

    async def _voice(self, request: rtts.SynthesizeSpeechRequest, call: Call) -> str | None:
        """The voice named (a stock Riva name: the catalogue voice it stands for), else the default
        voice when it speaks the language asked for, else the first voice of that language the
        caller may use (None: the default)."""
        service = self.runtime.service
        if request.voice_name:
            name = str(request.voice_name)
            mapped = service.settings.riva_voices.get(name)
            if mapped is None:
                return name
            installed = {v.id for v in service.require().synthesizer.voices()}
            return mapped if mapped in installed else None
        wanted = request.language_code.replace("-", "_").lower()
        if not wanted:
            return None
        default = service.require().voice(service.require().voice_id(None))
        if default.language.lower().startswith(wanted):
            return None
        offered = await service.voices(wanted, principal=call.principal)
        if not offered:
            raise InvalidArgument(
                f"no voice speaks {request.language_code!r}; GetRivaSynthesisConfig lists the voices"
            )
        return offered[0].id


def _audio(pcm: bytes, rate: int) -> Audio:
    import numpy as np

    return Audio(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, rate)


def _meta(
    request: rtts.SynthesizeSpeechRequest, words: Iterable[WordSpan]
) -> rtts.SynthesizeSpeechResponseMetadata:
    meta = rtts.SynthesizeSpeechResponseMetadata(text=request.text)
    if request.enable_word_time_offsets:
        for word in words:
            meta.words.append(
                rtts.WordTiming(
                    word=word.text, start_time=round(word.start * 1000), end_time=round(word.end * 1000)
                )
            )
    return meta
