"""The pronunciation lexicon: how to say the words voices get wrong (brand names, product names,
acronyms), for every engine.

A YAML file maps a written word (or a few words) to how to say it: a respelling in ordinary words
(`kubectl: cube control`), or IPA between slashes (`nginx: /ˈɛndʒɪnˈɛks/`). A key is matched as a
whole word, ignoring case, unless it is written in capitals (an acronym: `SQL`), which matches only
as written. Longer keys win over shorter ones. Entries apply to text before it is phonemized; IPA is
passed to espeak-ng's phonemes as written. The file is read at start-up and on SIGHUP; a bad entry
refuses the whole file, naming its line.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import yaml

MAX_ENTRIES = 10_000
MAX_KEY_CHARS = 100
MAX_SAY_CHARS = 200
_IPA = re.compile(r"^/([^/\[\]]+)/$")


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the line."""


class Lexicon:
    """The entries in force (replaced whole on reload, so a call sees one version)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        if path is not None:
            self.reload()

    def __len__(self) -> int:
        return len(self._entries)

    def reload(self) -> None:
        """Read the file again; on an error the entries in force stay.

        Raises:
            LexiconError: unreadable, not a mapping, or a bad entry (its line named).
        """
        if self.path is None:
            return
        entries = parse(self.path)
        pattern = _pattern(entries) if entries else None
        with self._lock:
            self._entries, self._pattern = entries, pattern

    def apply(self, text: str) -> str:
        """`text` with each entry's word said its way (IPA as a `[[ phonemes ]]` block)."""
        with self._lock:
            entries, pattern = self._entries, self._pattern
        if pattern is None:
            return text

        def say(match: re.Match[str]) -> str:
            word = match.group(0)
            said = entries.get(word) or entries[word.lower()]
            ipa = _IPA.match(said)
            return f"[[ {ipa.group(1)} ]]" if ipa else said

        return pattern.sub(say, text)


def parse(path: Path) -> dict[str, str]:
    """The entries of the lexicon at `path`: keys as matched (lower case, or capitals as written).

    Raises:
        LexiconError: naming the file and the line of the first bad entry.
    """
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LexiconError(f"lexicon {path} cannot be read as YAML ({type(exc).__name__})") from exc
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise LexiconError(f"lexicon {path} must map words to how to say them (`kubectl: cube control`)")
    if len(node.value) > MAX_ENTRIES:
        raise LexiconError(f"lexicon {path} has more than {MAX_ENTRIES} entries")
    entries: dict[str, str] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        word, say = key.value, value.value
        if not isinstance(word, str) or not isinstance(say, str) or not word.strip() or not say.strip():
            raise LexiconError(f"lexicon {path} line {line}: an entry is a word and how to say it, both text")
        if len(word) > MAX_KEY_CHARS or len(say) > MAX_SAY_CHARS:
            raise LexiconError(
                f"lexicon {path} line {line}: keys hold at most {MAX_KEY_CHARS} characters, "
                f"pronunciations {MAX_SAY_CHARS}"
            )
        if "/" in say and not _IPA.match(say.strip()):
            raise LexiconError(f"lexicon {path} line {line}: IPA goes between two slashes, with no brackets")
        if "[" in say or "]" in say:
            raise LexiconError(f"lexicon {path} line {line}: a respelling is words, without brackets")
        word = word.strip()
        entries[word if _acronym(word) else word.lower()] = say.strip()
    return entries


def _acronym(word: str) -> bool:
    return word.isupper() and len(word) > 1


def _pattern(entries: dict[str, str]) -> re.Pattern[str]:
    """One pattern for every key, longest first, as whole words; acronyms matched as written."""
    keys = sorted(entries, key=len, reverse=True)
    parts = [re.escape(k) if _acronym(k) else f"(?i:{re.escape(k)})" for k in keys]
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)")
