"""The charts of a report as series for Chart.js, which draws them in the browser (it ships
in console/static). matplotlib would take a few hundred milliseconds a chart, more than a
whole report page may take; every page shows the same figures as a table as well, so
nothing depends on the script running.
"""

from __future__ import annotations

from typing import Any

from console.reports import DURATION_LABELS, Report
from dialplan.regions import place_name
from router.storage.console_rows import RegionCount

ACCENT = "#1f6feb"
MUTED = "#d0d7de"


def chart_series(report: Report) -> dict[str, dict[str, Any]]:
    """The charts of a report as Chart.js data: labels and one or more data sets each."""
    top = report.regions[:12]
    return {
        "daily": {
            "type": "bar",
            "stacked": True,
            "labels": [f"{day.day:%m-%d}" for day in report.days],
            "sets": [
                {"label": "answered", "data": [d.answered for d in report.days], "color": ACCENT},
                {
                    "label": "not answered",
                    "data": [d.calls - d.answered for d in report.days],
                    "color": MUTED,
                },
            ],
        },
        "hours": {
            "type": "bar",
            "labels": [f"{hour:02d}" for hour in range(24)],
            "sets": [{"label": "calls", "data": report.by_hour, "color": ACCENT}],
        },
        "durations": {
            "type": "bar",
            "labels": list(DURATION_LABELS),
            "sets": [{"label": "answered calls", "data": report.durations, "color": ACCENT}],
        },
        "regions": {
            "type": "bar",
            "horizontal": True,
            "labels": [region_name(r) for r in top],
            "sets": [{"label": "calls", "data": [r.calls for r in top], "color": ACCENT}],
        },
    }


def region_name(region: RegionCount) -> str:
    return place_name(region.province, region.city) or "unknown"
