"""Switching a feature edits the one line of tariffs.yaml it is on, whatever the account's
block holds, and refuses a layout it cannot follow rather than guess."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from console.feature_switching import CannotSwitch, switch_feature, switched_text
from rating.tariff_loader import parse_tariffs
from router.cli import main

DAY = date(2026, 11, 24)
HEAD = """caller_tariffs:
  fixed: {per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
  ivr: 200.00
packages:
  basic: {monthly_rent: 50.00, nationwide: {per_seconds: 60, charge: 0.20}}
"""


def _features(text: str, number: str = "4008207788") -> dict[str, date]:
    return parse_tariffs("tariffs.yaml", text).accounts[number].features


@pytest.mark.parametrize(
    "account",
    [
        '  "4008207788":\n    package: basic\n',
        '  "4008207788":   # a comment\n    package: basic\n    features: {}\n',
        "  '4008207788':\n    package: basic\n    features:\n      recording: 2026-01-05\n\n",
    ],
    ids=["no features", "empty features", "other features"],
)
def test_a_feature_goes_on_and_off_and_the_file_returns_to_what_it_was(account: str) -> None:
    text = HEAD + "accounts:\n" + account + '  "4001234567":\n    package: basic\n'
    on = switched_text(text, "4008207788", "ivr", DAY)
    assert _features(on)["ivr"] == DAY
    assert _features(on, "4001234567") == {}
    off = switched_text(on, "4008207788", "ivr", None)
    assert "ivr" not in _features(off)
    assert _features(off) == _features(text)


def test_a_layout_it_cannot_follow_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    text = HEAD + 'accounts: {"4008207788": {package: basic}}\n'
    (tmp_path / "tariffs.yaml").write_text(text, encoding="utf-8")
    tariffs = parse_tariffs("tariffs.yaml", text)
    with pytest.raises(CannotSwitch):
        switch_feature(tmp_path, tariffs, "4008207788", "ivr", DAY)
    assert (tmp_path / "tariffs.yaml").read_text(encoding="utf-8") == text


def test_a_file_saved_in_gbk_since_it_loaded_is_refused_in_the_words_of_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEAD + 'accounts:\n  "4008207788":\n    package: basic\n'
    tariffs = parse_tariffs("tariffs.yaml", text)
    path = tmp_path / "tariffs.yaml"
    path.write_text(text.replace("  ivr: 200.00", "  ivr: 200.00  # 开通费"), encoding="gbk")
    saved = path.read_bytes()
    with pytest.raises(CannotSwitch) as refused:
        switch_feature(tmp_path, tariffs, "4008207788", "ivr", DAY)
    assert main(["check", str(path)]) == 1
    assert str(refused.value) == capsys.readouterr().out.splitlines()[0]
    assert str(refused.value).startswith(f"{path}:7 (file): not UTF-8 text: byte 0xbf at column 18")
    assert path.read_bytes() == saved


def test_switching_a_feature_off_keeps_the_comments_about_the_next_one() -> None:
    text = HEAD + (
        "accounts:\n"
        '  "4008207788":     # the shop\n'
        "    features:\n"
        "      ivr: 2025-06-01\n"
        "      # recording since the June contract\n"
        "      recording: 2025-06-01\n"
        "    package: basic\n"
    )
    off = switched_text(text, "4008207788", "ivr", None)
    assert off == text.replace("      ivr: 2025-06-01\n", "")


@pytest.mark.parametrize("features", ["features:", "features: {}"])
def test_the_comment_on_the_features_line_stays_as_features_go_on_and_off(features: str) -> None:
    text = HEAD + (
        "accounts:\n"
        '  "4008207788":\n'
        f"    {features}   # signed with the 2026 contract, see folder 17\n"
        + ("      recording: 2026-01-05\n" if features == "features:" else "")
        + "    package: basic\n"
    )
    on = switched_text(text, "4008207788", "ivr", DAY)
    assert "    features:   # signed with the 2026 contract, see folder 17\n" in on
    off = switched_text(on, "4008207788", "ivr", None)
    assert off == text
