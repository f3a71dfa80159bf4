"""Words and numbers for people: accuracy differences in points, intervals, verdicts.

One place for the wording that the terminal, the report and the study note share. A "point"
is one accuracy percentage point (a difference of 0.01 in accuracy).
"""

from __future__ import annotations


def percent_label(confidence: float) -> str:
    """``0.95`` -> ``"95%"``."""
    return f"{confidence * 100:g}%"


def signed(value: float) -> str:
    """``2.06`` -> ``"+2.1"`` (one decimal, always signed; ``-0.01`` -> ``"+0.0"``)."""
    return f"{round(value, 1) + 0.0:+.1f}"


def interval_range(interval: tuple[float, float]) -> str:
    """``(-0.44, 0.61)`` -> ``"-0.4..+0.6"``."""
    return f"{signed(interval[0])}..{signed(interval[1])}"


def effect_text(difference: float, interval: tuple[float, float] | None, confidence: float) -> str:
    """``+2.1 points, 95% CI +0.8..+3.3`` (no CI part without an interval)."""
    text = f"{signed(difference)} points"
    if interval is not None:
        text += f", {percent_label(confidence)} CI {interval_range(interval)}"
    return text


def direction(interval: tuple[float, float] | None) -> str | None:
    """``"helps"`` when the interval lies above 0, ``"hurts"`` below, ``"none"`` when it
    covers 0, ``None`` without an interval."""
    if interval is None:
        return None
    if interval[0] > 0:
        return "helps"
    if interval[1] < 0:
        return "hurts"
    return "none"


def verdict_text(
    difference: float | None,
    interval: tuple[float, float] | None,
    confidence: float,
    count: str,
) -> str:
    """A verdict on "MLP conv minus plain conv", with the number, interval and ``count``.

    Args:
        difference: MLP minus plain, in points; ``None`` when there is no data.
        interval: Its interval in points; ``None`` when none could be computed.
        confidence: Coverage of the interval.
        count: How much data, e.g. ``"n=3 seeds"`` or ``"plain n=9, mlp n=12"``.

    Returns:
        ``MLP conv helps (+2.1 points, 95% CI +0.8..+3.3, n=3 seeds)``, ``MLP conv hurts
        (...)``, ``no effect detected: difference +0.1 points, 95% CI -0.4..+0.6 (n=3 seeds)``,
        or, without an interval, ``unsure: difference +1.2 points, no interval (n=1 seed)``.
    """
    if difference is None:
        return f"no data ({count})"
    effect = effect_text(difference, interval, confidence)
    verdict = direction(interval)
    if verdict is None:
        return f"unsure: difference {effect}, no interval ({count})"
    if verdict == "none":
        return f"no effect detected: difference {effect} ({count})"
    return f"MLP conv {verdict} ({effect}, {count})"


def params_text(params: float | None) -> str:
    """``11843`` -> ``"11.8k"``, ``2_400_000`` -> ``"2.4M"``, ``None`` -> ``"?"``."""
    if params is None:
        return "?"
    if params >= 1e6:
        return f"{params / 1e6:.3g}M"
    if params >= 1e3:
        return f"{params / 1e3:.3g}k"
    return f"{params:.0f}"


def plural(count: int, word: str) -> str:
    """``(1, "seed")`` -> ``"1 seed"``, ``(3, "seed")`` -> ``"3 seeds"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
