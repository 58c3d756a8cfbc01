"""A tolerant string enum: vendors send codes we have never seen, in any case."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class LenientEnum(StrEnum):
    """``parse`` maps vendor text to a member, or to ``_fallback()`` for anything unknown."""

    @classmethod
    def _fallback(cls) -> Self:
        return list(cls)[-1]  # by convention the last member is the catch-all

    @classmethod
    def parse(cls, raw: object) -> Self:
        if isinstance(raw, str):
            try:
                return cls(raw.strip().lower())
            except ValueError:
                pass
        return cls._fallback()
