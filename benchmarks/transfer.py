"""The transfer-learning framework's parts, measured on BioRED test: seed ensembles, gazetteers, BiLSTM head.

    python -m benchmarks.transfer                 # trains what is missing, scores, writes results/seed3.json
    python -m benchmarks.transfer --dry_run       # the train.py commands only

Models (one ``python train.py`` run each, all the Table 2 baseline recipe: BioRED only, all
of its training set, 3 epochs, batch 32, the embedded MiniLM):
* seeds 0, 1, 2 of the default head (seed 0 is ``python -m benchmarks.reproduce table2 --scale cpu``'s
  baseline, reused when it exists);
* seed 0 with ``--head bilstm``.
Then, on the 100 BioRED test abstracts (task ALL, strict F1 as the paper scores it):
* each model alone, the ensemble of seeds 0+1 and of 0+1+2 (emissions averaged, one CRF
  decoding), with tagging seconds;
* the seed-0 model's predictions through a gazetteer built from the BioRED *training* split's
  mentions only (``Gazetteer.from_annotations``, min_precision 0.5), in recall, precision and both
  modes (``Gazetteer.apply_all``: post-processing, nothing tagged again);
* the B/I/O per-class report (macro and weighted averages) of the main systems.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

from aioner.encoders import DEFAULT_ENCODER
from aioner.prediction import CorpusPrediction, corpus_documents, predict_corpus
from aioner_scheme import DEFAULT_ENTITY_TYPES
from benchmarks.common import REPO, command, f1_fields, machine, now, run_python, shown, training_seconds, write_result

RECIPE = ["--recipe", "single", "--corpora", "BioRED", "--epochs", "3", "--patience", "5", "--batch_size", "32"]
TABLE2_BASELINE = "runs/repro/cpu/single-BioRED"  # benchmarks.reproduce table2 --scale cpu, seed 0


def runs(args) -> dict[str, tuple[Path, list[str]]]:
    """name -> (folder, train.py options)."""
    out = {}
    for i, seed in enumerate(args.seeds):
        folder = (
            REPO / TABLE2_BASELINE
            if seed == 0 and (REPO / TABLE2_BASELINE / "results.json").exists()
            else REPO / args.runs_dir / f"single-BioRED-seed{seed}"
        )
        out[f"seed{seed}"] = (folder, RECIPE + ["--seed", str(seed)])
        if i == 1:  # trained before the third seed: the ensemble of two and the head compare first
            out["bilstm"] = (
                REPO / args.runs_dir / "single-BioRED-bilstm-seed0",
                RECIPE + ["--head", "bilstm", "--seed", "0"],
            )
    return out


def train(folder: Path, options: list[str], dry_run: bool) -> dict:
    cmd = ["train.py", *options, "--eval_test", "--output_dir", shown(folder)]
    if (folder / "results.json").exists():
        info = json.loads((folder / "results.json").read_text())
        print(f"[transfer] reusing {shown(folder)}", flush=True)
        return {"command": info["command"], "train_seconds": training_seconds(info), "best_dev_f1": info["best_dev_f1"]}
    if folder.exists():
        cmd += ["--resume_from_checkpoint", "latest"]
    print("python " + shlex.join(cmd), flush=True)
    if dry_run:
        return {}
    run_python(cmd)
    info = json.loads((folder / "results.json").read_text())
    return {"command": info["command"], "train_seconds": training_seconds(info), "best_dev_f1": info["best_dev_f1"]}


def summary(prediction: CorpusPrediction) -> dict:
    """A system's entry: strict/relaxed F1 (%), per type, tagging seconds and the B/I/O per-class report."""
    from aioner.evaluation import score_predictions
    from aioner.scoring import document_word_tags, per_class_report

    result = score_predictions(prediction)
    refs, preds = document_word_tags(
        dict(zip(prediction.ids, prediction.texts)), prediction.gold, prediction.entities()
    )
    bio = per_class_report(refs, preds)
    return {
        **f1_fields(result),
        "tagging_seconds": result["tagging_seconds"],
        "per_class_bio": {
            k: {m: round(v, 4) if isinstance(v, float) else v for m, v in s.items()}
            if isinstance(s, dict)
            else round(s, 4)
            for k, s in bio.items()
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.transfer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs_dir", default="runs/seed3")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--min_precision", type=float, default=0.5, help="gazetteer term filter on the training split")
    ap.add_argument("--out", default="results/seed3.json")
    ap.add_argument("--dry_run", action="store_true")
    args = ap.parse_args(argv)

    from aioner.checkpoint import load_checkpoint
    from aioner.ensemble import AIONEREnsemble
    from aioner.gazetteer import Gazetteer
    from pipeline_aioner import AIONERTagger

    start = time.time()
    plan = runs(args)
    trained = {name: train(folder, opts, args.dry_run) for name, (folder, opts) in plan.items()}
    if args.dry_run:
        return 0

    models = {name: load_checkpoint(str(folder)) for name, (folder, _) in plan.items()}
    systems = {}
    for name, (model, tok) in models.items():
        print(f"[transfer] tagging BioRED test with {name}", flush=True)
        systems[name] = predict_corpus(AIONERTagger(model, tok), "BioRED")
    seeds = [f"seed{s}" for s in args.seeds]
    tok = models[seeds[0]][1]
    ensembles = {}
    for k in range(2, len(seeds) + 1):
        members = seeds[:k]
        print(f"[transfer] tagging BioRED test with the ensemble {'+'.join(members)}", flush=True)
        ensemble = AIONERTagger(AIONEREnsemble([models[m][0] for m in members]).eval(), tok)
        ensembles["+".join(members)] = predict_corpus(ensemble, "BioRED")

    train_texts, _, train_gold = corpus_documents("BioRED", "train")
    gazetteer = Gazetteer.from_annotations(train_texts, train_gold, min_precision=args.min_precision)
    seed0 = systems[seeds[0]]
    types = AIONERTagger(*models[seeds[0]]).scheme.tasks[seed0.task]  # what the task may output
    gazetteered = {}
    for mode, min_score in (("recall", 1.0), ("precision", 1.0), ("precision", 0.9), ("both", 1.0)):
        key = mode if min_score == 1.0 else f"{mode} (score < {min_score})"
        gazetteered[key] = replace(
            seed0, predicted=gazetteer.apply_all(seed0.texts, seed0.predicted, mode, min_score, types)
        )

    s = {name: summary(p) for name, p in systems.items()}
    e = {name: summary(p) for name, p in ensembles.items()}
    g = {
        name: {**summary(p), "tagging_seconds": None}  # post-processing of seed 0's predictions
        for name, p in gazetteered.items()
    }
    alone = [s[m]["overall_f1"] for m in seeds]
    base = s[seeds[0]]
    result = {
        "command": command("transfer", argv),
        "machine": machine(),
        "date": now(),
        "encoder": DEFAULT_ENCODER,
        "test_set": "BioRED test (100 abstracts), task ALL, strict F1 (%)",
        "models": {name: {**s[name], **trained[name], "run": shown(plan[name][0])} for name in plan},
        "ensemble": {
            name: {
                **r,
                "members": name.split("+"),
                "delta_vs_mean_member": round(
                    r["overall_f1"] - sum(alone[: len(name.split("+"))]) / len(name.split("+")), 2
                ),
                "delta_vs_best_member": round(r["overall_f1"] - max(alone[: len(name.split("+"))]), 2),
                "time_ratio_vs_one_model": round(r["tagging_seconds"] / base["tagging_seconds"], 2),
            }
            for name, r in e.items()
        },
        "gazetteer": {
            "entries": len(gazetteer),
            "built_from": "BioRED training split mentions only "
            f"(Gazetteer.from_annotations, min_precision {args.min_precision})",
            "applied_to": seeds[0],
            "modes": {
                name: {**r, "delta_overall_f1": round(r["overall_f1"] - base["overall_f1"], 2)} for name, r in g.items()
            },
        },
        "bilstm": {
            **s["bilstm"],
            "delta_vs_dense_seed0": round(s["bilstm"]["overall_f1"] - base["overall_f1"], 2),
            "train_seconds": trained["bilstm"].get("train_seconds"),
            "dense_train_seconds": trained[seeds[0]].get("train_seconds"),
        },
        "seconds": round(time.time() - start, 1),
    }
    write_result(REPO / args.out, result)
    print(table(result))
    print(f"written: {args.out}")
    return 0


def table(r: dict) -> str:
    types = DEFAULT_ENTITY_TYPES
    rows = (
        [(f"model {k}", v) for k, v in r["models"].items()]
        + [(f"ensemble {k}", v) for k, v in r["ensemble"].items()]
        + [(f"seed0 + gazetteer {k}", v) for k, v in r["gazetteer"]["modes"].items()]
    )
    lines = ["| system | P | R | F1 | " + " | ".join(types) + " | tagging s |", "|---" * (5 + len(types)) + "|"]
    for name, v in rows:
        lines.append(
            f"| {name} | {v['precision']} | {v['recall']} | {v['overall_f1']} | "
            + " | ".join(str(v["per_type_f1"].get(t, "–")) for t in types)
            + f" | {v['tagging_seconds'] if v['tagging_seconds'] is not None else '–'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
