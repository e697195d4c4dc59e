"""Calendar colours for the calendar view: the provider's colour when it is a plain hex colour,
else a stable default, and a text colour that stays readable on it.

Colours reach the page through a per-user stylesheet (/calendar/colors.css), never through
style attributes (the Content-Security-Policy forbids them). Provider colours are untrusted
text, so only `#rgb`, `#rrggbb` and `#rrggbbaa` are accepted and rewritten as `#rrggbb`:
nothing else can end up in the CSS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")

#: defaults for calendars without a colour, picked by calendar id so each keeps its own
PALETTE = ("#1f5f8b", "#2e7d32", "#b5472b", "#6a4c93", "#00838f", "#a0365f", "#8d6e00", "#455a64",
           "#c2185b", "#3949ab")
DARK_TEXT = "#000000"
LIGHT_TEXT = "#ffffff"


def normalize(color: str | None) -> str | None:
    """`#rrggbb` (lower case) for a hex colour, dropping any alpha; None for anything else."""
    if not color:
        return None
    m = _HEX.match(color.strip())
    if not m:
        return None
    digits = m.group(1).lower()
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return "#" + digits[:6]


def background(calendar_id: int, color: str | None) -> str:
    return normalize(color) or PALETTE[calendar_id % len(PALETTE)]


def _luminance(color: str) -> float:
    """WCAG relative luminance of `#rrggbb`."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color(bg: str) -> str:
    """Dark or light text, whichever contrasts more with `bg` (at least 4.5:1 for any colour
    that is not a mid grey; the higher of the two is never below 4.58:1)."""
    return DARK_TEXT if contrast(bg, DARK_TEXT) >= contrast(bg, LIGHT_TEXT) else LIGHT_TEXT


def stylesheet(calendars: Iterable[tuple[int, str | None]]) -> str:
    """One rule per (calendar id, provider colour): the custom properties calendar.css uses."""
    lines = ["/* homecal: colours of your calendars (generated) */"]
    for cal_id, color in calendars:
        bg = background(cal_id, color)
        lines.append(f".cal-{int(cal_id)} {{ --cal-bg: {bg}; --cal-fg: {text_color(bg)}; }}")
    return "\n".join(lines) + "\n"
