"""A report's charts as one PNG image, for `hotline400 report --format png`: the same
charts as the console's pages, drawn by matplotlib.

Chinese province and city names need a CJK font: Noto Sans CJK is used when installed
(Debian's fonts-noto-cjk), else matplotlib's default font, which draws them as boxes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # no display: draw to files and strings only

import matplotlib.pyplot as plt
from matplotlib import font_manager

from console.charts import ACCENT, MUTED, region_name
from console.reports import DURATION_LABELS, Report

_CJK = [f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name]
plt.rcParams.update(
    {
        "font.family": [*_CJK[:1], "DejaVu Sans"],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#8c959f",
        "svg.fonttype": "none",  # text stays text: small, and the browser's fonts draw it
    }
)


def daily_volume(report: Report, axes: plt.Axes) -> None:
    labels = [f"{day.day:%m-%d}" for day in report.days]
    answered = [day.answered for day in report.days]
    others = [day.calls - day.answered for day in report.days]
    axes.bar(labels, answered, color=ACCENT, label="answered")
    axes.bar(labels, others, bottom=answered, color=MUTED, label="not answered")
    axes.legend(frameon=False, loc="upper left")
    step = max(1, len(labels) // 16)
    for index, label in enumerate(axes.get_xticklabels()):
        label.set_visible(index % step == 0)


def by_hour(report: Report, axes: plt.Axes) -> None:
    axes.bar([f"{hour:02d}" for hour in range(24)], report.by_hour, color=ACCENT)
    axes.set_xlabel("hour of day")


def durations(report: Report, axes: plt.Axes) -> None:
    axes.bar(DURATION_LABELS, report.durations, color=ACCENT)
    axes.set_xlabel("talk time of answered calls")


def regions(report: Report, axes: plt.Axes, top: int = 12) -> None:
    shown = report.regions[:top][::-1]
    axes.barh([region_name(r) for r in shown], [r.calls for r in shown], color=ACCENT)


Drawer = Callable[[Report, plt.Axes], None]
CHARTS: dict[str, tuple[str, Drawer, float]] = {
    "daily": ("Daily call volume", daily_volume, 2.6),
    "hours": ("Calls by hour of day", by_hour, 2.4),
    "durations": ("Talk time", durations, 2.4),
    "regions": ("Where callers are", regions, 3.6),
}


def report_png(report: Report, dpi: int = 120) -> bytes:
    """Every chart of a report stacked in one image, each with its title."""
    heights = [height for _, _, height in CHARTS.values()]
    figure, axes_list = plt.subplots(
        len(CHARTS), 1, figsize=(8, sum(heights) + 2), height_ratios=heights
    )
    for axes, (title, draw, _) in zip(axes_list, CHARTS.values(), strict=True):
        draw(report, axes)
        axes.set_title(title, loc="left")
    figure.suptitle(
        f"hotline400 report {', '.join(report.numbers)} {report.first_day} to {report.last_day}"
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()
