"""The JSON Schema editors use agrees with the model that validates plans."""

import json

import jsonschema
import pytest
import yaml

from dialplan.errors import ConfigError
from dialplan.plan_loader import parse_plan
from dialplan.schema import plan_schema, plan_schema_text
from tests.conftest import REPO

ROOT = REPO
SCHEMA_FILE = ROOT / "config" / "schema" / "plan.schema.json"


def test_the_shipped_schema_is_the_one_the_model_generates() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == plan_schema_text(), (
        "regenerate: python -m dialplan.schema > config/schema/plan.schema.json"
    )


def schema_accepts(document: dict) -> bool:
    validator = jsonschema.Draft202012Validator(plan_schema())
    return not list(validator.iter_errors(json.loads(json.dumps(document, default=str))))


def model_accepts(document: dict) -> bool:
    try:
        parse_plan(f"{document.get('number', 'x')}.yaml", yaml.safe_dump(document))
    except ConfigError:
        return False
    return True


def test_every_example_plan_is_valid_against_the_schema() -> None:
    for path in sorted((ROOT / "config" / "plans").glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert schema_accepts(document), path


BASE = {"number": "4006001234", "name": "Test Co.", "default": {"target": "13900000001"}}


@pytest.mark.parametrize(
    "document",
    [
        BASE,
        {**BASE, "status": "suspended"},
        {**BASE, "rules": [{"name": "a", "when": {"days": ["mon"]}, "target": "13900000001"}]},
        {**BASE, "forwarding": {"on_busy": ["13900000002"], "busy_statuses": ["BUSY"]}},
        {**BASE, "extra": 1},
        {**BASE, "status": "sleeping"},
        {**BASE, "ring_timeout": 1},
        {**BASE, "rules": [{"name": "a", "when": {"days": ["someday"]}, "target": "1390000"}]},
        {**BASE, "screening": {"mode": "block"}},
        {"number": "4006001234", "name": "No default"},
        {**BASE, "number": "12345"},
        {**BASE, "forwarding": {"busy_statuses": ["ANSWER"]}},
    ],
)
def test_schema_and_model_agree_on_structure(document: dict) -> None:
    assert schema_accepts(document) == model_accepts(document)
