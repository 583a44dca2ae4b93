"""Build Hub-native datasets: one Parquet config per corpus plus the merged AIO training set.

    python -m dataset_scripts.build --out data_build            # every config, + report
    python -m dataset_scripts.build --out data_build --configs BioRED AIO
    python -m dataset_scripts.build --out data_build --push_to_hub org/aioner-corpora

The output folder is a dataset repository: ``<config>/<split>-00000-of-00001.parquet``
and a README.md dataset card whose YAML ``configs`` make
``load_dataset(folder_or_repo, "BioRED")`` work with no remote code. The datasets themselves
come from ``dataset_scripts.hf_datasets`` (what the training recipes read in memory).

Files come from ``dataset_scripts.corpora.fetch`` (local corpora folder, cache, download).
Offline (``AIONER_OFFLINE=1``, or ``HF_HUB_OFFLINE=1``/``HF_DATASETS_OFFLINE=1``) nothing is
downloaded: splits whose file is not local (JNLPBA train, NLM-Chem train/dev) are skipped
with a message on stderr, at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from datasets import DatasetDict
from tqdm.auto import tqdm

from .aio import SplitReport
from .corpora import CORPORA, CorpusUnavailableError, get_corpus
from .hf_datasets import corpus_dataset, merged_dataset

MERGED = "AIO"


# ----- writing a dataset repository -----
def write_config(out: Path, config: str, dataset: DatasetDict) -> None:
    for split, ds in dataset.items():
        path = out / config / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))


def dataset_card(configs: dict[str, DatasetDict], reports: list[SplitReport], seconds: float) -> str:
    lines = ["---", "configs:"]
    for config, dd in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in dd:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    lines += [
        "task_categories:",
        "- token-classification",
        "language:",
        "- en",
        "tags:",
        "- biomedical",
        "- named-entity-recognition",
        "- aioner",
        "---",
        "",
        "# AIONER corpora as Hub-native datasets",
        "",
        "Built by `python -m dataset_scripts.build` from the public corpora listed below. Each row is a",
        "sentence: `tokens` with their character `token_spans` in the source document and AIO `labels`",
        "(`B-Type`, `I-Type`, `O-Task`; see the AIONER paper). `task` is the AIO task tag the sentence",
        "is wrapped in for training (`<ALL>` for BioRED, `<Gene>` for gene corpora, ...).",
        "",
        f"Build time on the machine that built it: {seconds:.0f} s.",
        "",
        "Counts per split: `mentions` are the gold mentions of the task after type mapping and fixes;",
        "`representable` of them are whole words in the rows. A file's mention lines are `mentions` +",
        "`ignored types` (raw types the task does not use) + `overlap dropped` (nested/overlapping:",
        "the longest span is kept) + `duplicates merged` + `reader problems` (malformed lines left out;",
        "listed in build_report.json). `test overlap removed`: documents left out because they are",
        "in an evaluated test set. A document id a file repeats (NLM-Chem: one block per passage) is",
        "`PMID#k` in `document_id`.",
        "",
        "| corpus | split | documents | sentences | mentions | representable | ignored types | "
        "overlap dropped | duplicates merged | reader problems | test overlap removed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.corpus} | {r.split} | {r.documents} | {r.sentences} | {r.mentions} | "
            f"{r.representable} | {sum(r.ignored_types.values())} | {r.overlap_dropped} | "
            f"{r.duplicates_merged} | {len(r.reader_problems)} | {r.test_overlap_removed} |"
        )
    lines += [
        "",
        "## Sources and licences",
        "",
        "| config | task | labels | source | licence | notes |",
        "|---|---|---|---|---|---|",
    ]
    for config in configs:
        if config == MERGED:
            lines.append(
                f"| {MERGED} | all | 19 AIO labels | the AIONER corpora above | each corpus' own | "
                "training documents found in any merged corpus' test set removed |"
            )
            continue
        c = get_corpus(config)
        urls = ", ".join(sorted({s.url.rsplit("/", 2)[0] for s in c.splits.values() if s.url})) or "not public"
        lines.append(f"| {config} | {c.task} | {', '.join(c.entity_types)} | {urls} | {c.license} | {c.notes} |")
    return "\n".join(lines) + "\n"


def build(out: Path, configs=None, seed: int = 0) -> tuple[dict[str, DatasetDict], list[SplitReport]]:
    start = time.time()
    names = configs or [*CORPORA, MERGED]
    built, reports = {}, []
    for name in tqdm(names, desc="building configs", disable=None):
        if name == MERGED:
            dd, reps = merged_dataset(seed=seed)
        else:
            try:
                dd, reps = corpus_dataset(name)
            except CorpusUnavailableError as err:
                print(f"[build] {name} skipped: {err}", file=sys.stderr)
                continue
        if not dd:
            print(f"[build] {name}: no split available, skipped", file=sys.stderr)
            continue
        write_config(out, name, dd)
        built[name] = dd
        reports.extend(r for r in reps if not (name == MERGED))
        if name == MERGED:
            for r in reps:
                r.corpus = f"{MERGED}/{r.corpus}"
            reports.extend(reps)
    seconds = time.time() - start
    (out / "README.md").write_text(dataset_card(built, reports, seconds), encoding="utf-8")
    (out / "build_report.json").write_text(
        json.dumps({"seconds": round(seconds, 1), "rows": [r.row() for r in reports]}, indent=1), encoding="utf-8"
    )
    return built, reports


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data_build"))
    ap.add_argument("--configs", nargs="*", help=f"configs to build (default: all, {MERGED} included)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, help="also write the per-split table as JSON here (results/corpora.json)")
    ap.add_argument("--push_to_hub", metavar="REPO", help="publish the folder as a Hub dataset repository")
    args = ap.parse_args(argv)
    for name in args.configs or []:
        if name != MERGED:
            get_corpus(name)  # unknown names fail before any work
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    built, reports = build(args.out, args.configs, args.seed)
    seconds = time.time() - t
    for r in reports:
        print(
            f"{r.corpus:24s} {r.split:6s} docs {r.documents:6d} sents {r.sentences:6d} mentions {r.mentions:6d} "
            f"representable {r.representable:6d} overlap_dropped {r.overlap_dropped:4d} "
            f"test_overlap_removed {r.test_overlap_removed:3d}"
        )
    print(f"built {len(built)} configs in {seconds:.0f} s into {args.out}")
    if args.results:
        import platform
        from datetime import datetime, timezone

        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(
            json.dumps(
                {
                    "command": "python -m dataset_scripts.build "
                    + " ".join(argv if argv is not None else sys.argv[1:]),
                    "machine": f"{platform.machine()} {platform.processor() or ''} {__import__('os').cpu_count()} cores".strip(),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "seconds": round(seconds, 1),
                    "rows": [r.row() for r in reports],
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=str(args.out), repo_id=args.push_to_hub, repo_type="dataset")
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
