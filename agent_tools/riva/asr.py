"""`nvidia.riva.asr.RivaSpeechRecognition` over core: `Recognize` (a whole recording, as a WAV or
other file, or raw LINEAR_PCM described by the config), `StreamingRecognize` (core's live
transcription: interim results from its partials, a final per utterance its endpointing ends,
word time offsets) and `GetRivaSpeechRecognitionConfig`. `speech_contexts` phrases become the
recognizer's prompt (the vocabulary to expect); `language_code` its language."""

from __future__ import annotations

import io
import math
import wave
from collections.abc import AsyncIterator
from typing import Any

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_audio_pb2 as riva_audio
from pydantic import ValidationError

from agent_tools.core.errors import Busy, DeadlineExceeded
from agent_tools.core.live import open_live
from agent_tools.core.live_settings import LiveSettings
from agent_tools.core.requests import invalid_request
from agent_tools.core.runtime import Runtime
from agent_tools.core.sources import AudioSource
from agent_tools.riva.calls import Call, Calls
from speech_backend import InvalidArgument, Transcript
from speech_backend.protocols import RECOGNITION_RATE

Context = grpc.aio.ServicerContext[Any, Any]
LINEAR_PCM = riva_audio.AudioEncoding.LINEAR_PCM
CONTAINERS = (b"RIFF", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\x1aE\xdf\xa3")
MAX_PROMPT_CHARS = 1000
INTERIM_INTERVAL_MS = 500


def language_of(code: str) -> str | None:
    """Riva's `en-US` as the recognizer's `en` (None: detect, or the English model)."""
    return code.split("-")[0].lower() or None


def prompt_of(config: rasr.RecognitionConfig) -> str | None:
    """The speech contexts' phrases, as the text that precedes the audio."""
    phrases = [p for context in config.speech_contexts for p in context.phrases if p.strip()]
    return ", ".join(phrases)[:MAX_PROMPT_CHARS] or None


def file_of(audio: bytes, config: rasr.RecognitionConfig) -> bytes:
    """The recording as a file: as sent when it is one (WAV, FLAC, Ogg, MP3, WebM), else raw
    LINEAR_PCM wrapped in a WAV header from the config.

    Raises:
        InvalidArgument: raw audio without its rate, or in an encoding other than LINEAR_PCM.
    """
    if audio.startswith(CONTAINERS):
        return audio
    if config.encoding not in (riva_audio.AudioEncoding.ENCODING_UNSPECIFIED, LINEAR_PCM):
        raise InvalidArgument("raw audio must be LINEAR_PCM; send other encodings as a file")
    if config.sample_rate_hertz <= 0:
        raise InvalidArgument("raw LINEAR_PCM audio needs config.sample_rate_hertz")
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(max(1, config.audio_channel_count))
        file.setsampwidth(2)
        file.setframerate(config.sample_rate_hertz)
        file.writeframes(audio)
    return out.getvalue()


def alternative(
    text: str, words: list[Any], language: str, confidence: float, offset: float = 0.0
) -> rasr.SpeechRecognitionAlternative:
    """One alternative: the text, its confidence, and its words in milliseconds."""
    found = rasr.SpeechRecognitionAlternative(transcript=text, confidence=confidence, language_code=language)
    for word in words:
        start, end = (word["start"], word["end"]) if isinstance(word, dict) else (word.start, word.end)
        text_of = word["word"] if isinstance(word, dict) else word.text
        probability = word["probability"] if isinstance(word, dict) else word.probability
        found.words.append(
            rasr.WordInfo(
                word=text_of,
                start_time=round((start + offset) * 1000),
                end_time=round((end + offset) * 1000),
                confidence=probability,
                language_code=language,
            )
        )
    return found


def offline_results(transcript: Transcript) -> list[rasr.SpeechRecognitionResult]:
    """One result per segment of the transcript."""
    return [
        rasr.SpeechRecognitionResult(
            alternatives=[
                alternative(
                    s.text.strip(), list(s.words), transcript.language, math.exp(min(0.0, s.avg_logprob))
                )
            ],
            audio_processed=s.end,
        )
        for s in transcript.segments
        if s.text.strip()
    ]


class Recognition(rasr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]  # (generated, untyped)
    """The ASR service over one runtime."""

    def __init__(self, runtime: Runtime, calls: Calls) -> None:
        self.runtime = runtime
        self.calls = calls

    async def Recognize(self, request: rasr.RecognizeRequest, context: Context) -> rasr.RecognizeResponse:
        """A whole recording's transcript, a result per segment."""
        config = request.config

        async def work(call: Call) -> rasr.RecognizeResponse:
            heard = await self.runtime.service.transcribe(
                AudioSource(data=file_of(request.audio, config)),
                language=language_of(config.language_code),
                word_timestamps=config.enable_word_time_offsets,
                prompt=prompt_of(config),
                principal=call.principal,
                request_id=call.request_id,
                transport="grpc",
            )
            call.audio_seconds = heard.transcript.duration
            return rasr.RecognizeResponse(results=offline_results(heard.transcript))

        return await self.calls.unary(context, "transcribe", work)

    async def StreamingRecognize(
        self, request_iterator: AsyncIterator[rasr.StreamingRecognizeRequest], context: Context
    ) -> None:
        """Live recognition: the first request's streaming_config, then audio_content."""
        async with self.calls.serving(context, "transcribe") as call:
            requests = aiter(request_iterator)
            first = await anext(requests, None)
            if first is None or not first.HasField("streaming_config"):
                raise InvalidArgument("the first request carries streaming_config; audio_content follows")
            streaming = first.streaming_config
            params = self._live_settings(streaming)
            language = streaming.config.language_code or "en-US"

            async def emit(event: dict[str, Any]) -> None:
                await self._answer(event, context, params, language)

            live = await open_live(self.runtime.service, params, call.principal, emit, call.request_id)

            async def receive() -> bytes | None:
                async for request in requests:
                    if request.audio_content:
                        call.audio_seconds = (call.audio_seconds or 0.0) + len(request.audio_content) / (
                            2 * params.sample_rate
                        )
                        return bytes(request.audio_content)
                return None

            await live.run(receive)

    def _live_settings(self, streaming: rasr.StreamingRecognitionConfig) -> LiveSettings:
        config = streaming.config
        if config.encoding not in (riva_audio.AudioEncoding.ENCODING_UNSPECIFIED, LINEAR_PCM):
            raise InvalidArgument("streaming audio must be LINEAR_PCM (mono, 16-bit)")
        if config.audio_channel_count > 1:
            raise InvalidArgument("streaming audio must be mono (audio_channel_count 1)")
        fields: dict[str, Any] = {
            "sample_rate": config.sample_rate_hertz or RECOGNITION_RATE,
            "language": language_of(config.language_code),
            "word_timestamps": config.enable_word_time_offsets,
            "partial_interval_ms": INTERIM_INTERVAL_MS if streaming.interim_results else 0,
            "prompt": prompt_of(config),
        }
        if config.HasField("endpointing_config") and config.endpointing_config.stop_history > 0:
            fields["min_silence_ms"] = config.endpointing_config.stop_history
        try:
            return LiveSettings.model_validate(fields)
        except ValidationError as exc:
            raise invalid_request(exc) from exc

    async def _answer(
        self, event: dict[str, Any], context: Context, params: LiveSettings, language: str
    ) -> None:
        """A live event as Riva's results: a partial is an interim result, a final a final one;
        a turn that could not be transcribed ends the call with its status."""
        kind = event["type"]
        if kind == "partial":
            found = alternative(event["text"], [], language, 0.0)
            result = rasr.StreamingRecognitionResult(alternatives=[found], is_final=False, stability=0.5)
        elif kind == "final":
            words = event.get("words", []) if params.word_timestamps else []
            found = alternative(event["text"], words, language, 1.0)
            result = rasr.StreamingRecognitionResult(
                alternatives=[found], is_final=True, audio_processed=event["end"]
            )
        elif kind == "error":  # a turn whose final could not be made: the call ends saying why
            if event["code"] == "busy":
                raise Busy(event["message"], retry_after_ms=int(event.get("retry_after_ms") or 1000))
            raise DeadlineExceeded(event["message"])
        else:
            return
        await context.write(rasr.StreamingRecognizeResponse(results=[result]))

    async def GetRivaSpeechRecognitionConfig(
        self, request: rasr.RivaSpeechRecognitionConfigRequest, context: Context
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        """The recognizers, as Riva lists its ASR models: offline and streaming."""

        async def work(call: Call) -> rasr.RivaSpeechRecognitionConfigResponse:
            recognizer = self.runtime.service.require().recognizer
            languages = ",".join(recognizer.languages)
            configs = [
                rasr.RivaSpeechRecognitionConfigResponse.Config(
                    model_name=f"{recognizer.model_id}-{kind}",
                    parameters={"language_code": "en-US", "languages": languages, "type": kind},
                )
                for kind in ("offline", "online")
                if not request.model_name or request.model_name == f"{recognizer.model_id}-{kind}"
            ]
            return rasr.RivaSpeechRecognitionConfigResponse(model_config=configs)

        return await self.calls.unary(context, "transcribe", work)
