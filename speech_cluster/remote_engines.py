"""`Synthesizer` and `Recognizer` that call the Ray Serve deployments, so the service, its
policies and every surface work unchanged over a pool of engine replicas.

Calls are made from the service's worker threads (sync handle calls). A replica that dies during a
call ends it with `backend_unavailable` (retryable) — a speech request that fails before any audio
arrived is retried once on another replica — and a consumer that stops reading (barge-in,
cancellation, deadline) cancels the request on the replica.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayError, RayTaskError

from speech_backend import (
    Audio,
    BackendUnavailable,
    RecognitionOptions,
    SpeechChunk,
    SynthesisOptions,
    Transcript,
    Voice,
    VoiceNotFound,
)
from speech_backend.languages import resolve_language
from speech_backend.priority import ENGINE_PRIORITY
from speech_backend.protocols import ProgressHook
from speech_cluster.deployments import RECOGNITION_APP, SYNTHESIS_APP
from speech_errors import ContractError

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.1  # how often a waiting recognition checks whether its caller gave up
REPLICA_FAILED = "an engine replica failed during the call; retry (the pool replaces it)"


def connect(address: str, timeout_seconds: float) -> tuple[RemoteSynthesizer, RemoteRecognizer]:
    """Join the Ray cluster at `address` and reach the engine applications, waiting up to
    `timeout_seconds` for them to be deployed (front-ends may start before the pool).

    Raises:
        BackendUnavailable: the cluster or the applications cannot be reached in time.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            if not ray.is_initialized():
                ray.init(
                    address=address, namespace="serve", log_to_driver=False, logging_level=logging.WARNING
                )
            synthesis = serve.get_app_handle(SYNTHESIS_APP)
            recognition = serve.get_app_handle(RECOGNITION_APP)
            synth_info = synthesis.describe.remote().result(timeout_s=10)
            recog_info = recognition.describe.remote().result(timeout_s=10)
            return RemoteSynthesizer(synthesis, synth_info), RemoteRecognizer(recognition, recog_info)
        except Exception as exc:  # Ray raises many untyped errors while a cluster starts
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"the engine pool at {address} cannot be reached ({type(exc).__name__})"
                ) from exc
            logger.info("waiting for the engine pool", extra={"error": type(exc).__name__})
            time.sleep(1.0)


def pool_ready(synthesizer: RemoteSynthesizer, recognizer: RemoteRecognizer, timeout_seconds: float) -> bool:
    """Whether a replica of each engine answers now."""
    try:
        synthesizer.ping(timeout_seconds)
        recognizer.ping(timeout_seconds)
    except Exception:  # any failure means the pool cannot serve right now
        return False
    return True


def typed(exc: BaseException) -> BaseException:
    """What a failed call means to the caller: the engine's own typed error, or a replica that died."""
    if isinstance(exc, RayTaskError) and isinstance(exc.cause, ContractError):
        return exc.cause
    if isinstance(exc, ContractError):
        return exc
    return BackendUnavailable(REPLICA_FAILED)


class RemoteSynthesizer:
    """Speech from the synthesis deployment, sentence by sentence."""

    def __init__(self, handle: Any, info: dict[str, Any]) -> None:
        self._handle = handle
        self._engine = str(info["engine"])
        self._voices: tuple[Voice, ...] = tuple(info["voices"])
        self.default_voice = str(info["default_voice"])

    @property
    def engine(self) -> str:
        """The replicas' engine."""
        return self._engine

    def voices(self) -> tuple[Voice, ...]:
        """The replicas' catalog."""
        return self._voices

    def ping(self, timeout_seconds: float) -> None:
        """A replica answers, or this raises."""
        self._handle.describe.remote().result(timeout_s=timeout_seconds)

    def load(self, voice_id: str) -> None:
        """Replicas load their voices themselves; only check the voice exists."""
        if voice_id not in {v.id for v in self._voices}:
            raise VoiceNotFound(f"voice {voice_id!r} is not in the catalog; call list_voices")

    def synthesize(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        """The sentences as a replica makes them; closing the iterator cancels the request there."""
        return self._stream(text, voice_id, options)

    def _stream(self, text: str, voice_id: str, options: SynthesisOptions) -> Iterator[SpeechChunk]:
        priority = ENGINE_PRIORITY.get()  # read when the first sentence is asked for
        for attempt in (1, 2):
            response = self._handle.options(stream=True).synthesize.remote(text, voice_id, options, priority)
            sent = 0
            try:
                for chunk in response:
                    sent += 1
                    yield chunk
                return
            except (RayError, ContractError) as exc:
                failure = typed(exc)
                if isinstance(failure, BackendUnavailable) and sent == 0 and attempt == 1:
                    logger.warning("a synthesis replica failed before any audio; retrying once")
                    continue
                raise failure from exc
            finally:
                response.cancel()  # a no-op once finished; stops the replica when the reader left


class RemoteRecognizer:
    """Transcripts from the recognition deployment."""

    def __init__(self, handle: Any, info: dict[str, Any]) -> None:
        self._handle = handle
        self._model_id = str(info["model_id"])
        self._multilingual = bool(info["multilingual"])
        self._languages = tuple(info["languages"])

    @property
    def model_id(self) -> str:
        """The replicas' model."""
        return self._model_id

    @property
    def multilingual(self) -> bool:
        """Whether the replicas' model is multilingual."""
        return self._multilingual

    def ping(self, timeout_seconds: float) -> None:
        """A replica answers, or this raises."""
        self._handle.describe.remote().result(timeout_s=timeout_seconds)

    @property
    def languages(self) -> tuple[str, ...]:
        """The replicas' model's language codes."""
        return self._languages

    def check_options(self, options: RecognitionOptions) -> None:
        """Refuse a language the replicas' model does not serve (checked here, before any call)."""
        resolve_language(options.language, self._languages, self._multilingual, self._model_id)

    def transcribe(
        self, audio: Audio, options: RecognitionOptions, progress: ProgressHook | None = None
    ) -> Transcript:
        """Recognise on a replica (told the work's priority); `progress` is polled while waiting and
        may raise to cancel it."""
        priority = ENGINE_PRIORITY.get()
        result: Transcript = _call(lambda: self._handle.transcribe.remote(audio, options, priority), progress)
        return result


def _call(start: Callable[[], Any], progress: ProgressHook | None) -> Any:
    response = start()
    try:
        while True:
            try:
                return response.result(timeout_s=POLL_SECONDS)
            except TimeoutError:
                if progress is not None:
                    progress(0.0, 0.0)  # raises when the caller gave up
    except (RayError, ContractError) as exc:
        raise typed(exc) from exc
    finally:
        response.cancel()
