"""The configuration's problems page: what `hotline400 check --config DIR` prints of the
directory the console runs on, file by file, each problem in check's words
(console.config_problems says who sees which), and under a file the routers serve from its
last good copy, that copy's time: the console's pages show that copy."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.config_problems import by_file, current_problems, served_copies
from console.web import console_of, render, user_of


async def problems_page(request: Request) -> Response:
    console = console_of(request)
    user = user_of(request)
    problems = await current_problems(console, user)
    files = by_file(problems, served_copies(user, console.config))
    return render(
        request,
        "configuration.html",
        {"files": files, "count": len(problems), "directory": console.config_dir},
    )
