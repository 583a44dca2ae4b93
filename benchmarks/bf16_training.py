"""bf16 training on CPU against fp32: BioRED test F1 and training tokens/s, two seeds each.

    python -m benchmarks.bf16_training                       # the Table 2 baseline recipe, seeds 0 and 1
    python -m benchmarks.bf16_training --seeds 0 1 2 --epochs 3 --runs_dir runs/bf16

Each (precision, seed) is one ``train.py --recipe single --corpora BioRED`` run in
``<runs_dir>/<precision>-s<seed>``, resumable (``--save_steps``); a finished run (its
``results.json``) is reused, so an interrupted benchmark picks up where it stopped. The
runs alternate precisions (fp32 s0, bf16 s0, fp32 s1, ...) so that drift in the machine's
load hits both alike. Tokens/s is train.py's own count: non-padding sub-words of the
training batches over the seconds of the training steps (dev scoring excluded).

The verdict: bf16 is fit for the CPU experiments when the gap between the precisions' mean
F1 is within the spread of the seeds of one precision (max - min over seeds).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, command, machine, now, pct, run_python, write_result


def run_one(precision: str, seed: int, args) -> dict:
    out = Path(args.runs_dir) / f"{precision}-s{seed}"
    cmd = [
        "train.py",
        "--recipe",
        "single",
        "--corpora",
        "BioRED",
        "--epochs",
        str(args.epochs),
        "--patience",
        "5",
        "--batch_size",
        "32",
        "--seed",
        str(seed),
        "--save_steps",
        "50",
        "--mixed_precision",
        "bf16" if precision == "bf16" else "no",
        "--output_dir",
        str(out),
    ]
    if not (REPO / out / "results.json").exists():
        resume = ["--resume_from_checkpoint", "latest"] if (REPO / out).exists() else []
        print(f"[bf16_training] python {shlex.join(cmd + resume)}", flush=True)
        run_python(cmd + resume)
    info = json.loads((REPO / out / "results.json").read_text())
    history = info["history"]
    tokens = sum(h["train_tokens"] for h in history)
    seconds = sum(h["train_seconds"] for h in history)
    strict = info["test"][0]["strict"]
    return {
        "precision": precision,
        "seed": seed,
        "run": str(out),
        "command": "python " + shlex.join(cmd),
        "test_f1": pct(strict["overall"]["f1"]),
        "per_type_f1": {t: pct(s["f1"]) for t, s in strict["per_type"].items()},
        "best_dev_f1": pct(info["best_dev_f1"]),
        "epochs": len(history),
        "train_tokens": tokens,
        "train_seconds": round(seconds, 1),
        "train_tokens_per_s": round(tokens / seconds, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bf16_training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--runs_dir", default="runs/bf16")
    ap.add_argument("--out", default="results/bf16_training_cpu.json")
    args = ap.parse_args(argv)
    start = time.time()
    runs = [run_one(p, s, args) for s in args.seeds for p in ("fp32", "bf16")]
    summary = {}
    for p in ("fp32", "bf16"):
        mine = [r for r in runs if r["precision"] == p]
        f1 = [r["test_f1"] for r in mine]
        summary[p] = {
            "test_f1": f1,
            "mean_test_f1": round(statistics.mean(f1), 2),
            "seed_spread": round(max(f1) - min(f1), 2),
            "train_tokens_per_s": round(
                sum(r["train_tokens"] for r in mine) / sum(r["train_seconds"] for r in mine), 1
            ),
        }
    gap = round(summary["bf16"]["mean_test_f1"] - summary["fp32"]["mean_test_f1"], 2)
    spread = max(summary["fp32"]["seed_spread"], summary["bf16"]["seed_spread"])
    result = {
        "command": command("bf16_training", argv),
        "machine": machine(),
        "date": now(),
        "recipe": f"Table 2 baseline: train.py --recipe single --corpora BioRED, {args.epochs} epochs, batch 32, "
        "embedded all-MiniLM-L6-v2, CRF; strict F1 (%) on BioRED test (100 abstracts, task ALL)",
        "runs": runs,
        "summary": summary,
        "bf16_minus_fp32_mean_f1": gap,
        "largest_seed_spread": spread,
        "speedup_bf16_over_fp32": round(
            summary["bf16"]["train_tokens_per_s"] / summary["fp32"]["train_tokens_per_s"], 2
        ),
        "bf16_within_seed_spread": abs(gap) <= spread,
        "seconds": round(time.time() - start, 1),
        "note": "bf16 = Accelerate mixed precision (torch.autocast bf16) over fp32 master weights; emissions and "
        "the CRF in fp32. Runs alternate precisions; tokens/s is train.py's count over training steps only.",
    }
    write_result(REPO / args.out, result)
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("summary", "bf16_minus_fp32_mean_f1", "speedup_bf16_over_fp32", "bf16_within_seed_spread")
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
