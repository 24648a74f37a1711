"""People's names: one spelling shown, one key compared.

A name is normalised before it is stored or looked up: Unicode NFKC (so a full-width "Ａ"
or a ligature reads as its plain letters and a no-break space as a space), every run of
spaces collapsed to one space, the ends trimmed. Characters that are invisible or that
reorder text (zero-width spaces and joiners, bidi embeddings, overrides and isolates, the
left-to-right / right-to-left marks, soft hyphens, any other Unicode "format" or control
character) are refused: they make two different-looking names equal or one name look like
another. The key that must be unique is the normalised name case-folded, so "Alice" and
"alice" are one person; the spelling the admin typed is kept for display.
"""

from __future__ import annotations

import unicodedata

from faceapp.errors import StoreError
from faceapp.store.models import NAME_LENGTH


def normalize_name(name: str) -> str:
    """The name as stored and shown: NFKC, whitespace collapsed, trimmed.

    Raises :class:`StoreError` (one line, naming the offending character) for an empty or
    too long name and for invisible, bidi-control or control characters."""
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, got {type(name).__name__}")
    text = unicodedata.normalize("NFKC", name)
    for ch in text:
        category = unicodedata.category(ch)
        if category.startswith("C") or category in ("Zl", "Zp"):  # tabs and newlines too
            code = f"U+{ord(ch):04X}"
            label = unicodedata.name(ch, "an unassigned or control character")
            raise StoreError(
                f"a person's name cannot contain invisible or control characters: {code} {label.lower()} in {name!r}"
            )
    text = " ".join(text.split())
    if not text:
        raise StoreError("a person's name cannot be empty")
    if len(text) > NAME_LENGTH:
        raise StoreError(f"a person's name can have at most {NAME_LENGTH} characters, got {len(text)}")
    return text


def name_key(name: str) -> str:
    """What two names are compared by: the normalised name, case-folded (and NFKC again,
    since case folding can leave characters that NFKC would change)."""
    return unicodedata.normalize("NFKC", normalize_name(name).casefold())
