"""IVR menus as a caller walks them: which menu plays next and where a key leads.

Pure like decide(): the router (and `simulate --digits`) feeds the walk the keys the caller
pressed, one per prompt, and plays what it says. A menu plays again after no key or a key
without an option, at most `retries` times, then its default is taken; `repeat` plays it
again on request, and no menu plays more than MAX_MENU_PLAYS times in one call, so a caller
cannot hold a line in a menu for ever. The way through becomes the CDR's menu path
(`main:2>support:1`: each menu with the key that left it, `default` when the retries ran
out) and its digits (every key pressed, in order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from dialplan.decision import TraceStep

MAX_MENU_PLAYS = 10
"""Plays of one menu in a call, repeats included: then its default."""
DEFAULT_EXIT = "default"


class MenuChoice(Protocol):
    """What the walk asks of a route a key leads to (the evaluator's compiled route)."""

    @property
    def menu(self) -> str | None:
        """The submenu it plays, or None for a route that dials or refuses."""

    @property
    def language(self) -> str | None:
        """The prompt language it switches to, if any."""


Route = TypeVar("Route", bound=MenuChoice)


@dataclass(frozen=True, slots=True)
class CompiledMenu(Generic[Route]):
    """A plan's menu as the walk asks it; `options[key]` is None for `repeat`."""

    name: str
    prompt: str
    invalid_prompt: str | None
    timeout_ms: int
    retries: int
    options: Mapping[str, Route | None]
    default: Route
    repeat_languages: Mapping[str, str] = field(default_factory=dict)
    """The language a `repeat` key switches the prompts to ("for English, press 9")."""


@dataclass(slots=True)
class MenuWalk(Generic[Route]):
    """One caller's way through the menus. After `press` or `no_key` returns None, `menu`
    is the menu to play next (after its invalid prompt when `after_invalid`); a route
    returned is where the caller goes (never a menu: submenus are walked here)."""

    menus: Mapping[str, CompiledMenu[Route]]
    menu: CompiledMenu[Route]
    path: list[str] = field(default_factory=list)
    digits: str = ""
    language: str | None = None
    """The language the last option chosen switched to, if any."""
    after_invalid: bool = False
    misses: int = 0
    plays: int = 1
    steps: list[TraceStep] = field(default_factory=list)

    @classmethod
    def start(cls, menus: Mapping[str, CompiledMenu[Route]], name: str) -> MenuWalk[Route]:
        return cls(menus, menus[name])

    @property
    def subject(self) -> str:
        return f"menu {self.menu.name!r}"

    def press(self, key: str) -> Route | None:
        """The caller pressed `key` ("" when nothing was pressed before the timeout)."""
        if not key:
            return self.no_key()
        self.digits += key
        if key not in self.menu.options:
            return self._miss(f"key {key} has no option", invalid=True)
        option = self.menu.options[key]
        if option is None:
            self.after_invalid = False
            language = self.menu.repeat_languages.get(key)
            if language is None:
                return self._again(f"key {key}: repeat")
            self.language = language
            return self._again(f"key {key}: repeat, prompts in {language}")
        return self._take(key, option)

    def no_key(self) -> Route | None:
        return self._miss("no key", invalid=False)

    def unplayable(self) -> Route:
        """The prompt could not be played (a missing sound file): the default at once."""
        self.steps.append((self.subject, "prompt cannot be played -> default", None))
        route = self._take(DEFAULT_EXIT, self.menu.default)
        while route is None:  # a default leading to a submenu that cannot be played either
            route = self.unplayable()
        return route

    def skipped(self, reason: str) -> Route:
        """The menus are not played at all (`reason`): each one's default, at once."""
        route = None
        while route is None:  # a default leading to a submenu: not played either
            self.steps.append((self.subject, f"not played ({reason}) -> default", None))
            route = self._take(DEFAULT_EXIT, self.menu.default)
        return route

    def hung_up(self) -> None:
        """The caller hung up in the current menu: it ends the path without a key."""
        self.path.append(self.menu.name)
        self.steps.append((self.subject, "caller hung up", None))

    @property
    def menu_path(self) -> str:
        return ">".join(self.path)

    def _miss(self, what: str, *, invalid: bool) -> Route | None:
        self.misses += 1
        retries = self.menu.retries
        if self.misses > retries or self.plays >= MAX_MENU_PLAYS:
            self.steps.append((self.subject, f"{what}, retries spent -> default", None))
            return self._take(DEFAULT_EXIT, self.menu.default)
        self.after_invalid = invalid
        return self._again(f"{what}, plays again (retry {self.misses} of {retries})")

    def _again(self, what: str) -> Route | None:
        if self.plays >= MAX_MENU_PLAYS:
            self.steps.append((self.subject, f"{what}: played {self.plays} times -> default", None))
            return self._take(DEFAULT_EXIT, self.menu.default)
        self.plays += 1
        self.steps.append((self.subject, what, None))
        return None

    def _take(self, key: str, option: Route) -> Route | None:
        self.path.append(f"{self.menu.name}:{key}")
        if option.language is not None:
            self.language = option.language
        if option.menu is None:
            return option  # the route's own trace step says where it leads
        label = f"key {key}" if key != DEFAULT_EXIT else DEFAULT_EXIT
        language = f", prompts in {option.language}" if option.language else ""
        self.steps.append((self.subject, f"{label} -> menu {option.menu!r}{language}", None))
        self.menu = self.menus[option.menu]
        self.after_invalid, self.misses, self.plays = False, 0, 1
        return None
