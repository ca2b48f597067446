"""Routing: a number's plan as a form for the common cases and as YAML for everything,
checked as `hotline400 check` checks it, previewed as `simulate` shows it, saved atomically
with every version kept and any version restorable."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from console.plan_editing import (
    CommonSettings,
    number_list,
    plan_path,
    preview,
    validate,
    write_atomically,
)
from console.web import (
    audit,
    back_to,
    checked_form,
    console_of,
    not_found,
    render,
    require_change,
    visible_number,
)

SAMPLE_CALLER = "053188889999"


async def routing_page(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    text = _current_text(request, number)
    return await _page(request, number, text, saved=request.query_params.get("saved"))


async def routing_post(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    user = require_change(request)
    form = await checked_form(request)
    text = str(form.get("yaml", ""))
    if form.get("mode") == "form":
        current = _current_text(request, number)
        settings = CommonSettings(
            str(form.get("default_target", "")).strip(),
            number_list(str(form.get("on_busy", ""))),
            number_list(str(form.get("on_no_answer", ""))),
        )
        text = settings.applied_to(current)
    caller = str(form.get("caller") or SAMPLE_CALLER).strip()
    at = _preview_time(request, str(form.get("at", "")))
    console = console_of(request)
    plan, problems = validate(console.config_dir, number, text)
    if problems or plan is None or form.get("action") != "save":
        return await _page(
            request,
            number,
            text,
            problems=problems,
            caller=caller,
            at=at,
            status=422 if problems else 200,
        )
    path = plan_path(console.config_dir, number)
    store = console.store
    if not await store.plan_versions(number) and path.exists():
        await store.save_plan_version(
            number, path.read_text(encoding="utf-8"), "(file)", console.clock(), "as found"
        )
    write_atomically(path, text)
    version = await store.save_plan_version(
        number, text, user.name, console.clock(), str(form.get("note", ""))[:200]
    )
    await audit(request, "save plan", number, f"version {version}")
    return back_to(f"/numbers/{number}/routing?saved={version}")


async def restore_version(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    user = require_change(request)
    await checked_form(request)
    console = console_of(request)
    version = await console.store.plan_version(number, int(request.path_params["version"]))
    if version is None:
        raise not_found()
    _, problems = validate(console.config_dir, number, version.source)
    if problems:  # checked by today's rules: an old version may no longer pass
        return await _page(request, number, version.source, problems=problems, status=422)
    write_atomically(plan_path(console.config_dir, number), version.source)
    saved = await console.store.save_plan_version(
        number, version.source, user.name, console.clock(), f"restored version {version.version}"
    )
    await audit(request, "restore plan", number, f"version {version.version} as {saved}")
    return back_to(f"/numbers/{number}/routing?saved={saved}")


async def version_page(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    version = await console_of(request).store.plan_version(
        number, int(request.path_params["version"])
    )
    if version is None:
        raise not_found()
    return render(request, "plan_version.html", {"number": number, "version": version})


def _current_text(request: Request, number: str) -> str:
    path = plan_path(console_of(request).config_dir, number)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f'number: "{number}"\nname: ""\ndefault:\n  target: ""\n'


def _preview_time(request: Request, text: str) -> datetime:
    console = console_of(request)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=console.zone)
    except ValueError:
        return console.now()


async def _page(
    request: Request,
    number: str,
    text: str,
    *,
    problems: list | None = None,
    caller: str = SAMPLE_CALLER,
    at: datetime | None = None,
    saved: str | None = None,
    status: int = 200,
) -> Response:
    console = console_of(request)
    at = at or console.now()
    plan, found = validate(console.config_dir, number, text)
    problems = problems if problems is not None else found
    config = console.config
    lines = preview(plan, caller, at, config.calendar, set(), config.tariffs) if plan else []
    return render(
        request,
        "routing.html",
        {
            "number": number,
            "text": text,
            "common": CommonSettings.of(text),
            "problems": problems,
            "preview": lines,
            "caller": caller,
            "at": at,
            "saved": saved,
            "versions": await console.store.plan_versions(number),
        },
        status=status,
    )
