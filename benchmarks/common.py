"""What every benchmark shares: the repository root, the machine and date of a run, writing its result.

Benchmarks run as modules from the repository root (``python -m benchmarks.<name>``), so they import
the project as installed or checked out, without editing ``sys.path``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from aioner.training import describe_machine as machine  # noqa: F401  (re-exported: one description everywhere)

REPO = Path(__file__).resolve().parents[1]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_result(path, result: dict) -> None:
    """``results/<name>.json``: indented, UTF-8, ending in a newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
