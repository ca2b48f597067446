"""The CDR id of each AGI session (router.call.call_ids): the uniqueid for its first
session, `UNIQUEID~N` for the Nth, as long as the router remembers the uniqueid."""

from router.call.call_ids import CallIds


def test_the_first_session_of_a_uniqueid_is_keyed_by_it_and_each_repeat_apart() -> None:
    ids = CallIds()
    assert [ids.begin("1765000000.7") for _ in range(3)] == [
        ("1765000000.7", 1),
        ("1765000000.7~2", 2),
        ("1765000000.7~3", 3),
    ]


def test_a_session_ending_after_a_later_one_began_leaves_the_count_as_it_is() -> None:
    ids = CallIds()
    ids.begin("a")
    ids.begin("a")
    ids.ended("a", 2)
    ids.ended("a", 1)
    assert ids.begin("a") == ("a~3", 3)


def test_a_uniqueid_is_remembered_from_its_session_s_end_for_as_many_sessions_again() -> None:
    ids = CallIds(remembered=4)
    ids.begin("long")
    for n in range(8):  # the long call runs while eight others come and go
        ids.ended(ids.begin(f"short.{n}")[0], 1)
    ids.ended("long", 1)
    for n in range(3):
        ids.ended(ids.begin(f"after.{n}")[0], 1)
    assert ids.begin("long") == ("long~2", 2)


def test_a_uniqueid_unheard_of_for_twice_the_sessions_remembered_is_forgotten() -> None:
    ids = CallIds(remembered=4)
    ids.ended(ids.begin("old")[0], 1)
    for n in range(8):
        ids.ended(ids.begin(f"later.{n}")[0], 1)
    assert ids.begin("old") == ("old", 1)
