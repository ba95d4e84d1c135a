"""Engines in the Ray Serve pool: synthesis and recognition on the replicas, live transcription's
small models (VAD, turn model, noise suppressor, short-utterance recognizer) here."""

from __future__ import annotations

from agent_tools.core.engines import Engines
from speech_backend import EngineSettings


def pool_engines(settings: EngineSettings, address: str, timeout_seconds: float) -> Engines:
    """Engines in the pool at `address`, its readiness asked of the replicas.

    Raises:
        BackendUnavailable: the pool cannot be reached within `timeout_seconds`.
    """
    from speech_cluster.remote_engines import connect, pool_ready

    synthesizer, recognizer = connect(address, timeout_seconds)
    engines = Engines(
        synthesizer,
        recognizer,
        synthesizer.default_voice,
        settings.audio,
        serving=lambda: pool_ready(synthesizer, recognizer, 2.0),
    )
    return engines.with_live_models(settings)
