"""`describe` → `info`: every voice the principal may use, with its language, and the languages
the recognizers hear."""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from agent_tools.core.service import SpeechService
from policies import Principal

PROGRAM = "speech-tools"
VERSION = "0.1.0"
_SELF = Attribution(name="speech-tools", url="")


async def info(service: SpeechService, who: Principal) -> Info:
    """What this server offers `who` over Wyoming.

    Raises:
        Forbidden: `who` may not list voices; BackendUnavailable: still loading.
    """
    voices = [
        TtsVoice(
            name=v.id,
            description=f"{v.name} ({v.engine}, {v.quality})",
            attribution=Attribution(name=v.attribution, url=""),
            installed=True,
            version=None,
            languages=[v.language],
        )
        for v in await service.voices(principal=who)
    ]
    recognizer = service.require().recognizer
    model = AsrModel(
        name=recognizer.model_id,
        description="Whisper (faster-whisper)",
        attribution=Attribution(name="OpenAI Whisper", url=""),
        installed=True,
        version=None,
        languages=list(recognizer.languages),
    )
    tts = TtsProgram(
        name=PROGRAM,
        description="Piper and Kokoro voices",
        attribution=_SELF,
        installed=True,
        version=VERSION,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    asr = AsrProgram(
        name=PROGRAM,
        description="Speech recognition",
        attribution=_SELF,
        installed=True,
        version=VERSION,
        models=[model],
        supports_transcript_streaming=True,
    )
    return Info(tts=[tts], asr=[asr])
