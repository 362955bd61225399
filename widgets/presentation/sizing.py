"""Type sizes for a screen read from five metres away, scaled with the screen's height.

The sizes are designed at 1080 lines and grow with the height, so a 4K wall shows the same
picture, not the same pixels. At 1080 lines on a 65-inch screen a pixel is about 0.75 mm: the
smallest text (38 px, about 20 mm capitals) is still legible from five metres, the body text
(52 px) comfortably, and the headline figure (240 px) from the back of a hall.
"""

from __future__ import annotations

from dataclasses import dataclass

DESIGN_HEIGHT = 1080


@dataclass(frozen=True)
class Sizes:
    hero: int
    big: int
    title: int
    body: int
    small: int
    legend: int
    margin: int
    gap: int

    @classmethod
    def for_height(cls, height: int) -> "Sizes":
        u = max(0.4, height / DESIGN_HEIGHT)
        return cls(hero=round(240 * u), big=round(150 * u), title=round(64 * u),
                   body=round(52 * u), small=round(38 * u), legend=round(44 * u),
                   margin=round(48 * u), gap=round(24 * u))


def stylesheet(s: Sizes, background: str, text: str, dim: str, accent: str, stale: str,
               warn: str) -> str:
    """QSS for the presentation window's labels, by their ``role`` property."""
    return f"""
QWidget#PresentationWindow {{ background: {background}; }}
QWidget#PresentationWindow QLabel {{ background: transparent; }}
QLabel[role="hero"] {{ font-size: {s.hero}px; font-weight: bold; color: {text}; }}
QLabel[role="big"] {{ font-size: {s.big}px; font-weight: bold; color: {text}; }}
QLabel[role="title"] {{ font-size: {s.title}px; font-weight: bold; color: {text}; }}
QLabel[role="caption"] {{ font-size: {s.body}px; color: {dim}; letter-spacing: 2px; }}
QLabel[role="body"] {{ font-size: {s.body}px; color: {text}; }}
QLabel[role="legend"] {{ font-size: {s.legend}px; font-weight: bold; }}
QLabel[role="small"] {{ font-size: {s.small}px; color: {dim}; }}
QLabel[role="accent"] {{ font-size: {s.body}px; font-weight: bold; color: {accent}; }}
QLabel[role="age"] {{ font-size: {s.small}px; color: {dim}; }}
QLabel[role="age"][stale="true"] {{ font-size: {s.small}px; color: {stale}; font-weight: bold; }}
QWidget#PresentationWindow QLabel[role="badge"] {{ font-size: {s.small}px; color: #121418; background: {warn};
                        padding: 2px 12px; font-weight: bold; }}
"""
