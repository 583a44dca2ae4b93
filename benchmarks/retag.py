"""What a change to the tagging code does to trained models: their cached test-set predictions against a
fresh tagging by today's code, side by side.

    python -m benchmarks.retag --name final_period \
        --runs runs/repro/cpu/single-BioRED runs/repro/cpu/aioner-clean --corpora BioRED tmVar3

``benchmarks.reproduce`` caches each model's predictions in ``<run>/repro_eval/<corpus>.json`` with a
digest of the tagging code (``reproduce.TAGGING_CODE``: words, windows, forward pass, decoding). For
each run and corpus this reads that cache, whatever code made it, tags the test set again
(``reproduce.tag_test_set``, which replaces the cache) and reports strict F1 before and after, the
per-document Wilcoxon test and the documents whose F1 changed. A run without a cache of a corpus is
skipped. Results: ``results/retag_<name>.json``.
"""

from __future__ import annotations

import argparse
import time

from aioner.significance import wilcoxon_test
from benchmarks.common import command, machine, now, pct, root_path, shown, write_result
from benchmarks.reproduce import gold_documents, read_cache, tag_test_set, tagging_code


def compare(folder, corpus: str) -> dict | None:
    """The cached prediction of ``corpus`` by the model in ``folder`` against today's tagging of it."""
    before = read_cache(folder, corpus, any_code=True)
    if before is None:
        return None
    after = tag_test_set(folder, corpus)
    texts, _, gold = gold_documents(corpus)
    ids = [str(i) for i in range(len(texts))]
    fresh, cached = ([tuple(e) for e in r["predictions"]] for r in (after, before))
    test = wilcoxon_test(gold, fresh, cached, documents=ids)
    f1 = [pct(r["strict"]["overall"]["f1"]) for r in (before, after)]
    return {
        "f1_before": f1[0],
        "f1_after": f1[1],
        "delta": round(f1[1] - f1[0], 2),
        "wilcoxon": test,
        "entities_gone_or_new": len(set(fresh) ^ set(cached)),
        "tagging_code_before": before.get("tagging_code"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.retag", description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, help="the change measured: results/retag_<name>.json")
    ap.add_argument("--runs", nargs="+", required=True, help="run folders of benchmarks.reproduce")
    ap.add_argument("--corpora", nargs="+", default=["BioRED"], help="test sets to tag again, where cached")
    ap.add_argument("--results_dir", default="results")
    args = ap.parse_args(argv)
    start, rows = time.time(), {}
    for run in args.runs:
        folder = root_path(run)
        for corpus in args.corpora:
            row = compare(folder, corpus)
            if row is not None:
                rows[f"{shown(folder)} / {corpus}"] = row
                print(f"{shown(folder)} / {corpus}: {row['f1_before']} -> {row['f1_after']} ({row['delta']:+})")
    write_result(
        root_path(args.results_dir) / f"retag_{args.name}.json",
        {
            "command": command("retag", argv),
            "machine": machine(),
            "date": now(),
            "seconds": round(time.time() - start, 1),
            "tagging_code_after": tagging_code(),
            "note": "strict F1 (%) on each test set with the corpus' task, cached (before) and tagged again by "
            "this checkout (after); the models are not retrained. wilcoxon: per-document F1, after against "
            "before. tagging_code: a digest of benchmarks.reproduce.TAGGING_CODE (None: cached before digests)",
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
