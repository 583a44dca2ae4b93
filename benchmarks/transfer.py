"""The transfer-learning framework's parts, measured on BioRED test: seed ensembles, gazetteers, BiLSTM head.

    python benchmarks/transfer.py                 # trains what is missing, scores, writes results/seed3.json
    python benchmarks/transfer.py --dry_run       # the train.py commands only

Models (one ``python train.py`` run each, all the Table 2 baseline recipe: BioRED only, all
of its training set, 3 epochs, batch 32, the embedded MiniLM):
* seeds 0, 1, 2 of the default head (seed 0 is ``benchmarks/reproduce.py table2 --scale cpu``'s
  baseline, reused when it exists);
* seed 0 with ``--head bilstm``.
Then, on the 100 BioRED test abstracts (task ALL, strict F1 as the paper scores it):
* each model alone, the ensemble of seeds 0+1 and of 0+1+2 (emissions averaged, one CRF
  decoding), with tagging seconds;
* the seed-0 model followed by a gazetteer built from the BioRED *training* split's mentions
  only (``Gazetteer.from_annotations``, min_precision 0.5), in recall, precision and both modes;
* the B/I/O per-class report (macro and weighted averages) of the main systems.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from aioner.encoders import DEFAULT_ENCODER  # noqa: E402

RECIPE = ["--recipe", "single", "--corpora", "BioRED", "--epochs", "3", "--patience", "5", "--batch_size", "32"]
TABLE2_BASELINE = "runs/repro/cpu/single-BioRED"  # reproduce.py table2 --scale cpu, seed 0


def runs(args) -> dict[str, tuple[Path, list[str]]]:
    """name -> (folder, train.py options)."""
    out = {}
    for i, seed in enumerate(args.seeds):
        folder = REPO / TABLE2_BASELINE if seed == 0 and (REPO / TABLE2_BASELINE / "results.json").exists() \
            else REPO / args.runs_dir / f"single-BioRED-seed{seed}"
        out[f"seed{seed}"] = (folder, RECIPE + ["--seed", str(seed)])
        if i == 1:  # trained before the third seed: the ensemble of two and the head compare first
            out["bilstm"] = (REPO / args.runs_dir / "single-BioRED-bilstm-seed0",
                             RECIPE + ["--head", "bilstm", "--seed", "0"])
    return out


def train(folder: Path, options: list[str], dry_run: bool) -> dict:
    rel = folder.relative_to(REPO)
    cmd = ["train.py", *options, "--eval_test", "--output_dir", str(rel)]
    if (folder / "results.json").exists():
        info = json.loads((folder / "results.json").read_text())
        print(f"[transfer] reusing {rel}", flush=True)
        return {"command": info["command"], "train_seconds": info["seconds"], "best_dev_f1": info["best_dev_f1"]}
    if folder.exists():
        cmd += ["--resume_from_checkpoint", "latest"]
    print("python " + shlex.join(cmd), flush=True)
    if dry_run:
        return {}
    done = subprocess.run([sys.executable, *cmd], cwd=REPO)
    if done.returncode:
        raise SystemExit(f"train.py failed ({done.returncode}): python {shlex.join(cmd)}")
    info = json.loads((folder / "results.json").read_text())
    return {"command": info["command"], "train_seconds": info["seconds"], "best_dev_f1": info["best_dev_f1"]}


class Fixed:
    """A tagger that returns predictions made earlier (to post-process them without re-tagging)."""

    def __init__(self, predicted, scheme):
        self.predicted, self.scheme = predicted, scheme

    def tag(self, texts, task="ALL", passages=None):
        return self.predicted


def summary(result: dict, gold, texts) -> dict:
    from aioner.evaluation import document_word_tags, per_class_report

    strict = result["strict"]
    pred = [(str(i), e["start"], e["end"], e["type"]) for i, ents in enumerate(result.pop("_predicted")) for e in ents]
    refs, preds = document_word_tags({str(i): t for i, t in enumerate(texts)}, gold, pred)
    bio = per_class_report(refs, preds)
    return {"overall_f1": pct(strict["overall"]["f1"]), "precision": pct(strict["overall"]["precision"]),
            "recall": pct(strict["overall"]["recall"]),
            "per_type_f1": {t: pct(s["f1"]) for t, s in strict["per_type"].items()},
            "relaxed_overall_f1": pct(result["relaxed"]["overall"]["f1"]),
            "tagging_seconds": result["tagging_seconds"],
            "per_class_bio": {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in s.items()}
                              if isinstance(s, dict) else round(s, 4) for k, s in bio.items()}}


def evaluate(tagger, corpus="BioRED") -> dict:
    from aioner.evaluation import evaluate_corpus
    from reproduce import Recorder

    rec = Recorder(tagger)
    result = evaluate_corpus(rec, corpus)
    result["_predicted"] = rec.predicted
    return result


def pct(x: float) -> float:
    return round(100 * x, 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs_dir", default="runs/seed3")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--min_precision", type=float, default=0.5, help="gazetteer term filter on the training split")
    ap.add_argument("--out", default="results/seed3.json")
    ap.add_argument("--dry_run", action="store_true")
    args = ap.parse_args(argv)

    from aioner.checkpoint import load_checkpoint
    from aioner.ensemble import AIONEREnsemble
    from aioner.evaluation import corpus_documents
    from aioner.gazetteer import Gazetteer, GazetteerTagger
    from pipeline_aioner import AIONERTagger
    from reproduce import machine

    start = time.time()
    plan = runs(args)
    trained = {name: train(folder, opts, args.dry_run) for name, (folder, opts) in plan.items()}
    if args.dry_run:
        return 0

    texts, _, gold = corpus_documents("BioRED", "test")
    models = {name: load_checkpoint(str(folder)) for name, (folder, _) in plan.items()}
    systems = {}
    for name, (model, tok) in models.items():
        print(f"[transfer] tagging BioRED test with {name}", flush=True)
        systems[name] = evaluate(AIONERTagger(model, tok))
    seeds = [f"seed{s}" for s in args.seeds]
    tok = models[seeds[0]][1]
    ensembles = {}
    for k in range(2, len(seeds) + 1):
        members = seeds[:k]
        print(f"[transfer] tagging BioRED test with the ensemble {'+'.join(members)}", flush=True)
        ensembles["+".join(members)] = evaluate(AIONERTagger(AIONEREnsemble([models[m][0] for m in members]).eval(), tok))

    train_texts, _, train_gold = corpus_documents("BioRED", "train")
    gazetteer = Gazetteer.from_annotations(train_texts, train_gold, min_precision=args.min_precision)
    base_pred = systems[seeds[0]]["_predicted"]
    scheme = AIONERTagger(*models[seeds[0]]).scheme
    gazetteered = {}
    for mode, min_score in (("recall", 1.0), ("precision", 1.0), ("precision", 0.9), ("both", 1.0)):
        key = mode if min_score == 1.0 else f"{mode} (score < {min_score})"
        gazetteered[key] = evaluate(GazetteerTagger(Fixed(base_pred, scheme), gazetteer, mode, min_score))
        gazetteered[key]["tagging_seconds"] = None  # post-processing of seed 0's predictions

    s = {name: summary(r, gold, texts) for name, r in systems.items()}
    e = {name: summary(r, gold, texts) for name, r in ensembles.items()}
    g = {name: summary(r, gold, texts) for name, r in gazetteered.items()}
    alone = [s[m]["overall_f1"] for m in seeds]
    base = s[seeds[0]]
    result = {
        "command": "python benchmarks/transfer.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": DEFAULT_ENCODER, "test_set": "BioRED test (100 abstracts), task ALL, strict F1 (%)",
        "models": {name: {**s[name], **trained[name], "run": str(plan[name][0].relative_to(REPO))} for name in plan},
        "ensemble": {name: {**r, "members": name.split("+"),
                            "delta_vs_mean_member": round(r["overall_f1"] - sum(alone[:len(name.split('+'))])
                                                          / len(name.split("+")), 2),
                            "delta_vs_best_member": round(r["overall_f1"] - max(alone[:len(name.split('+'))]), 2),
                            "time_ratio_vs_one_model": round(r["tagging_seconds"] / base["tagging_seconds"], 2)}
                     for name, r in e.items()},
        "gazetteer": {"entries": len(gazetteer), "built_from": "BioRED training split mentions only "
                      f"(Gazetteer.from_annotations, min_precision {args.min_precision})", "applied_to": seeds[0],
                      "modes": {name: {**r, "delta_overall_f1": round(r["overall_f1"] - base["overall_f1"], 2)}
                                for name, r in g.items()}},
        "bilstm": {**s["bilstm"], "delta_vs_dense_seed0": round(s["bilstm"]["overall_f1"] - base["overall_f1"], 2),
                   "train_seconds": trained["bilstm"].get("train_seconds"),
                   "dense_train_seconds": trained[seeds[0]].get("train_seconds")},
        "seconds": round(time.time() - start, 1),
    }
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"written: {args.out}")
    return 0


def table(r: dict) -> str:
    types = ["Gene", "Disease", "Chemical", "Species", "Variant", "CellLine"]
    rows = [(f"model {k}", v) for k, v in r["models"].items()] + \
           [(f"ensemble {k}", v) for k, v in r["ensemble"].items()] + \
           [(f"seed0 + gazetteer {k}", v) for k, v in r["gazetteer"]["modes"].items()]
    lines = ["| system | P | R | F1 | " + " | ".join(types) + " | tagging s |", "|---" * (5 + len(types)) + "|"]
    for name, v in rows:
        lines.append(f"| {name} | {v['precision']} | {v['recall']} | {v['overall_f1']} | "
                     + " | ".join(str(v["per_type_f1"].get(t, "–")) for t in types)
                     + f" | {v['tagging_seconds'] if v['tagging_seconds'] is not None else '–'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
