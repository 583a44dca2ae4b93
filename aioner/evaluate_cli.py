"""Score predicted entities against a gold standard, from the command line.

    python -m aioner.evaluate_cli --gold G --pred P [--format pubtator|iob]
        [--mode strict|relaxed|both] [--type-map CORPUS|TSV] [--json OUT]
        [--per-class] [--errors] [--compare P2 [--resamples N --seed S]]

Prints one Markdown table per mode (per type P/R/F1 and counts, micro overall).
``--type-map`` maps raw gold types to AIO types: a corpus name of
``dataset_scripts.corpora.CORPORA`` (e.g. NCBI-Disease) or a TSV of raw<TAB>aio lines.
``--errors`` sorts the strict errors: type, boundary, both, missed / spurious, per type.
``--compare`` scores a second prediction file and tests the difference (two-sided
Wilcoxon signed-rank on per-document F1, paired bootstrap of micro F1).
Exit status 0 on success, 2 on bad input (missing file, a predicted document the gold
lacks, texts or sentences that differ, unknown types) with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys

from dataset_scripts.documents import CorpusFormatError

from . import evaluation as ev
from .atomic_files import write_text
from .scoring import format_errors, format_per_class, format_report
from .significance import paired_bootstrap, wilcoxon_test


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m aioner.evaluate_cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--gold", required=True, help="gold standard file")
    p.add_argument("--pred", required=True, help="prediction file")
    p.add_argument(
        "--format",
        choices=("pubtator", "iob"),
        default="pubtator",
        help="PubTator (character offsets) or word<TAB>tag IOB (default: pubtator)",
    )
    p.add_argument("--mode", choices=("strict", "relaxed", "both"), default="both")
    p.add_argument("--type-map", help="corpus name (its raw->AIO types) or TSV file raw<TAB>aio")
    p.add_argument("--json", help="also write every number to this JSON file")
    p.add_argument("--per-class", action="store_true", help="word-level B/I/O report with macro/weighted averages")
    p.add_argument(
        "--errors",
        action="store_true",
        help="the strict errors by class: wrong type, wrong boundary, both, missed / spurious (per type)",
    )
    p.add_argument("--compare", metavar="PRED_B", help="second prediction file: significance of pred vs PRED_B")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    modes = ("strict", "relaxed") if args.mode == "both" else (args.mode,)
    type_map = ev.load_type_map(args.type_map)
    result = ev.score_files(
        args.gold, args.pred, args.format, modes=modes, type_map=type_map, per_class=args.per_class, errors=args.errors
    )
    for mode in modes:
        print(f"### {mode} ({args.pred})\n\n{format_report(result[mode])}\n")
    if "seqeval" in result:
        s = result["seqeval"]
        print(
            f"seqeval (strict IOB2): P {100 * s['overall_precision']:.2f}, R {100 * s['overall_recall']:.2f}, "
            f"F1 {100 * s['overall_f1']:.2f}, word accuracy {100 * s['overall_accuracy']:.2f}\n"
        )
    if args.per_class:
        print(f"### per class (word tags)\n\n{format_per_class(result['per_class'])}\n")
    if args.errors:
        print(f"### strict errors by class\n\n{format_errors(result['errors'])}\n")
    if args.compare:
        result["compare"] = compare(args, modes, type_map)
    missing = result["documents_without_prediction"]
    if missing:  # AIONER's Test_Evaluation.py skipped these; here they count as missed
        print(
            f"note: {len(missing)} gold document(s) have no block in {args.pred}; their mentions count "
            f"as missed (e.g. {missing[:3]})",
            file=sys.stderr,
        )
    if result["gold_problems"]:
        print(
            f"note: {len(result['gold_problems'])} defective line(s) of {args.gold} left out, "
            f"first: {result['gold_problems'][0]}",
            file=sys.stderr,
        )
    if args.json:
        write_text(args.json, json.dumps(result, indent=1))
    return result


def compare(args, modes, type_map) -> dict:
    """Significance of pred (a) against --compare (b), per mode, over the gold documents."""
    read = ev.read_pubtator_annotations if args.format == "pubtator" else ev.read_iob_annotations
    gold = read(args.gold, strict=False) if args.format == "pubtator" else read(args.gold)
    other = ev.score_files(args.gold, args.compare, args.format, modes=modes, type_map=type_map)
    pred_a, pred_b = read(args.pred), read(args.compare)
    out = {"pred_b": args.compare}
    for mode in modes:
        w = wilcoxon_test(gold.entities, pred_a.entities, pred_b.entities, mode, documents=gold.ids, type_map=type_map)
        b = paired_bootstrap(
            gold.entities,
            pred_a.entities,
            pred_b.entities,
            mode,
            documents=gold.ids,
            type_map=type_map,
            n_resamples=args.resamples,
            seed=args.seed,
        )
        out[mode] = {"f1_b": other[mode]["overall"]["f1"], "wilcoxon": w, "bootstrap": b}
        print(
            f"### {mode}: {args.pred} vs {args.compare}\n\n"
            f"F1 {100 * b['f1_a']:.2f} vs {100 * b['f1_b']:.2f} (delta {100 * b['delta_f1']:+.2f}, "
            f"95% CI {100 * b['ci95'][0]:+.2f} to {100 * b['ci95'][1]:+.2f}); "
            f"Wilcoxon p = {w['p_value']:.4g} ({w['differing_documents']} of {w['documents']} documents differ); "
            f"bootstrap p = {b['p_value']:.4g} ({b['n_resamples']} resamples, seed {b['seed']})\n"
        )
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (OSError, KeyError, ValueError) as err:  # CorpusFormatError is a ValueError
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        kind = "format error" if isinstance(err, CorpusFormatError) else "error"
        print(f"aioner.evaluate_cli: {kind}: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
