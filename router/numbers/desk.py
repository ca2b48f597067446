"""The lifecycle actions an operator asks for, by name, with the checks that need the store:
the command line (`hotline400 numbers ...`) and the console's Numbers pages both act through
here, so a number's life follows the same rules whichever way it is changed.

numbering.lifecycle decides each transition; this module binds an action's arguments, checks
what the state machine cannot know (the service provider exists, the subscriber belongs to
the reserving provider, its real-name material was given) and has `Inventory.act` write it.
Every refusal is a `Refused` with one line, and nothing written: a new subscriber is written
in the transaction of the transition that locks the number to it, never before it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from numbering import lifecycle
from numbering.lifecycle import Change
from rating.ledger import LedgerKind
from router.numbers.inventory import ATTEMPTS, Action, Inventory
from router.storage.number_rows import NameTaken, PartyRow
from router.storage.protocol import Store

SIMPLE_ACTIONS = ("release", "approve", "reject", "suspend", "resume", "cancel")
"""The actions that need nothing but who does them (and a reason for a rejection)."""


@dataclass(frozen=True, slots=True)
class Material:
    """A subscriber's real-name material: licence number, legal representative, masked ID."""

    licence: str
    legal_representative: str
    id_masked: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who the command line's --by names: a service provider or subscriber the store knows
    acts only on its own number and passes no review; any other name is the operator's."""

    name: str
    role: Literal["operator", "provider", "subscriber"]


async def actor_named(store: Store, name: str) -> Actor:
    if await store.providers(name):
        return Actor(name, "provider")
    if await store.subscribers(name=name):
        return Actor(name, "subscriber")
    return Actor(name, "operator")


_OPERATORS_ONLY = ("approve", "reject")
"""The review's decisions: the operator's, whoever holds the number."""


def guarded(action: Action, name: str, actor: Actor | None) -> Action:
    """`action`, refused when `actor` is a provider or subscriber acting on what is not its
    own: checked on the record as the action finds it, due transitions applied."""
    if actor is None or actor.role == "operator":
        return action

    def checked(record: lifecycle.NumberRecord, at: datetime) -> Change:
        if name in _OPERATORS_ONLY:
            raise lifecycle.Refused(
                f"{actor.name} is a {actor.role}: only the operator can {name} a number"
            )
        own = record.provider if actor.role == "provider" else record.subscriber
        if own != actor.name:
            holder = f"{own}'s" if own else f"no {actor.role}'s"
            raise lifecycle.Refused(
                f"{record.number} is {holder}, not {actor.name}'s: {actor.name} cannot {name} it"
            )
        return action(record, at)

    return checked


def simple_action(inventory: Inventory, name: str, actor: str, reason: str = "") -> Action:
    """One of SIMPLE_ACTIONS bound to its actor; KeyError for any other name."""
    rules, calendar = inventory.rules, inventory.calendar
    makers: dict[str, Action] = {
        "release": lambda r, at: lifecycle.release(r, actor, at, rules),
        "approve": lambda r, at: lifecycle.approve(r, actor, at, rules, calendar),
        "reject": lambda r, at: lifecycle.reject(r, actor, reason, at),
        "suspend": lambda r, at: lifecycle.suspend(r, actor, at, rules),
        "resume": lambda r, at: lifecycle.resume(r, actor, at),
        "cancel": lambda r, at: lifecycle.cancel(r, actor, at, rules),
    }
    if name == "reject" and not reason.strip():
        raise lifecycle.Refused("a rejection needs a reason, for the applicant")
    return makers[name]


async def act(
    inventory: Inventory,
    number: str,
    name: str,
    actor: str,
    at: datetime,
    reason: str = "",
    *,
    on_behalf: Actor | None = None,
) -> list[Change]:
    """Make one of SIMPLE_ACTIONS happen to `number` at `at`; `on_behalf`: the provider or
    subscriber the actor is, which may act only on its own number."""
    action = simple_action(inventory, name, actor, reason)
    return await inventory.act(number, at, guarded(action, name, on_behalf))


async def reserve(
    inventory: Inventory, number: str, provider: str, at: datetime, *, intent_form: bool = False
) -> list[Change]:
    """Hold a number for a service provider (reserving is free); `intent_form`: the customer
    signed an intent form, which a premium number needs to be held 30 days rather than 3."""
    await inventory.record(number)  # in the inventory at all, before anything else
    if not await inventory.store.providers(provider):
        raise lifecycle.Refused(f"no service provider {provider} (hotline400 providers add)")
    rules = inventory.rules
    return await inventory.act(
        number,
        at,
        lambda record, moment: lifecycle.reserve(
            record, provider, moment, rules, intent_form=intent_form
        ),
    )


async def apply(
    inventory: Inventory,
    number: str,
    subscriber: str,
    at: datetime,
    *,
    full_name: str | None = None,
    material: Material | None = None,
) -> list[Change]:
    """Lock a reserved number to a subscriber, who signed and prepaid; a new subscriber is
    made under the reserving provider, in the same transaction. With the real-name material,
    it is submitted for review at once, in that transaction too (an existing subscriber that
    applied without material is given it there; material once given is kept)."""
    for _ in range(ATTEMPTS):
        try:
            return await _apply_once(inventory, number, subscriber, at, full_name, material)
        except NameTaken:  # made by another operator meanwhile: read it, its provider decides
            continue
    raise lifecycle.Refused(f"subscriber {subscriber} is being changed by others: try again")


