"""The JSON Schema of config/tariffs.yaml, generated from the Tariffs model that validates it.

Editors use config/schema/tariffs.schema.json to complete and check the file; generating it
from the model keeps the two from drifting (a test compares the file with this output).
Regenerate with: python -m rating.schema > config/schema/tariffs.schema.json
"""

from __future__ import annotations

import json
from typing import Any

from rating.tariff import Tariffs

SCHEMA_ID = "https://hotline400.example/schema/tariffs.schema.json"


def tariffs_schema() -> dict[str, Any]:
    schema = Tariffs.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def tariffs_schema_text() -> str:
    return json.dumps(tariffs_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(tariffs_schema_text(), end="")
