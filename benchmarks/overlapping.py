"""What ``aioner-tag --overlapping`` costs and what it recovers, on BioRED test, side by side in one run.

    python -m benchmarks.overlapping --model runs/repro/cpu/aioner-s0.1-BioREDall   # -> results/overlapping.json

The model must be an AIONER model trained with the single-type tasks (the AIO recipe). Both
runs tag the same 100 BioRED-test abstracts with ``aioner.tagging.DocumentTagger`` (the CLI's
engine): with task ``ALL`` (one flat layer), with ``--overlapping`` (= ``nested``: the ALL pass
plus the single-type passes' entities that overlap another type's) and with ``--overlapping
union`` (every single-type pass's entities). Reported for each: seconds, strict and relaxed P/R/F1 against
BioRED's gold (which is flat:
no BioRED mention overlaps another; results/corpora.json, overlap_dropped 0), the entities that overlap
an entity of another type (what a flat layer cannot hold), and the gold mentions each finds
that the other misses.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from aioner.checkpoint import load_checkpoint
from aioner.prediction import corpus_documents, entity_tuples
from aioner.scoring import score_entities
from aioner.tagging import DocumentTagger
from benchmarks.common import command, machine, now, pct, write_result
from dataset_scripts.documents import Document, Passage
from pipeline_aioner import AIONERTagger


def cross_type_overlaps(entities: list[dict]) -> int:
    """Entities that overlap (nest in, contain or cross) an entity of another type."""
    count = 0
    for e in entities:
        if any(
            o is not e and o["type"] != e["type"] and o["start"] < e["end"] and e["start"] < o["end"] for o in entities
        ):
            count += 1
    return count


def run(tagger: DocumentTagger, docs: list[Document]) -> tuple[float, list[list[dict]]]:
    tagger.tag(docs[:3])  # warm-up
    start = time.perf_counter()
    out = tagger.tag(docs)
    return time.perf_counter() - start, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.overlapping", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/repro/cpu/aioner-s0.1-BioREDall")
    ap.add_argument("--corpus", default="BioRED")
    ap.add_argument("--out", default="results/overlapping.json")
    ap.add_argument("--limit", type=int, help="only the first N documents (a smoke run)")
    args = ap.parse_args(argv)

    model, tokenizer = load_checkpoint(args.model)
    model.eval()
    engine = AIONERTagger(model, tokenizer)
    texts, passages, gold = corpus_documents(args.corpus)
    if args.limit:
        texts, passages = texts[: args.limit], passages[: args.limit]
        gold = [g for g in gold if int(g[0]) < args.limit]
    docs = [Document(str(i), [Passage(s, t[s:e]) for s, e in ps], []) for i, (t, ps) in enumerate(zip(texts, passages))]
    ids = [d.id for d in docs]
    result = {
        "command": command("overlapping", argv),
        "machine": machine(),
        "date": now(),
        "model": args.model,
        "corpus": f"{args.corpus} test",
        "documents": len(docs),
    }
    found = {}
    for name, overlapping in (("flat_ALL", None), ("nested", "nested"), ("union", "union")):
        tagger = DocumentTagger(engine, "ALL", overlapping)
        seconds, out = run(tagger, docs)
        pred = entity_tuples(out)  # documents keyed by position, as the gold and docs are
        found[name] = set(pred) & set(gold)
        strict = score_entities(gold, pred, "strict", documents=ids)
        relaxed = score_entities(gold, pred, "relaxed", documents=ids)
        result[name] = {
            "passes": tagger.tasks,
            "seconds": round(seconds, 2),
            "docs_per_s": round(len(docs) / seconds, 2),
            "entities": len(pred),
            "cross_type_overlapping_entities": sum(cross_type_overlaps(e) for e in out),
            "strict": {k: pct(strict["overall"][k]) for k in ("precision", "recall", "f1")},
            "relaxed_f1": pct(relaxed["overall"]["f1"]),
            "strict_per_type_f1": {t: pct(v["f1"]) for t, v in strict["per_type"].items()},
        }
        print(name, json.dumps(result[name]), flush=True)
    for mode in ("nested", "union"):
        result[f"{mode}_cost_ratio"] = round(result[mode]["seconds"] / result["flat_ALL"]["seconds"], 2)
        result[f"gold_found_only_by_{mode}"] = len(found[mode] - found["flat_ALL"])
        result[f"gold_found_only_by_flat_ALL_not_{mode}"] = len(found["flat_ALL"] - found[mode])
    result["gold_mentions"] = len(gold)
    result["torch_threads"] = torch.get_num_threads()
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