async def _apply_once(
    inventory: Inventory,
    number: str,
    subscriber: str,
    at: datetime,
    full_name: str | None,
    material: Material | None,
) -> list[Change]:
    store, rules, calendar = inventory.store, inventory.rules, inventory.calendar
    existing = await store.subscribers(name=subscriber)
    record = await inventory.record(number)
    caught_up = lifecycle.catch_up(record, at, rules)
    current = caught_up[-1].after if caught_up else record
    provider = existing[0].provider if existing else current.provider
    lifecycle.apply(current, subscriber, provider or "", at, rules)  # refuses before writing
    assert provider is not None
    kept = None
    if existing and material is not None:
        if has_material(existing[0]):
            raise lifecycle.Refused(
                f"subscriber {subscriber} exists: its material is kept as it was given"
            )
        kept = _with_material(existing[0], material)  # it applied without: given now
    party = None
    if not existing:
        given = material or Material("", "", "")
        party = PartyRow(
            subscriber,
            full_name or subscriber,
            given.licence,
            given.legal_representative,
            given.id_masked,
            at,
            provider,
        )
    holder: str = provider

    def applying(r: lifecycle.NumberRecord, moment: datetime) -> Change:
        return lifecycle.apply(r, subscriber, holder, moment, rules)

    def submitting(r: lifecycle.NumberRecord, moment: datetime) -> Change:
        return lifecycle.submit(r, moment, rules, calendar)

    then = submitting if material is not None else None
    return await inventory.act(number, at, applying, then=then, party=party, material=kept)


async def submit(
    inventory: Inventory, number: str, at: datetime, *, material: Material | None = None
) -> list[Change]:
    """Hand the subscriber's real-name material in for review: the material it was given
    with, or `material` for a subscriber that applied without it (kept from then on) or
    whose review was just rejected (the new material replaces the old)."""
    record = await inventory.record(number)
    given = replacing = None
    if record.subscriber is not None:
        [subscriber] = await inventory.store.subscribers(name=record.subscriber)
        complete = has_material(subscriber)
        if complete and material is not None:
            if not await rejected_last(inventory.store, number):
                raise lifecycle.Refused(
                    f"subscriber {subscriber.name} has its material: it is kept as it was "
                    f"given (new material only after a rejected review)"
                )
            replacing = subscriber
        if not complete and material is None:
            raise lifecycle.Refused(
                f"subscriber {subscriber.name} has no real-name material: give its licence, "
                f"legal representative and ID with the submission"
            )
        if material is not None:
            given = _with_material(subscriber, material)
    rules, calendar = inventory.rules, inventory.calendar
    try:
        return await inventory.act(
            number,
            at,
            lambda r, moment: lifecycle.submit(r, moment, rules, calendar),
            material=given,
            replacing=replacing,
        )
    except NameTaken:
        raise lifecycle.Refused(
            f"subscriber {record.subscriber} was given its material meanwhile: try again"
        ) from None


async def withdraw(
    inventory: Inventory, number: str, actor: str, at: datetime, *, on_behalf: Actor | None = None
) -> list[Change]:
    """The applicant withdraws its application before the review has decided; the opening
    and selection fees the application booked on the number's account are given back, as
    the ledger holds them (the fees' settings may have changed since), each once: an
    application withdrawn earlier at the same instant keeps its own. `on_behalf` as for
    `act`."""
    store, rules = inventory.store, inventory.rules
    current = lifecycle.as_of(await inventory.record(number), at, rules)
    booked: list[lifecycle.Fee] = []
    applied_at = current.last_reservation_end  # an application ends the reservation
    if current.status in _APPLICATION and applied_at is not None:
        entries = await store.ledger(number, since=applied_at, until=at + _INSTANT)
        given_back = {entry.ref for entry in entries if entry.kind is LedgerKind.ADJUSTMENT}
        booked = [
            lifecycle.Fee(
                "subscriber", entry.kind.value, Decimal(0) - entry.amount, entry.ref, entry.note
            )
            for entry in entries
            if entry.kind in (LedgerKind.OPENING_FEE, LedgerKind.SELECTION_FEE)
            and lifecycle.given_back_ref(entry.ref) not in given_back
        ]

    def withdrawing(record: lifecycle.NumberRecord, moment: datetime) -> Change:
        return lifecycle.withdraw(record, actor, moment, rules, booked)

    return await inventory.act(number, at, guarded(withdrawing, "withdraw", on_behalf))


_APPLICATION = (lifecycle.Status.APPLIED, lifecycle.Status.UNDER_REVIEW)
_INSTANT = timedelta(microseconds=1)


async def rejected_last(store: Store, number: str) -> bool:
    """Whether the number's last transition was a rejected review."""
    history = await store.number_history(number)
    return bool(history) and history[-1].reason.startswith(lifecycle.REVIEW_REJECTED)


def has_material(party: PartyRow) -> bool:
    """Whether the subscriber's real-name material is complete."""
    return bool(party.licence and party.legal_representative and party.id_masked)


def _with_material(party: PartyRow, material: Material) -> PartyRow:
    return dataclasses.replace(
        party,
        licence=material.licence,
        legal_representative=material.legal_representative,
        id_masked=material.id_masked,
    )
