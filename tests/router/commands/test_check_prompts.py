"""`hotline400 check` with `sounds_dir` in router.yaml: every prompt a plan plays exists in
each language the plan uses (a missing prompt answers -1 like a hang-up, transcripts fact 20).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialplan.plan_loader import load_plan, load_plans
from router.cli import main
from router.configuration.prompts import missing_prompts
from tests.conftest import REPO

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The shipped configuration with a sounds directory holding every prompt it plays."""
    config = Path(shutil.copytree(REPO / "config", tmp_path / "config"))
    sounds = tmp_path / "sounds"
    plans, _ = load_plans(config / "plans")
    for plan in plans.values():
        for _, prompt in plan.prompts():
            for language in plan.languages():
                file = sounds / language / f"{prompt}.wav"
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(b"RIFF")
    with (config / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write(f"sounds_dir: {sounds}\n")
    return config


def check(capsys: Capture, config: Path) -> tuple[int, list[str]]:
    code = main(["check", "--config", str(config), "--today", "2026-06-01"])
    return code, capsys.readouterr().out.splitlines()


def test_every_prompt_found_in_every_language_passes(capsys: Capture, config_dir: Path) -> None:
    code, lines = check(capsys, config_dir)
    assert code == 0 and lines[-1].endswith(" file(s): ok"), lines


def test_the_web_shop_menu_is_checked_in_chinese_and_in_the_english_its_option_chooses(
    capsys: Capture, config_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "sounds" / "en" / "lanhua" / "main-menu.wav").unlink()
    code, lines = check(capsys, config_dir)
    plan = config_dir / "plans" / "4008207788.yaml"
    lines_of_plan = plan.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines_of_plan) if "prompt: lanhua/main-menu" in text)
    assert code == 1
    assert lines[:-1] == [
        f"{plan}:{line + 1} menus.main.prompt: prompt 'lanhua/main-menu' has no sound file in "
        f"language 'en' ({tmp_path}/sounds/en/lanhua/main-menu.*): Asterisk would answer as "
        "if the caller hung up",
    ]
    assert lines[-1].endswith(" file(s): 1 problem(s)")


def test_without_a_sounds_directory_prompts_are_not_looked_up(
    capsys: Capture, tmp_path: Path
) -> None:
    config = Path(shutil.copytree(REPO / "config", tmp_path / "plain"))
    code, lines = check(capsys, config)
    assert code == 0 and len(lines) == 1 and lines[0].endswith(" file(s): ok"), lines


def test_the_hold_queues_announcement_is_checked_too(tmp_path: Path) -> None:
    """It plays when no destination comes free in time: missing, the held caller would
    hear nothing at all before the call ends."""
    plan_file = tmp_path / "4006001234.yaml"
    plan_file.write_text(
        'number: "4006001234"\nname: Test Co.\n'
        "queue: {max_wait: 30, announcement: desk/all-busy}\n"
        'default: {target: {number: "13800000011", max_calls: 1}}\n',
        encoding="utf-8",
    )
    (tmp_path / "sounds" / "en").mkdir(parents=True)
    plan = load_plan(plan_file)
    problems = [str(p) for p in missing_prompts(plan, plan_file, tmp_path / "sounds")]
    assert problems == [
        f"{plan_file}:3 queue.announcement: prompt 'desk/all-busy' has no sound file in "
        f"language 'en' ({tmp_path}/sounds/en/desk/all-busy.*): Asterisk would answer as if "
        "the caller hung up"
    ]
