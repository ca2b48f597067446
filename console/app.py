"""The console as an ASGI application (Starlette): routes, middleware, static files.

Every page is rendered on the server and works without JavaScript; htmx and Chart.js,
shipped in console/static, only make the dashboard live and draw the report charts.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console.context import Console
from console.headers import SecurityHeaders
from console.security import LoginThrottle
from console.sessions import SignedInOnly, login, login_page, logout
from console.views import calls, configuration, dashboard, money, numbers, people, reports, routing
from console.web import refused, render
from router.storage.location import ConfiguredStore

STATIC = Path(__file__).parent / "static"


def create_app(
    config_dir: Path,
    store: ConfiguredStore,
    *,
    clock: Callable[[], datetime],
    secure_cookies: bool = True,
    secret: bytes | None = None,
) -> Starlette:
    routes = [
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", dashboard.dashboard),
        Route("/dashboard/summary", dashboard.summary),
        Route("/events", dashboard.events),
        Route("/calls", calls.search_page),
        Route("/calls.csv", calls.export_csv),
        Route("/calls.xlsx", calls.export_xlsx),
        Route("/calls/{call_id}", calls.call_page),
        Route("/calls/{call_id}/recording", calls.recording),
        Route("/reports", reports.reports_page),
        Route("/numbers", numbers.search_page),
        Route("/numbers/{number}", numbers.number_page),
        Route("/numbers/{number}/actions/{action}", numbers.act, methods=["POST"]),
        Route("/numbers/{number}/routing", routing.routing_page),
        Route("/numbers/{number}/routing", routing.routing_post, methods=["POST"]),
        Route("/numbers/{number}/routing/versions/{version:int}", routing.version_page),
        Route(
            "/numbers/{number}/routing/versions/{version:int}/restore",
            routing.restore_version,
            methods=["POST"],
        ),
        Route("/numbers/{number}/money", money.money_page),
        Route("/numbers/{number}/money/payments", money.book_payment, methods=["POST"]),
        Route("/numbers/{number}/money/features/{feature}", money.switch, methods=["POST"]),
        Route("/users", people.users_page),
        Route("/users", people.add_user, methods=["POST"]),
        Route("/users/{name}/disable", people.disable_user, methods=["POST"]),
        Route("/password", people.password_page),
        Route("/password", people.change_password, methods=["POST"]),
        Route("/audit", people.audit_page),
        Route("/accounts", people.accounts_page),
        Route("/configuration", configuration.problems_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders), Middleware(SignedInOnly)],
        exception_handlers={HTTPException: _error_page},
    )
    app.state.console = Console(
        config_dir, store, secret or secrets.token_bytes(32), clock, secure_cookies
    )
    app.state.throttle = LoginThrottle(store)
    return app


async def _error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    await refused(request, error.status_code, error.detail)
    user = getattr(request.state, "user", None)
    broken = (  # the operator is told when a broken file may be why something is not found
        error.status_code == 404
        and user is not None
        and user.is_operator
        and bool(request.app.state.console.config.problems)
    )
    context = {"error": error, "config_broken": broken}
    response = render(request, "error.html", context, status=error.status_code)
    if error.headers:
        response.headers.update(error.headers)
    return response
