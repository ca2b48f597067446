"""Routing: a number's plan as a form for the common cases and as YAML for everything,
checked as `hotline400 check` checks it, previewed as `simulate` shows it, saved atomically
with every version kept and any version restorable.

Whoever may see a number previews changes to its plan (staff too); administrators save and
restore them. A plan's `status` (arrears, suspended, ...) and the variable of the routers'
environment its CRM events are signed with (`crm.secret_env`) are the operator's: a
subscriber's save or restore that would change either is refused, and the refusal written to
the audit log. A plan naming a `subscriber` that does not hold the number routes none of its
calls (a past holder's: router.numbers.service.past_holders_plan), so the page says so of the
plan on file and no save or restore writes one; the plan offered for a number without one
names the number's holder.

A plan file with problems that the routers serve from its last good copy opens on the file
as it is, with its problems, and says that the copy of its time serves instead, previewing
that copy: the file is what is being edited, the copy what answers the calls. A save or a
restore then writes the text checked, as ever (it is the fix); the copy is shown, never
written into the file for it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from console.config_problems import plan_copy
from console.file_writing import held, write_atomically
from console.plan_editing import (
    CommonSettings,
    declared_crm_key,
    declared_status,
    number_list,
    plan_path,
    preview,
    shown_name,
    validate,
)
from console.reports import FIRST_DAY, LAST_DAY
from console.users import User
from console.web import (
    audit,
    back_to,
    checked_form,
    console_of,
    not_found,
    render,
    require_change,
    scope_of,
    user_of,
    visible_number,
)
from dialplan.errors import Problem
from dialplan.plan import Plan
from numbering.lifecycle import as_of
from router.configuration.config_dir import PLANS_DIR
from router.numbers.plan_check import subscriber_problem
from router.storage.console_rows import PlanVersion

SAMPLE_CALLER = "053188889999"
PROBLEMS_HEADINGS = {
    "save": "The plan was not saved:",
    "restore": "The version was not restored:",
    "preview": "The plan has problems:",
    None: "The plan on file has problems:",
}
"""What the page says above a plan's problems: a page just opened saved nothing."""
MAX_VERSION = 2**63 - 1
"""The largest version the store can hold (a signed 64-bit integer); past it, not found."""


