"""The JSON Schema of plan files, generated from the Plan model that validates them.

Editors use config/schema/plan.schema.json to complete and check plans; generating it from
the model keeps the two from drifting (a test compares the file with this output).
Regenerate with: python -m dialplan.schema > config/schema/plan.schema.json
"""

from __future__ import annotations

import json
from typing import Any

from dialplan.plan import REPEAT, Plan

SCHEMA_ID = "https://hotline400.example/schema/plan.schema.json"


def plan_schema() -> dict[str, Any]:
    schema = Plan.model_json_schema()
    # A menu option may also be written as the word `repeat` (Menu reads it as {repeat: true}).
    options = schema["$defs"]["Menu"]["properties"]["options"]
    options["additionalProperties"] = {
        "anyOf": [options["additionalProperties"], {"const": REPEAT}]
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def plan_schema_text() -> str:
    return json.dumps(plan_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(plan_schema_text(), end="")
