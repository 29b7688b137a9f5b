"""The harm categories xsteer knows (the I2P taxonomy), and validation of category names."""

from __future__ import annotations

from xsteer.errors import UnknownCategoryError

CATEGORIES: tuple[str, ...] = (
    "sexual",
    "violence",
    "self-harm",
    "hate",
    "harassment",
    "shocking",
    "illegal",
)
GLOBAL = "global"

_ALIASES = {
    "illegal activity": "illegal",
    "illegal-activity": "illegal",
    "illegal_activity": "illegal",
    "self harm": "self-harm",
    "self_harm": "self-harm",
    "selfharm": "self-harm",
    "nudity": "sexual",
    "sex": "sexual",
}


def normalize_category(name: str, *, allow_global: bool = True) -> str:
    """Map a category name (case-insensitive, common aliases) to its canonical form.

    >>> normalize_category("Illegal Activity")
    'illegal'
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in CATEGORIES or (allow_global and key == GLOBAL):
        return key
    known = ", ".join(CATEGORIES + ((GLOBAL,) if allow_global else ()))
    raise UnknownCategoryError(f"unknown harm category {name!r}; known: {known}")
