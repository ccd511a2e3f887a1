"""Human-readable sizes, durations and rates for the visualize templates."""

from __future__ import annotations

from django import template

register = template.Library()

_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


@register.filter
def human_bytes(value: float) -> str:
    size = float(value or 0)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@register.filter
def human_duration(seconds: float) -> str:
    value = float(seconds or 0)
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


@register.filter
def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"
