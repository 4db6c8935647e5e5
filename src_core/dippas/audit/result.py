"""One audit test's outcome: score, threshold and verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

MATCH = "match"
NO_MATCH = "no match"


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test.

    Attributes
    ----------
    name : str
        Test name (see ``docs/audit.md``).
    score : float
        The test's score (NaN when it could not be computed).
    threshold : float
        Decision threshold at the audit's false-alarm probability.
    two_sided : bool
        True: match when ``|score| >= threshold``; False: ``score >= threshold``.
    """

    __test__ = False  # not a pytest test class

    name: str
    score: float
    threshold: float
    two_sided: bool = True

    @property
    def verdict(self) -> str:
        """``"match"`` or ``"no match"`` (a NaN score never matches)."""
        s = float(self.score)
        if not math.isfinite(s) or not math.isfinite(float(self.threshold)):
            return NO_MATCH
        value = abs(s) if self.two_sided else s
        return MATCH if value >= self.threshold else NO_MATCH

    @property
    def matched(self) -> bool:
        """Whether the verdict is ``"match"``."""
        return self.verdict == MATCH

    def to_dict(self) -> dict:
        """``{"name", "score", "threshold", "verdict", "two_sided"}``."""
        return {"name": self.name, "score": float(self.score),
                "threshold": float(self.threshold), "verdict": self.verdict,
                "two_sided": bool(self.two_sided)}
