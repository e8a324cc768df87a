"""The pieces every inline SVG line chart of Gleaner shares (the agreement and quality pages
in review, the Signals page): series colours and marker shapes, ticks, the chart's frame.
Drawn by templates/charts/_axes.html and each chart's own template, so every label goes
through autoescaping.
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe-Ito colours (told apart with colour blindness), each with its own marker shape so
# the lines differ without colour too.
SERIES_STYLES = [
    ("#0072b2", "circle"),
    ("#d55e00", "square"),
    ("#009e73", "diamond"),
    ("#cc79a7", "triangle"),
    ("#e69f00", "circle"),
    ("#56b4e9", "square"),
]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class ChartFrame:
    """A line chart's canvas and plot area, with its axes' ticks."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2


def marker_path(shape: str, x: float, y: float, r: float = 4.5) -> str:
    """An SVG path for a point marker centred on (x, y)."""
    if shape == "square":
        r *= 0.9
        return f"M{x - r:.1f} {y - r:.1f}h{2 * r:.1f}v{2 * r:.1f}h{-2 * r:.1f}Z"
    if shape == "diamond":
        r *= 1.3
        return f"M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z"
    if shape == "triangle":
        return (
            f"M{x:.1f} {y - r * 1.25:.1f}L{x + r * 1.15:.1f} {y + r * 0.85:.1f}"
            f"L{x - r * 1.15:.1f} {y + r * 0.85:.1f}Z"
        )
    arc = f"a{r:.1f} {r:.1f} 0 1 0"
    return f"M{x - r:.1f} {y:.1f}{arc} {2 * r:.1f} 0{arc} {-2 * r:.1f} 0Z"
