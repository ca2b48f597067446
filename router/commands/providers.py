"""`hotline400 providers`: the service providers (resellers) that reserve numbers for their
customers, each with an account, balance and ledger of its own.

providers add NAME --full-name F --licence L --legal-rep R --id-number ID
              [--low-balance-warning YUAN]
providers set NAME --low-balance-warning YUAN
providers show NAME     material (ID masked), balance, low-balance warning threshold,
                        latest ledger entries, subscribers, numbers held
providers list
A provider's account is topped up with `hotline400 account topup --provider NAME`; the
feature fees of its subscribers' numbers are deducted from it (`account fees`). A booking
that takes its balance below its threshold (50.00 unless set) raises the low-balance
warning, as a number's does (router.money.booking_alerts).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from decimal import Decimal

from numbering.lifecycle import Refused
from rating.tariff import DEFAULT_LOW_BALANCE_WARNING
from router.commands.arguments import provider_name, threshold
from router.commands.number_output import (
    RECORD_HEADER,
    entry_json,
    local,
    party_json,
    print_json,
    print_table,
    record_json,
    record_row,
)
from router.commands.numbers import inventory_command, licence_number, masked_id_number
from router.money.books import Books
from router.money.provider_accounts import provider_account
from router.numbers.inventory import Inventory
from router.storage.number_rows import PartyRow

SHOWN_ENTRIES = 20
MAX_THRESHOLD = Decimal("1000000.00")
"""The highest low-balance warning threshold: the most a provider is topped up at once."""
SHOWN_NUMBERS = 200


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("providers", help="service providers and their accounts")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    formatted = argparse.ArgumentParser(add_help=False)
    formatted.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )

    add = actions.add_parser("add", parents=[common, formatted], help="add a service provider")
    add.add_argument("name", type=provider_name, help="short name, e.g. sp-huadong")
    add.add_argument("--full-name", required=True, help="the company's registered name")
    add.add_argument(
        "--licence", required=True, type=licence_number, help="business licence number"
    )
    add.add_argument("--legal-rep", required=True, help="the legal representative's name")
    add.add_argument(
        "--id-number", required=True, type=masked_id_number, help="the representative's ID (masked)"
    )
    add.add_argument(
        "--low-balance-warning",
        type=threshold(MAX_THRESHOLD),
        default=DEFAULT_LOW_BALANCE_WARNING,
        metavar="YUAN",
        help=f"warn when the balance falls below it (default {DEFAULT_LOW_BALANCE_WARNING})",
    )
    add.set_defaults(run=inventory_command(_add))

    settings = actions.add_parser("set", parents=[common], help="change a provider's settings")
    settings.add_argument("name", type=provider_name, help="the provider's short name")
    settings.add_argument(
        "--low-balance-warning",
        required=True,
        type=threshold(MAX_THRESHOLD),
        metavar="YUAN",
        help="warn when the balance falls below it, e.g. 80.00 (0: once it is below 0)",
    )
    settings.set_defaults(run=inventory_command(_set))

    show = actions.add_parser("show", parents=[common, formatted], help="one provider")
    show.add_argument("name", type=provider_name, help="the provider's short name")
    show.set_defaults(run=inventory_command(_show))

    listed = actions.add_parser("list", parents=[common, formatted], help="every provider")
    listed.set_defaults(run=inventory_command(_list))


async def _add(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    party = PartyRow(
        args.name,
        args.full_name,
        args.licence,
        args.legal_rep,
        args.id_number,
        now,
        low_balance_warning=args.low_balance_warning,
    )
    providers = await inventory.store.providers()
    if args.name not in {provider.name for provider in providers}:
        holder = next((p.name for p in providers if p.licence == args.licence), None)
        if holder is not None:  # one business, one provider: a second splits its numbers
            raise Refused(f"business licence {args.licence} is service provider {holder}'s")
    if not await inventory.store.add_party(party):
        raise Refused(f"a service provider {args.name} exists already")
    if args.format == "json":
        print_json(party_json(party, books.zone))
    else:
        account = provider_account(args.name)
        print(f"added service provider {args.name} ({args.full_name}); account {account}")
    return 0


async def _set(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    if not await inventory.store.set_provider_warning(args.name, args.low_balance_warning):
        raise Refused(f"no service provider {args.name} (hotline400 providers list)")
    print(f"{args.name}: low-balance warning under {args.low_balance_warning}")
    return 0


async def _show(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    store, zone = inventory.store, books.zone
    found = await store.providers(args.name)
    if not found:
        raise Refused(f"no service provider {args.name} (hotline400 providers list)")
    [provider] = found
    account = provider_account(provider.name)
    local_now = now.astimezone(zone)
    usage = await store.usage(account, f"{local_now:%Y-%m}", f"{local_now:%Y-%m-%d}")
    balance = usage.balance if usage.balance is not None else 0
    entries = (await store.ledger(account))[-SHOWN_ENTRIES:]
    subscribers = await store.subscribers(provider=provider.name)
    numbers = await inventory.search(now, holder=provider.name, limit=SHOWN_NUMBERS)
    if args.format == "json":
        print_json(
            party_json(provider, zone)
            | {
                "balance": f"{balance:.2f}",
                "ledger": [entry_json(entry, zone) for entry in entries],
                "subscribers": [party_json(s, zone) for s in subscribers],
                "numbers": [record_json(record, zone) for record in numbers],
            }
        )
        return 0
    print(f"{provider.name}  {provider.full_name}")
    for label, value in (
        ("licence", provider.licence),
        ("legal representative", provider.legal_representative),
        ("ID", provider.id_masked),
        ("since", local(provider.created_at, zone)),
        ("account", account),
        ("balance", f"{balance:.2f}"),
        ("low-balance warning", f"under {provider.low_balance_warning}"),
        ("subscribers", ", ".join(s.name for s in subscribers) or "none"),
    ):
        print(f"  {label:<22}{value}")
    if entries:
        print()
        print_table(
            ("at", "amount", "kind", "ref", "note"),
            [(local(e.at, zone), str(e.amount), e.kind.value, e.ref, e.note) for e in entries],
        )
    if numbers:
        print()
        print_table(RECORD_HEADER, [record_row(record, zone) for record in numbers])
    return 0


async def _list(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    providers = await inventory.store.providers()
    if args.format == "json":
        print_json([party_json(provider, books.zone) for provider in providers])
    elif providers:
        print_table(
            ("name", "full name", "licence", "since", "warning under"),
            [
                (
                    p.name,
                    p.full_name,
                    p.licence,
                    local(p.created_at, books.zone),
                    str(p.low_balance_warning),
                )
                for p in providers
            ],
        )
    else:
        print("no service provider yet (hotline400 providers add)")
    return 0
