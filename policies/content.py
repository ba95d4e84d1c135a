"""Content rules over text to speak: plain text only, blocked patterns, no impersonation."""

from __future__ import annotations

import re
import unicodedata

from policies.config import ContentRules
from policies.errors import PolicyDenied

_IMPERSONATION = re.compile(
    r"\b(?:in the voice of|sound(?:ing)? (?:just |exactly )?like|imitat\w*|impersonat\w*|"
    r"pretend(?:ing)? to be|as if you (?:were|are))\s+(?:the\s+)?[A-Z][\w'.-]+",
)


class ContentPolicy:
    """Refuses text that is not plain text, matches a blocked pattern, or asks to imitate a person."""

    def __init__(self, rules: ContentRules) -> None:
        self.rules = rules
        self._blocked = [(b.id, re.compile(b.pattern, re.IGNORECASE)) for b in rules.blocked_patterns]

    def check(self, text: str) -> None:
        """Refuse `text` by the first rule it breaks.

        Raises:
            PolicyDenied: naming the rule.
        """
        for ch in text:
            category = unicodedata.category(ch)
            if (category == "Cc" and ch not in "\n\t\r") or category in ("Cs", "Co", "Cn"):
                raise PolicyDenied(
                    f"text contains a control or invalid character (U+{ord(ch):04X}); send plain text",
                    rule="plain-text",
                )
        for rule, pattern in self._blocked:
            if pattern.search(text):
                raise PolicyDenied(f"text is refused by content rule {rule!r}", rule=rule)
        if self.rules.refuse_impersonation and _IMPERSONATION.search(text):
            raise PolicyDenied(
                "requests to imitate a named person are refused; voices are a fixed catalog "
                "(see list_voices)",
                rule="impersonation",
            )
