"""The configuration's problems page: what `hotline400 check --config DIR` prints of the
directory the console runs on, file by file, each problem in check's words
(console.config_problems says who sees which)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.config_problems import by_file, current_problems
from console.web import console_of, render, user_of


async def problems_page(request: Request) -> Response:
    console = console_of(request)
    problems = await current_problems(console, user_of(request))
    return render(
        request,
        "configuration.html",
        {"files": by_file(problems), "count": len(problems), "directory": console.config_dir},
    )
