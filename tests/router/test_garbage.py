"""The serving daemon's garbage collector: what it loaded frozen, young collections spaced."""

import gc
from collections.abc import Iterator

import pytest

from router.garbage import YOUNG_THRESHOLD, settle_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settling_freezes_what_was_loaded_and_spaces_young_collections() -> None:
    loaded = {"plans": ["4000000001"]}
    settle_garbage_collector()
    assert all(collectable is not loaded for collectable in gc.get_objects())  # frozen
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    made_later = {"call": ["1795400000.1"]}
    assert any(collectable is made_later for collectable in gc.get_objects())
