"""Results to JSON-ready data: dataclasses, enums, dates, timedeltas and non-finite floats."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any


def to_data(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return to_data(obj.item())
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_data(obj), indent=2, ensure_ascii=False, allow_nan=False)