async def routing_page(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    text = _current_text(request, number, await _holder(request, number))
    saved = await _saved_version(request, number)
    if not plan_path(console_of(request).config_dir, number).exists():
        # The skeleton offered to start from is not a plan anyone saved: no problems yet.
        return await _page(request, number, text, problems=[], saved=saved, no_plan=True)
    return await _page(request, number, text, saved=saved)


async def _saved_version(request: Request, number: str) -> str | None:
    """The version a save or restore redirected here to announce (`?saved=N`), when the
    number has it: a link cannot have the page announce words of its own."""
    asked = request.query_params.get("saved", "")
    if not asked.isascii() or not asked.isdigit() or int(asked) > MAX_VERSION:
        return None
    version = await _visible_version(request, number, int(asked))
    return str(version.version) if version is not None else None


async def _visible_version(request: Request, number: str, version: int) -> PlanVersion | None:
    """The number's plan version, when the user may see it: a subscriber's users see the
    versions saved in the current holding of the number, not a previous holder's."""
    found = await console_of(request).store.plan_version(number, version)
    if found is None or not scope_of(request).covers(found.saved_at):
        return None
    return found


async def routing_post(request: Request) -> Response:
    """Preview (anyone who sees the number) or save (who may change it) a plan."""
    number = visible_number(request, request.path_params["number"])
    saving = (await request.form()).get("action") == "save"
    user = require_change(request) if saving else user_of(request)
    form = await checked_form(request)
    text = _unix_lines(str(form.get("yaml", "")))
    caller = str(form.get("caller") or SAMPLE_CALLER).strip()
    at = _preview_time(request, str(form.get("at", "")))
    note = str(form.get("note", ""))[:200]
    if form.get("mode") == "form":
        current = _current_text(request, number, await _holder(request, number))
        settings = CommonSettings(
            str(form.get("default_target", "")).strip(),
            number_list(str(form.get("on_busy", ""))),
            number_list(str(form.get("on_no_answer", ""))),
        )
        if CommonSettings.of(current) is None:
            return await _page(
                request,
                number,
                current,
                refusal=_form_cannot_apply(settings),
                caller=caller,
                at=at,
                note=note,
                status=409,
            )
        text = settings.applied_to(current)
    base = str(form.get("base", "")) or None
    console = console_of(request)
    plan, problems = validate(
        console.config_dir, number, text, console.config.settings.crm_networks()
    )
    if plan is not None and not problems:
        problems = await _holder_problems(request, number, plan, text)
    if problems or plan is None or not saving:
        return await _page(
            request,
            number,
            text,
            problems=problems,
            asked="save" if saving else "preview",
            caller=caller,
            at=at,
            note=note,
            base=base,
            status=422 if problems else 200,
        )
    path = plan_path(console.config_dir, number)
    store = console.store
    async with held(console.config_dir / PLANS_DIR, console.plan_saves):  # checked = written
        await _keep_as_found(request, number)
        if _changed_since(request, number, base):
            conflict = (
                "the plan was changed by someone else since this page was opened; your text is"
                " below and the latest version is in the history: compare them, then save again."
            )
            return await _page(
                request, number, text, refusal=conflict, caller=caller, at=at, note=note, status=409
            )
        if refusal := _operator_change_refused(request, user, number, plan):
            await audit(request, "refused: save plan", number, refusal)
            return await _page(
                request,
                number,
                text,
                refusal=refusal,
                caller=caller,
                at=at,
                note=note,
                base=base,
                status=403,
            )
        write_atomically(path, text)
        version = await store.save_plan_version(number, text, user.name, console.clock(), note)
    await audit(request, "save plan", number, f"version {version}")
    return back_to(f"/numbers/{number}/routing?saved={version}")


async def restore_version(request: Request) -> Response:
    """Restore a version (who may change the number), unless the plan changed since the
    page it was asked from was opened: the restore would overwrite a change unseen."""
    number = visible_number(request, request.path_params["number"])
    user = require_change(request)
    form = await checked_form(request)
    base = str(form.get("base", "")) or None
    console = console_of(request)
    version = await _visible_version(request, number, _version_asked(request))
    if version is None:
        raise not_found()
    plan, problems = validate(
        console.config_dir, number, version.source, console.config.settings.crm_networks()
    )
    if plan is not None and not problems:
        problems = await _holder_problems(request, number, plan, version.source)
    if problems or plan is None:  # checked by today's rules: an old version may no longer pass
        return await _page(
            request, number, version.source, problems=problems, asked="restore", status=422
        )
    async with held(console.config_dir / PLANS_DIR, console.plan_saves):  # checked = written
        if _changed_since(request, number, base):
            conflict = (
                f"the plan was changed by someone else since this page was opened, so version"
                f" {version.version} was not restored; the plan as it now is is below and in the"
                " history: check it, then restore again if you still want to."
            )
            current = _current_text(request, number)
            return await _page(request, number, current, refusal=conflict, status=409)
        if refusal := _operator_change_refused(request, user, number, plan):
            await audit(
                request, "refused: restore plan", number, f"version {version.version}: {refusal}"
            )
            return await _page(request, number, version.source, refusal=refusal, status=403)
        await _keep_as_found(request, number)
        write_atomically(plan_path(console.config_dir, number), version.source)
        saved = await console.store.save_plan_version(
            number,
            version.source,
            user.name,
            console.clock(),
            f"restored version {version.version}",
        )
    await audit(request, "restore plan", number, f"version {version.version} as {saved}")
    return back_to(f"/numbers/{number}/routing?saved={saved}")


async def version_page(request: Request) -> Response:
    number = visible_number(request, request.path_params["number"])
    version = await _visible_version(request, number, _version_asked(request))
    if version is None:
        raise not_found()
    return render(request, "plan_version.html", {"number": number, "version": version})


def _version_asked(request: Request) -> int:
    """The version of the path; one no store can hold is not found, like any unknown one."""
    version: int = request.path_params["version"]
    if not 0 <= version <= MAX_VERSION:
        raise not_found()
    return version


def _operator_change_refused(request: Request, user: User, number: str, plan: Plan) -> str | None:
    """Why `user` may not save `plan` over the number's current one: it changes what only
    the operator decides. None when it may."""
    if user.is_operator:
        return None
    return _status_change_refused(request, number, plan) or _crm_key_change_refused(
        request, number, plan
    )


def _crm_key_change_refused(request: Request, number: str, plan: Plan) -> str | None:
    """Why a subscriber may not name `plan`'s CRM key: the router signs the events with
    whatever variable of its environment the plan names (the console's secret, the
    database's password, another subscriber's key) and sends them where the plan says, so
    only the operator, who puts the key there, names it. Dropping the events is allowed."""
    asked = plan.crm.secret_env if plan.crm is not None else None
    current = declared_crm_key(
        console_of(request).config_dir, number, _current_text(request, number)
    )
    if asked is None or asked == current:
        return None
    return (
        "crm.secret_env: only the operator chooses the variable of the routers' environment"
        f" that signs a number's CRM events; {number}'s is {current or 'not set'} and this"
        f" plan names {asked}."
    )


def _status_change_refused(request: Request, number: str, plan: Plan) -> str | None:
    """Why a subscriber may not save `plan` over the number's current one: its status
    differs and only the operator changes a number's status (a subscriber lifting its own
    arrears or suspension would connect calls the operator stopped). None when it may."""
    current = declared_status(
        console_of(request).config_dir, number, _current_text(request, number)
    )
    if current is plan.status:
        return None
    if current is None:
        return (
            "the current plan's status cannot be read, so only the operator can save this"
            " number's plan"
        )
    return (
        f"status: only the operator changes a number's status; {number} is {current.value}"
        f" and this plan would make it {plan.status.value}."
    )


async def _keep_as_found(request: Request, number: str) -> None:
    """Record the plan file as a version before a save or restore replaces it, when the
    history does not end with it: the file's first plan, or one edited outside the console
    (by hand, by a deployment), would otherwise be overwritten with no way back to it."""
    console = console_of(request)
    path = plan_path(console.config_dir, number)
    try:
        found = path.read_bytes().decode("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return
    versions = await console.store.plan_versions(number)
    if versions and versions[0].source == found:
        return
    await console.store.save_plan_version(number, found, "(file)", console.clock(), "as found")


def _unix_lines(text: str) -> str:
    """A textarea's text as the plan files are written: browsers send each line ending as
    CRLF, which would otherwise turn every file the console saves into a DOS file."""
    return text.replace("\r\n", "\n")


def _form_cannot_apply(settings: CommonSettings) -> str:
    """Why the common-settings form was not applied: the plan on file changed since the
    page was opened into one the form cannot edit. The settings asked for are repeated, so
    nothing typed is lost."""
    return (
        "the plan on file no longer has the shape the common settings edit (it was changed"
        " since this page was opened); it is below. Make the change in the YAML editor:"
        f" default destination {settings.default_target or '(empty)'}, when busy"
        f" {', '.join(settings.on_busy) or 'none'}, when not answered"
        f" {', '.join(settings.on_no_answer) or 'none'}."
    )


def _changed_since(request: Request, number: str, base: str | None) -> bool:
    """Whether the plan file is no longer the one a page was opened on (`base`, its digest);
    a form that names none is taken as based on the file as it is."""
    return base is not None and base != _plan_digest(_current_text(request, number))


def _plan_digest(text: str) -> str:
    """What a form says it edited: a save based on another text than the file's now would
    overwrite a change its user never saw."""
    return hashlib.sha256(text.encode()).hexdigest()


def _current_text(request: Request, number: str, holder: str | None = None) -> str:
    """The plan file's text; for a number without one, a plan to start from that the
    common-settings form completes with a default destination (named after the number,
    since a plan needs a name and the form has no field for it), naming the subscriber that
    holds the number (`holder`), so that it never routes the calls of a later holder."""
    path = plan_path(console_of(request).config_dir, number)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        named = f'subscriber: "{holder}"\n' if holder is not None else ""
        return f'number: "{number}"\nname: "{number}"\n{named}default:\n  target: ""\n'


async def _holder(request: Request, number: str) -> str | None:
    """The subscriber holding the number now, as its calls find it; None: nobody, or a number
    the inventory does not hold."""
    console = console_of(request)
    stored = await console.store.number_record(number)
    if stored is None:
        return None
    return as_of(stored, console.now(), console.config.number_rules).subscriber


async def _holder_problems(request: Request, number: str, plan: Plan, text: str) -> list[Problem]:
    """The problem of a plan naming a subscriber that does not hold the number, as `check`
    words it: the router would route none of its calls by it."""
    if plan.subscriber is None:
        return []
    holder = await _holder(request, number)
    config_dir = console_of(request).config_dir
    problem = subscriber_problem(shown_name(config_dir, number), text, plan, holder)
    return [] if problem is None else [problem]


def _preview_time(request: Request, text: str) -> datetime:
    """The time the preview asks about; now, for one it cannot read or a day out of range
    (a calendar looks at the days around it)."""
    console = console_of(request)
    try:
        at = datetime.fromisoformat(text).replace(tzinfo=console.zone)
    except ValueError:
        return console.now()
    return at if FIRST_DAY <= at.date() <= LAST_DAY else console.now()


async def _page(
    request: Request,
    number: str,
    text: str,
    *,
    problems: list | None = None,
    asked: str | None = None,
    no_plan: bool = False,
    caller: str = SAMPLE_CALLER,
    at: datetime | None = None,
    saved: str | None = None,
    refusal: str | None = None,
    base: str | None = None,
    note: str = "",
    status: int = 200,
) -> Response:
    """The routing page showing `text`; `base` is the digest of the plan the user's edit
    started from (a page re-shown after a refused save keeps it, and its history `note`),
    else the current plan's. `asked` is what the user asked that found the problems (save,
    preview, restore); none for the plan on file as the page opens. `no_plan`: the number
    has no plan file yet."""
    console = console_of(request)
    at = at or console.now()
    plan, found = validate(console.config_dir, number, text, console.config.settings.crm_networks())
    if problems is None and plan is not None and not found:
        found = await _holder_problems(request, number, plan, text)
    problems = problems if problems is not None else found
    config = console.config
    served = plan_copy(config, number)
    served_name = None
    previewed = plan
    if served is not None:  # the plan file is broken: what answers the calls is the copy
        served_name = str(Path(console.config_dir.name) / PLANS_DIR / served.file.name)
        if plan is None and asked is None:
            previewed = config.plans.get(number)
    lines = await preview(previewed, caller, at, config, console.store, set()) if previewed else []
    return render(
        request,
        "routing.html",
        {
            "number": number,
            "text": text,
            "common": CommonSettings.of(text),
            "problems": problems,
            "problems_heading": PROBLEMS_HEADINGS[asked],
            "no_plan": no_plan,
            "preview": lines,
            "served": served,
            "served_name": served_name,
            "copy_previewed": previewed is not plan,
            "caller": caller,
            "at": at,
            "saved": saved,
            "refusal": refusal,
            "note": note,
            "base": base or _plan_digest(_current_text(request, number)),
            "versions": [
                version
                for version in await console.store.plan_versions(number)
                if scope_of(request).covers(version.saved_at)
            ],
        },
        status=status,
    )
