"""What tidying predicted edges does (``pipeline_aioner.tidy_span``): each model tags each split once,
and its entities are read with and without tidying, side by side.

    python -m benchmarks.tidy_edges --runs runs/repro/cpu/single-BioRED-mpnet --corpora BioRED --splits dev test

Tidying drops a bare separator or unmatched bracket at a span's edge ("stem cell factor (") and moves a
start glued inside a word to the word's start ("-801" of "MK-801"). The rule was written from BioRED
test errors, so dev is the check that it was not fitted to them. Results: ``results/tidy_edges_cpu.json``,
strict F1 (%) per run, corpus and split, with the per-document Wilcoxon test of tidied against raw.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from aioner.evaluation import score_predictions
from aioner.prediction import corpus_task, predict_corpus
from aioner.significance import wilcoxon_test
from aioner_scheme import is_trained
from benchmarks.common import command, machine, now, pct, root_path, shown, write_result
from benchmarks.reproduce import tagger_for
from dataset_scripts.corpora import CorpusUnavailableError


def compare(tagger, corpus: str, split: str) -> dict:
    """Strict F1 of one tagging of ``corpus``' ``split``, raw and tidied."""
    labelled = []
    label_windows = tagger.label_windows

    def recorded(wins, task):  # the forward pass, kept for the raw reading
        labelled.extend(label_windows(wins, task))
        return labelled

    tagger.label_windows = recorded
    try:
        tidied = predict_corpus(tagger, corpus, split)
    finally:
        del tagger.label_windows  # the class's method again
    tagger.tidy_edges = False
    raw = dataclasses.replace(tidied, predicted=tagger.collect(tidied.texts, labelled))
    tagger.tidy_edges = True
    f1 = [pct(score_predictions(p)["strict"]["overall"]["f1"]) for p in (raw, tidied)]
    changed = set(tidied.entities()) - set(raw.entities())
    gold = set(raw.gold)
    return {
        "documents": len(raw.texts),
        "f1_raw": f1[0],
        "f1_tidied": f1[1],
        "delta": round(f1[1] - f1[0], 2),
        "entities_changed": len(changed),
        "changed_to_gold": len(changed & gold),
        "changed_from_gold": len(gold & (set(raw.entities()) - set(tidied.entities()))),
        "wilcoxon": wilcoxon_test(raw.gold, tidied.entities(), raw.entities(), documents=raw.ids),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tidy_edges", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run folders of trained models")
    ap.add_argument("--corpora", nargs="+", default=["BioRED"])
    ap.add_argument("--splits", nargs="+", default=["dev", "test"])
    ap.add_argument("--output", default="results/tidy_edges_cpu.json")
    args = ap.parse_args(argv)
    start, rows = time.time(), {}
    for run in args.runs:
        folder = root_path(run)
        tagger = tagger_for(folder)
        for corpus in args.corpora:
            if not is_trained(corpus_task(tagger, corpus), tagger.trained_tasks):
                continue  # a single-corpus model is scored on its own corpus only
            for split in args.splits:
                key = f"{shown(folder)} / {corpus} / {split}"
                try:
                    rows[key] = row = compare(tagger, corpus, split)
                except CorpusUnavailableError as err:  # NLM-Chem's train/dev file, offline
                    rows[key] = {"unavailable": str(err)}
                    print(f"{key}: unavailable ({err})")
                    continue
                print(f"{shown(folder)} / {corpus} / {split}: {row['f1_raw']} -> {row['f1_tidied']} ({row['delta']:+})")
    write_result(
        root_path(args.output),
        {
            "command": command("tidy_edges", argv),
            "machine": machine(),
            "date": now(),
            "seconds": round(time.time() - start, 1),
            "note": "strict F1 (%) of one tagging read raw and with pipeline_aioner.tidy_span; changed_to_gold: "
            "tidied entities that are gold and were not before; changed_from_gold: gold entities that tidying "
            "lost. wilcoxon: per-document F1, tidied against raw",
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
