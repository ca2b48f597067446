"""Whether a 400 number someone typed is one the back office knows, or a typo.

A number is known when a plan or tariffs.yaml names it (`configured`) or the inventory
holds it: one taken through `numbers apply` before tariffs.yaml gave it an account owes
its opening and selection fees all the same. Commands and the console refuse any other
as a typo, rather than show it as an empty account or report.
"""

from __future__ import annotations

from collections.abc import Collection

from router.storage.protocol import Store


async def is_known_number(number: str, configured: Collection[str], store: Store) -> bool:
    return number in configured or await store.number_record(number) is not None
