"""Whether the words of a turn so far close it, as English grammar and the recognizer hear them.

Some words cannot end an English sentence: an article or possessive determiner (its noun is still to
come), a conjunction (the next clause is), a contracted auxiliary ("it's", "I'll": English keeps the
full form before a gap, "yes, it is"), a filled pause ("um": the speaker holds the floor). After
them the turn is `unfinished`. Others rarely end one: a preposition or infinitival "to" (its object
or verb usually follows, though "what is it for?" ends there), a modal ("could": its verb usually
follows, though "yes, I can" ends there); so do words the recognizer left open — a comma, a dash, an
ellipsis or no closing mark — and a last word the recognizer was unsure of (a word cut short by the
pause is often heard as another: "the" as "that", "to" as "to me"). After them the turn is `open`.
Words the recognizer closed with ".", "?" or "!" after any other word, heard surely, are `closed`.
This is evidence about the words only; the sound of the turn (`turn_model`) is weighed beside it
(`turn_judge`).

The lead-in's leaning words (`speech_backend.text`) are a wider list on purpose: a lead-in that
avoids a cut after "do" or "is" costs nothing, while a turn held open after them ("What should I
do?", "Do you know where it is?") would wait for nothing.
"""

from __future__ import annotations

import re
from typing import Literal

from speech_backend.results import HeardEnd

WordsEnd = Literal["unfinished", "open", "closed"]

_ARTICLES = "a an the thee"  # "thee": "the" said /ði/ before a pause, a speaker suspending (Fox Tree & Clark)
_POSSESSIVES = "my your our their its"
_CONJUNCTIONS = "and or nor but because although though if unless whereas whether than so"
_CONTRACTED = (
    "i'm i'd i'll i've you're you'd you'll you've we're we'd we'll we've they're they'd they'll "
    "they've he's he'd he'll she's she'd she'll it's it'll that's there's what's"
)
_FILLERS = "um uh er erm hmm mm uhm"
UNFINISHED_WORDS = frozenset(
    " ".join((_ARTICLES, _POSSESSIVES, _CONJUNCTIONS, _CONTRACTED, _FILLERS)).split()
)
_PREPOSITIONS = "of for to with at from in into onto on by about through between without towards toward like"
_MODALS = "can could would should will shall may might must"
OPEN_WORDS = frozenset(f"{_PREPOSITIONS} {_MODALS}".split())
# "though" and "so" end sentences as adverbs ("I think so"); as conjunctions, far more often mid-turn
_ENDING_ADVERBS = frozenset(("though", "so"))
# Below this probability the last word is taken as unsure. On `benchmarks/turns.py`'s material,
# words misheard at a cut scored 0.26-0.54 (one 0.8) and sentences' true last words 0.93-1.0 (one 0.54).
SURE_WORD = 0.6
_CLOSING = re.compile(r"[.?!]['\")\]]*$")
_TRAILING = re.compile(r"(\.\.\.|…|[,;:\-–—])['\")\]]*$")
_WORD = re.compile(r"[\w']+")


def words_end(heard: HeardEnd) -> WordsEnd | None:
    """How the words of a turn so far end (see the module's text); None when no words were heard, so
    the sound alone decides."""
    text = heard.text.strip()
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    if not words:
        return None
    last = words[-1]
    if last in UNFINISHED_WORDS and not (last in _ENDING_ADVERBS and _CLOSING.search(text)):
        return "unfinished"
    if last in OPEN_WORDS or _TRAILING.search(text) or not _CLOSING.search(text):
        return "open"
    if heard.last_word_probability < SURE_WORD:
        return "open"
    return "closed"
