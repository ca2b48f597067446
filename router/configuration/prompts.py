"""Every prompt a plan plays, looked up in Asterisk's sounds directory for each language the
plan uses (`hotline400 check` with `sounds_dir` in router.yaml).

A prompt that does not exist makes GET DATA answer -1 at once, the value a hang-up gives
(transcripts fact 20): a call would seem to end for no reason. Asterisk finds a prompt
`name` of language `lang` as `<sounds>/<lang>/<name>.<format>`, any format it can play.
"""

from __future__ import annotations

from pathlib import Path

from dialplan.errors import Problem
from dialplan.plan import Plan
from dialplan.yaml_source import read_yaml


def missing_prompts(plan: Plan, file: Path, sounds: Path) -> list[Problem]:
    """One problem per prompt and language without a sound file, at the prompt's line."""
    source = read_yaml(str(file), file.read_text(encoding="utf-8"))
    problems = []
    for path, prompt in plan.prompts():
        for language in plan.languages():
            folder = sounds / language
            if not any(folder.glob(f"{prompt}.*")):
                problems.append(
                    source.problem(
                        path,
                        f"prompt {prompt!r} has no sound file in language {language!r} "
                        f"({folder / prompt}.*): Asterisk would answer as if the caller hung up",
                    )
                )
    return problems
