"""What each task of a model is worth, and what bf16 tagging costs in F1 (issue 15, items 3 and 5).

    python -m benchmarks.task_quality --model runs/quickstart --out results/task_quality_quickstart_cpu.json

For BioRED test (task ALL) and each external corpus' test set (its single-type task: Gene, Disease,
Chemical, Species, Variant, CellLine), strict F1 of the model:

* with the corpus' own task, in fp32 and in bf16 (autocast), side by side: bf16 could be the
  default only if the two differed by at most 0.1 F1 everywhere;
* with the ALL task, its predictions of the corpus' types only (bf16 where native, else fp32): what the
  flat pass finds of that corpus' entities, next to what the single-type pass (used by
  ``--overlapping``) finds. Each corpus follows its own guideline, so ALL (trained on BioRED's) can
  score lower on it even where it finds the same things.

A task the model was not trained on is listed as untrained and not tagged (the tagger refuses it).
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import command, machine, now, pct, write_result
from dataset_scripts.corpora import AIO_TRAINING_CORPORA

CORPORA = tuple(AIO_TRAINING_CORPORA)  # BioRED and the ten external AIONER training corpora


def strict_f1(tagger, corpus: str, task: str, types: set[str] | None = None) -> tuple[float, float]:
    """(strict F1, tagging seconds) of ``tagger`` on the corpus' test set; ``types``: keep only these."""
    from aioner.evaluation import score_predictions
    from aioner.prediction import predict_corpus

    prediction = predict_corpus(tagger, corpus, "test", task)
    score = score_predictions(prediction, types)["strict"]
    return pct(score["overall"]["f1"]), round(prediction.seconds, 1)


def main():
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.task_quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpora", nargs="+", default=list(CORPORA))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from aioner.checkpoint import load_checkpoint
    from aioner_scheme import is_trained
    from dataset_scripts.corpora import get_corpus
    from pipeline_aioner import AIONERTagger, default_autocast_dtype

    model, tokenizer = load_checkpoint(args.model)
    taggers = {
        "fp32": AIONERTagger(model, tokenizer, autocast_dtype=None),
        "bf16": AIONERTagger(model, tokenizer, autocast_dtype=torch.bfloat16),
    }
    auto = "bf16" if default_autocast_dtype(torch.device("cpu")) is not None else "fp32"  # for the ALL rows
    record = model.config.trained_tasks
    rows, start = [], time.time()
    for corpus in args.corpora:
        task = get_corpus(corpus).task
        row = {"corpus": corpus, "task": task, "trained": is_trained(task, record)}
        if row["trained"]:
            for name, tagger in taggers.items():
                row[f"f1_{name}"], row[f"seconds_{name}"] = strict_f1(tagger, corpus, task)
            row["bf16_minus_fp32"] = round(row["f1_bf16"] - row["f1_fp32"], 2)
        if task != "ALL" and is_trained("ALL", record):
            types = set(taggers["fp32"].scheme.tasks[task])
            row["f1_all_task"], _ = strict_f1(taggers[auto], corpus, "ALL", types)
        rows.append(row)
        print(row, flush=True)
    scored = [r for r in rows if r["trained"]]
    result = {
        "command": command("task_quality"),
        "machine": machine(),
        "date": now(),
        "model": args.model,
        "all_task_precision": auto,
        "trained_tasks": sorted(record) if record else None,
        "rows": rows,
        "max_abs_bf16_minus_fp32": max((abs(r["bf16_minus_fp32"]) for r in scored), default=None),
        "bf16_within_0.1": all(abs(r["bf16_minus_fp32"]) <= 0.1 for r in scored),
        "bf16_loses_at_most_0.1": all(r["bf16_minus_fp32"] >= -0.1 for r in scored),
        "seconds_fp32": round(sum(r["seconds_fp32"] for r in scored), 1),
        "seconds_bf16": round(sum(r["seconds_bf16"] for r in scored), 1),
        "seconds": round(time.time() - start, 1),
        "notes": "strict F1 on each test set; f1_fp32/f1_bf16: the corpus' own task; f1_all_task: the ALL "
        f"task in {auto} (bf16 where the CPU has it natively), its predictions of the corpus' types only; "
        "NLM-Chem's training file is not held here: its test set is tagged by the Chemical task as "
        "trained on the other Chemical corpora (BC5CDR-Chemical) only",
    }
    write_result(args.out, result)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
