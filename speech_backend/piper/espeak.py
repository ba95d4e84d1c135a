"""espeak-ng as Piper ships it (GPL-3.0-or-later), for any engine that phonemizes with it.

espeak-ng holds one voice for the whole process: choosing a voice and phonemizing must not
interleave with another thread's, Piper's own included, so every call takes the lock Piper's
voices take around theirs."""

from __future__ import annotations

import re

_BLOCK = re.compile(r"(\[\[.*?\]\])")


def phonemize(espeak_voice: str, text: str) -> str:
    """`text` as espeak-ng's IPA for `espeak_voice` (`en-us`, `es`, ...), stress marks and the
    punctuation it keeps included, sentences joined; `[[ phonemes ]]` blocks (the lexicon's IPA)
    pass as written.

    Raises:
        RuntimeError: espeak-ng has no such voice.
    """
    import unicodedata

    from piper import voice as piper_voice
    from piper.phonemize_espeak import EspeakPhonemizer

    parts: list[str] = []
    for piece in _BLOCK.split(text):
        if piece.startswith("[["):
            parts.append(piece[2:-2].strip())
        elif piece.strip():
            with piper_voice._ESPEAK_PHONEMIZER_LOCK:
                if piper_voice._ESPEAK_PHONEMIZER is None:
                    piper_voice._ESPEAK_PHONEMIZER = EspeakPhonemizer()
                sentences = piper_voice._ESPEAK_PHONEMIZER.phonemize(espeak_voice, piece)
            parts.append(" ".join("".join(s).strip() for s in sentences))
    return unicodedata.normalize("NFC", " ".join(p for p in parts if p))
