"""The onnxruntime sessions of one Piper voice: a wide one (`intra_op_threads`) for a sentence made
alone, and narrow ones (`busy_intra_op_threads`) for sentences made side by side, all reading one
copy of the voice's weights; the graph optimised once per machine and cached."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech_backend.catalog import VoiceFiles
from speech_backend.config import PiperSettings
from speech_backend.devices import Device
from speech_backend.errors import ModelNotFound

logger = logging.getLogger(__name__)

SETTING = "SPEECH_TOOLS_ENGINES__PIPER__VOICE_DIRS"
SHARED_BYTES = 4096  # weights at least this large are shared between a voice's sessions


@dataclass(eq=False)
class VoiceSessions:
    """A voice's sessions. `wide` runs a sentence made alone; `narrow()` lends a session of fewer
    threads for one made beside others (made on first need, kept for the next), or `wide` when the
    voice has no narrow sessions (one thread count, or a device other than the CPU) or while they
    are being made in the background."""

    wide: Any  # piper.PiperVoice
    make_narrow: Any = None  # () -> piper.PiperVoice, None without narrow sessions
    weights: dict[str, Any] = field(default_factory=dict)  # OrtValues the sessions read: kept alive
    warming: bool = False  # narrow sessions are being made in the background
    _idle: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def warm(self, count: int) -> None:
        """Make up to `count` narrow sessions now rather than on first need (a session takes a
        second or so to make: a call should not wait for it)."""
        if self.make_narrow is None:
            return
        made = [self.make_narrow() for _ in range(count - len(self._idle))]
        with self._lock:
            self._idle.extend(made)

    def warm_in_background(self, count: int) -> None:
        """`warm` in a thread of its own, so that the voice is ready at once; until it is done, a
        sentence made beside another shares the wide session rather than wait for a narrow one."""
        if self.make_narrow is None:
            return
        self.warming = True

        def warm() -> None:
            try:
                self.warm(count)
            except Exception:  # made on first need instead (where a failure is the call's, typed)
                logger.exception("narrow sessions could not be made ahead")
            finally:
                self.warming = False

        # not a daemon: a process that exits meanwhile waits for it (onnxruntime must not be torn
        # down under a session being made)
        threading.Thread(target=warm, name="piper-narrow-sessions").start()

    @contextmanager
    def narrow(self) -> Iterator[Any]:
        """A narrow session for the block, or `wide` when there are none (yet)."""
        if self.make_narrow is None:
            yield self.wide
            return
        with self._lock:
            voice = self._idle.pop() if self._idle else None
        if voice is None and self.warming:
            yield self.wide  # onnxruntime runs a session from several threads at once
            return
        if voice is None:
            voice = self.make_narrow()
        try:
            yield voice
        finally:
            with self._lock:
                self._idle.append(voice)


def load_sessions(
    files: VoiceFiles, settings: PiperSettings, device: Device, cache_dir: Path | None
) -> VoiceSessions:
    """The sessions of the voice in `files`: its optimised graph (built and cached on first use),
    with narrow sessions sharing the wide one's weights on the CPU when `busy_intra_op_threads` is
    set and the graph is cached (else one session).

    Raises:
        ModelNotFound: the voice's config or model is unreadable.
    """
    from piper import PiperVoice
    from piper.config import PiperConfig

    try:
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFound(
            f"voice config {files.config} is unreadable ({type(exc).__name__}); check {SETTING}"
        ) from exc
    cached = _optimised_path(files.model, device, cache_dir)
    wide_threads, narrow_threads = settings.intra_op_threads, settings.busy_intra_op_threads
    spin = settings.spin_wait
    if cached is None or not cached.is_file():
        source = _with_durations(files.model)
        session = _session(
            files.model, source, wide_threads, device, spin, optimised=False, optimise_to=cached
        )
        if cached is None or not cached.is_file() or not narrow_threads or device.kind != "cpu":
            _log_loaded(files, device, session, wide_threads, 0)
            return VoiceSessions(PiperVoice(session=session, config=config))
        del session  # built only to optimise the graph: the sessions below share weights
    if not narrow_threads or device.kind != "cpu":
        session = _session(files.model, str(cached), wide_threads, device, spin)
        _log_loaded(files, device, session, wide_threads, 0)
        return VoiceSessions(PiperVoice(session=session, config=config))
    weights = _weights(cached)
    session = _session(files.model, str(cached), wide_threads, device, spin, weights=weights)
    _log_loaded(files, device, session, wide_threads, narrow_threads)

    def make_narrow() -> Any:
        narrow = _session(files.model, str(cached), narrow_threads, device, spin, weights=weights)
        return PiperVoice(session=narrow, config=config)

    return VoiceSessions(PiperVoice(session=session, config=config), make_narrow, weights)


def _session(
    model: Path,
    source: str | bytes,
    threads: int,
    device: Device,
    spin_wait: bool,
    *,
    optimised: bool = True,
    optimise_to: Path | None = None,
    weights: dict[str, Any] | None = None,
) -> Any:
    """One session of `source` (a graph already `optimised`, or optimised now and, with
    `optimise_to`, cached there) on `threads` threads, reading `weights` where given; its idle
    threads spin only with `spin_wait`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin_wait:  # idle pool threads sleep: spinning ones take the cores other sentences need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if device.kind == "cpu":  # one arena for every session of the process (see `share_cpu_arena`)
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.log_severity_level = 3  # warnings such as "hardware specific optimizations" are expected
    if optimised:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    elif optimise_to is not None:
        options.optimized_model_filepath = str(optimise_to.with_suffix(f".{os.getpid()}.tmp"))
    for name, value in (weights or {}).items():
        options.add_initializer(name, value)
    try:
        session = onnxruntime.InferenceSession(
            source, sess_options=options, providers=list(device.onnx_providers)
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable models
        raise ModelNotFound(
            f"voice model {model} could not be loaded ({type(exc).__name__}); reinstall it or check {SETTING}"
        ) from exc
    if optimise_to is not None and options.optimized_model_filepath:
        _publish(Path(options.optimized_model_filepath), optimise_to)
    return session


def share_cpu_arena() -> None:
    """Give the process's onnxruntime sessions on the CPU one memory arena that grows by what is
    asked (not to the next power of two). Each session's own arena would keep the peak of its
    largest sentence: with a wide and two narrow sessions per voice, that is three peaks held
    where one is used at a time per session, and up to twice each in power-of-two growth."""
    import onnxruntime

    info = onnxruntime.OrtMemoryInfo(
        "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT
    )
    same_as_requested = 1
    arena = onnxruntime.OrtArenaCfg({"arena_extend_strategy": same_as_requested, "max_mem": 0})
    onnxruntime.create_and_register_allocator(info, arena)  # (asking again in a process is harmless)


def _weights(graph_path: Path) -> dict[str, Any]:
    """The large initializers of the graph at `graph_path`, as values sessions can share.

    Raises:
        ModelNotFound: the file is not an ONNX graph.
    """
    import onnxruntime
    from onnx import numpy_helper

    graph = _read_graph(graph_path)
    arrays = ((i.name, numpy_helper.to_array(i)) for i in graph.graph.initializer)
    return {
        name: onnxruntime.OrtValue.ortvalue_from_numpy(array)
        for name, array in arrays
        if array.nbytes >= SHARED_BYTES
    }


def _read_graph(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises protobuf's untyped errors for unreadable files
        raise ModelNotFound(
            f"voice model {path} is not a readable ONNX graph; reinstall it or check {SETTING}"
        ) from exc


def _log_loaded(files: VoiceFiles, device: Device, session: Any, wide: int, narrow: int) -> None:
    logger.info(
        "loaded voice %s on %s (providers %s, %d threads alone%s)",
        files.voice.id,
        device.kind,
        ",".join(session.get_providers()),
        wide,
        f", {narrow} beside others, weights shared" if narrow else "",
    )


def _optimised_path(model: Path, device: Device, cache_dir: Path | None) -> Path | None:
    """Where the optimised graph of `model` for this device and onnxruntime version is cached."""
    if cache_dir is None:
        return None
    import onnxruntime

    stat = model.stat()
    parts = (
        model.resolve(),
        stat.st_size,
        stat.st_mtime_ns,
        onnxruntime.__version__,
        device.kind,
        "durations",  # the graph exposes phoneme durations (see _with_durations)
    )
    key = "|".join(map(str, parts))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    folder = cache_dir / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"{model.stem}-{digest}.onnx"


def _with_durations(model: Path) -> str | bytes:
    """The voice's graph with its phoneme durations (the `Ceil` of the duration predictor, which the
    exported graph computes anyway) marked as a second output, so that every sentence comes with
    its alignment and words with their times; the path unchanged when the graph already has that
    output or no such tensor. Done once: the optimised graph cached from it keeps the output.

    Raises:
        ModelNotFound: the file is not an ONNX graph.
    """
    from piper.patch_voice_with_alignment import add_alignment_output

    graph = _read_graph(model)
    try:
        add_alignment_output(graph)
    except ValueError:  # already an output, or no duration tensor to expose
        return str(model)
    return bytes(graph.SerializeToString())


def _publish(tmp: Path, final: Path) -> None:
    try:
        os.replace(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)
