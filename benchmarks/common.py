"""What every benchmark shares: the repository root, the machine, date and command of a run, its result
file, percentages, paths as shown in commands, and running the project's scripts (train.py, ...).

Benchmarks run as modules from the repository root (``python -m benchmarks.<name>``), so they import
the project as installed or checked out, without editing ``sys.path``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from aioner.atomic_files import write_text
from aioner.training import describe_machine as machine  # noqa: F401  (re-exported: one description everywhere)

REPO = Path(__file__).resolve().parents[1]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command(name: str, argv=None) -> str:
    """How benchmark ``name`` was run, as a command to paste: ``python -m benchmarks.<name> ARGS``
    (``argv``: the arguments given to its ``main``; None: this process's command line)."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return " ".join(["python", "-m", f"benchmarks.{name}", *([shlex.join(args)] if args else [])])


def write_result(path, result: dict) -> None:
    """``results/<name>.json``: indented, UTF-8, ending in a newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(result, indent=1, ensure_ascii=False) + "\n")


def pct(x: float | None) -> float | None:
    """A fraction as a percentage with two decimals (None stays None)."""
    return None if x is None else round(100 * x, 2)


def f1_fields(scores: dict) -> dict:
    """The F1 fields (%) of a system's entry in a results file, from ``aioner.evaluation.score_predictions``:
    strict overall F1, precision, recall and F1 per type, then relaxed overall F1."""
    strict = scores["strict"]
    return {
        "overall_f1": pct(strict["overall"]["f1"]),
        "precision": pct(strict["overall"]["precision"]),
        "recall": pct(strict["overall"]["recall"]),
        "per_type_f1": {t: pct(s["f1"]) for t, s in strict["per_type"].items()},
        "relaxed_overall_f1": pct(scores["relaxed"]["overall"]["f1"]),
    }


def training_seconds(results: dict) -> float | None:
    """A train.py run's training seconds from its ``results.json``, summed over every process that trained
    it: a run resumed across sessions counts each session's epochs, not just the last process's wall time
    (``seconds``). Dev evaluation is not training time. Files written before train.py recorded
    ``train_seconds`` give the larger of their epochs' seconds (a resumed run's epochs outlast its last
    process) and ``seconds`` (otherwise the process covered every epoch, and GERBERA's first stage, which
    is not in the history)."""
    if results.get("train_seconds") is not None:
        return results["train_seconds"]
    epochs = [h["train_seconds"] for h in results.get("history") or [] if h.get("train_seconds") is not None]
    return max(round(sum(epochs), 1), results.get("seconds") or 0) if epochs else results.get("seconds")


def root_path(p) -> Path:
    """A folder given on the command line: relative ones are taken from the repository root."""
    path = Path(p)
    return path if path.is_absolute() else REPO / path


def shown(path: Path) -> str:
    """A path as written in commands: relative to the repository root when inside it."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def run_python(args: list[str]) -> None:
    """``python ARGS`` in the repository root (train.py, pretrain_mlm.py, ...); a failure ends the benchmark."""
    done = subprocess.run([sys.executable, *args], cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed (exit {done.returncode}): python {shlex.join(args)}")
