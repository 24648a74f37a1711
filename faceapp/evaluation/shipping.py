"""The shipping rule (issue 13): when does a candidate model become the default?

A candidate becomes the default only when, on the same pairs,

- on each of the **gate** benchmarks (LFW View 2 and the ``tight`` variant) it is better than
  the current default and than each of its reference models (for a fused model: each backbone
  alone): higher k-fold accuracy and a paired exact McNemar p below ``alpha``;
- on each **guard** benchmark (DevTest and every other variant) it is not significantly worse
  than any of them (worse accuracy with p below ``alpha`` fails).

Everything else keeps it an option; :func:`decide` says which comparison failed and why, so the
model card can quote it. The comparisons are the ``paired_comparison`` results of
:mod:`faceapp.match.calibration` (``faceapp eval ... --compare-to``) or anything with the same
four keys: ``accuracy_a``, ``accuracy_b`` (B = the candidate), ``only_a_correct``,
``only_b_correct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from faceapp.match.calibration import mcnemar_exact

__all__ = ["Decision", "decide", "GATES"]

GATES = ("lfw-view2", "tight")


@dataclass
class Decision:
    ship: bool
    reasons: list[str] = field(default_factory=list)  # each failed comparison, in words
    checked: list[str] = field(default_factory=list)  # each comparison and its outcome

    def to_dict(self) -> dict:
        return {"ship": self.ship, "reasons": self.reasons, "checked": self.checked}


def _p(c: Mapping) -> float:
    return float(c["mcnemar_p"]) if "mcnemar_p" in c else mcnemar_exact(int(c["only_a_correct"]), int(c["only_b_correct"]))


def decide(comparisons: Mapping[str, Mapping[str, Mapping]], *, gates: tuple[str, ...] = GATES, alpha: float = 0.05) -> Decision:
    """``comparisons[benchmark][other_model]``: the candidate (B) against ``other_model`` (A).

    Every gate benchmark must be present with at least one comparison (a missing gate is a
    reason not to ship, never a pass)."""
    d = Decision(ship=True)
    for g in gates:
        if not comparisons.get(g):
            d.ship = False
            d.reasons.append(f"{g}: not measured")
    for bench, against in comparisons.items():
        for other, c in against.items():
            acc_a, acc_b, p = float(c["accuracy_a"]), float(c["accuracy_b"]), _p(c)
            line = f"{bench} vs {other}: {acc_b:.2%} against {acc_a:.2%}, McNemar p = {p:.3g}"
            if bench in gates:
                ok = acc_b > acc_a and p < alpha
                why = "not significantly better" if acc_b > acc_a else "not better"
            else:
                ok = not (acc_b < acc_a and p < alpha)
                why = "significantly worse"
            d.checked.append(line + (" (pass)" if ok else f" ({why})"))
            if not ok:
                d.ship = False
                d.reasons.append(f"{line}: {why}")
    return d
