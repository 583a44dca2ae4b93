"""Train AIONER models with Accelerate.

    python train.py --recipe quickstart --output_dir runs/quickstart          # minutes on a 2-core CPU
    accelerate launch train.py --recipe aioner --output_dir runs/aioner       # BioRED + the ten external corpora
    python train.py --recipe single --corpora BioRED --output_dir runs/biored # the paper's baseline
    python train.py --recipe finetune --init_from runs/aioner --corpora AnatEM --output_dir runs/anatem-ft
    python train.py --recipe merged --corpora AnatEM --output_dir runs/anatem-merged
    python train.py --recipe gerbera --corpora NCBI-Disease --general CoNLL-2003 --output_dir runs/ncbi-gerbera
    python train.py --recipe mtl --output_dir runs/mtl            # the MTL baseline: one output layer per corpus
    python train.py --config my_run.yaml                                        # the same options in YAML

Every option can come from a YAML file (``--config``; command-line options win).
The best model by dev F1 is saved in ``--output_dir`` (safetensors, tokenizer with
task tags, code, pipeline, model card) and loads with
``pipeline("token-classification", model=output_dir, trust_remote_code=True)``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import yaml

from aioner.recipes import QUICKSTART_CORPORA, QUICKSTART_SAMPLE, RECIPES
from aioner.encoders import DEFAULT_ENCODER
from dataset_scripts.corpora import AIO_TRAINING_CORPORA


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML file of options (keys = option names without dashes)")
    ap.add_argument("--recipe", choices=RECIPES, default="quickstart")
    ap.add_argument("--encoder", help="Hub id or folder of a BERT-like encoder (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--corpora", nargs="+", help="corpus names (see dataset_scripts/corpora.py)")
    ap.add_argument("--general", nargs="+", default=["CoNLL-2003"], help="gerbera: general-domain sets")
    ap.add_argument("--init_from", help="finetune (required) / other recipes (optional): an AIONER checkpoint")
    ap.add_argument("--output_dir", help="default: runs/<recipe>")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--stage1_epochs", type=int, help="gerbera: epochs of the multi-task stage (default: --epochs)")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--learning_rate", type=float, help="encoder learning rate (default: per encoder)")
    ap.add_argument("--head_learning_rate", type=float, default=1e-3)
    ap.add_argument("--warmup_ratio", type=float, default=0.1)
    ap.add_argument("--grad_accum", type=int, default=1)
    ap.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"],
                    help="default: accelerate's setting; the quickstart uses bf16 where the CPU has native bf16")
    ap.add_argument("--bf16", action="store_true",
                    help="= --mixed_precision bf16: bf16 autocast over fp32 master weights, the CRF in fp32 "
                         "(results/bf16_training_cpu.json)")
    ap.add_argument("--decoder", choices=["crf", "softmax"], default="crf")
    ap.add_argument("--head", choices=["dense", "bilstm"], default="dense",
                    help="encoder -> Dense+ReLU (the paper's) or encoder -> BiLSTM -> Dense+ReLU")
    ap.add_argument("--lstm_size", type=int, default=256, help="--head bilstm: hidden units per direction")
    ap.add_argument("--fc_size", type=int)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--window_length", type=int, default=256, help="sub-words per window (long sentences are split)")
    ap.add_argument("--sample", type=float, help="per corpus: a fraction (<1) or a count of training documents")
    ap.add_argument("--corpus_sample", nargs="+", metavar="NAME=N",
                    help="aioner/quickstart: per-corpus --sample overrides, e.g. BioRED=10 (a fraction < 1, a count or all)")
    ap.add_argument("--exclude_tests_of", nargs="+", metavar="CORPUS",
                    help="aioner, mtl: leave out training documents that are in these corpora's test sets (default: BioRED)")
    ap.add_argument("--general_sample", type=float, help="gerbera: fraction or count of general-domain sentences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save_steps", type=int, default=0, help="also save training state every N steps")
    ap.add_argument("--max_steps", type=int, default=0, help="stop after N optimizer steps (0: no limit)")
    ap.add_argument("--resume_from_checkpoint", help="a train_state folder, or 'latest'")
    ap.add_argument("--eval_test", nargs="*", help="test sets to score at the end (default: the recipe's)")
    ap.add_argument("--push_to_hub", action="store_true")
    ap.add_argument("--hub_model_id", help="Hub repository for --push_to_hub (default: the output folder name)")
    # YAML values become the parser's defaults, so any command-line spelling of an option
    # (--epochs 3, --epochs=3, an abbreviation) wins over the file: argparse decides, not a scan of argv.
    config = ap.parse_known_args(argv)[0].config
    if config:
        options = yaml.safe_load(Path(config).read_text()) or {}
        unknown = set(options) - {a.dest for a in ap._actions}
        if unknown:
            ap.error(f"unknown options in {config}: {sorted(unknown)}")
        ap.set_defaults(**options)
    args = ap.parse_args(argv)
    if args.bf16:
        if args.mixed_precision not in (None, "bf16"):
            ap.error(f"--bf16 contradicts --mixed_precision {args.mixed_precision}")
        args.mixed_precision = "bf16"
    return args


def check_args(args) -> None:
    """Fail before any work on names that do not exist or options a recipe cannot use."""
    from dataset_scripts.corpora import get_corpus

    for name in ((args.corpora or []) + (args.general if args.recipe == "gerbera" else []) + (args.eval_test or [])
                 + list(corpus_sample(args)) + (args.exclude_tests_of or [])):
        get_corpus(name)
    if args.recipe in ("single", "finetune", "merged", "gerbera") and (not args.corpora or len(args.corpora) != 1):
        raise SystemExit(f"--recipe {args.recipe} needs exactly one corpus in --corpora")
    if args.recipe == "finetune" and not args.init_from:
        raise SystemExit("--recipe finetune needs --init_from: the AIONER checkpoint to start from")


def corpus_sample(args) -> dict:
    """--corpus_sample NAME=N ... as {name: fraction or count}."""
    out = {}
    for item in args.corpus_sample or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--corpus_sample expects NAME=N, not {item!r}")
        if value == "all":  # the whole training set of this corpus, whatever --sample says
            out[name] = None
            continue
        try:
            out[name] = float(value) if float(value) < 1 else int(float(value))
        except ValueError:
            raise SystemExit(f"--corpus_sample {item!r}: N must be a fraction < 1, a count or 'all'") from None
    return out


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    import torch
    from accelerate import Accelerator, DistributedDataParallelKwargs

    from aioner import recipes
    from aioner.checkpoint import add_tasks, load_checkpoint, new_tagger
    from aioner.training import TrainArgs, enable_cpu_ranks, fit, shutdown

    enable_cpu_ranks()

    out = Path(args.output_dir or f"runs/{args.recipe}")
    if args.recipe == "quickstart":
        args.corpora = args.corpora or QUICKSTART_CORPORA
        args.epochs = args.epochs or 2
        if args.mixed_precision is None and not torch.cuda.is_available() and cpu_has_native_bf16():
            args.mixed_precision = "bf16"
    args.epochs = args.epochs or 20
    extra = {"recipe": args.recipe, "encoder": args.encoder, "corpora": args.corpora, "init_from": args.init_from,
             "decoder": args.decoder, "sample": args.sample, "seed": args.seed}
    # Only when given, so that runs started before these options existed still resume.
    extra.update({k: getattr(args, k) for k in ("corpus_sample", "exclude_tests_of") if getattr(args, k)})
    if args.head != "dense":
        extra["head"] = args.head

    def train_args(output_dir: Path, epochs: int) -> TrainArgs:
        return TrainArgs(
            output_dir=str(output_dir), epochs=epochs, patience=args.patience, batch_size=args.batch_size,
            learning_rate=args.learning_rate, head_learning_rate=args.head_learning_rate,
            warmup_ratio=args.warmup_ratio, grad_accum=args.grad_accum, max_steps=args.max_steps,
            save_steps=args.save_steps, seed=args.seed, mixed_precision=args.mixed_precision,
            resume_from_checkpoint=args.resume_from_checkpoint, extra=extra)

    head = {"decoder": args.decoder, "fc_size": args.fc_size, "dropout": args.dropout,
            "window_length": args.window_length, "head": args.head, "lstm_size": args.lstm_size}
    sample = int(args.sample) if args.sample and args.sample >= 1 else args.sample

    def start_model(scheme):
        """A fresh model on the encoder, or --init_from whose label set must already cover the data."""
        if not args.init_from:
            return new_tagger(args.encoder, scheme.to_pairs(), **head)
        model, tokenizer = load_checkpoint(args.init_from)
        missing = set(scheme.labels) - set(model.config.label2id)
        if missing:
            raise SystemExit(f"checkpoint {args.init_from} lacks the labels {sorted(missing)} this recipe trains; "
                             "use --recipe finetune for new entity types")
        return model.train(), tokenizer

    # Per-corpus output layers (mtl): a batch need not hold every corpus, so DDP must allow unused heads.
    ddp = [DistributedDataParallelKwargs(find_unused_parameters=True)] if args.recipe == "mtl" else []
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum, log_with="tensorboard",
                              project_dir=str(out / "runs"), mixed_precision=args.mixed_precision,
                              kwargs_handlers=ddp)
    start = time.time()
    if args.recipe == "single":
        data = recipes.single(args.corpora[0], sample, args.seed)
        model, tokenizer = start_model(data.scheme)
    elif args.recipe == "mtl":
        if args.init_from:
            raise SystemExit("--recipe mtl trains its per-corpus output layers from an encoder: drop --init_from")
        share = {**dict.fromkeys(args.corpora or AIO_TRAINING_CORPORA, sample), **corpus_sample(args)}
        data = recipes.mtl(args.corpora, share, args.seed, args.exclude_tests_of)
        model, tokenizer = new_tagger(args.encoder, data.scheme.to_pairs(), output_layers="per_task",
                                      task_tags=False, **head)
    elif args.recipe in ("aioner", "quickstart"):
        share = {c: QUICKSTART_SAMPLE.get(c) for c in args.corpora} if args.recipe == "quickstart" and not sample else sample
        if args.corpus_sample:
            names = args.corpora or AIO_TRAINING_CORPORA
            share = {**(share if isinstance(share, dict) else dict.fromkeys(names, share)), **corpus_sample(args)}
        # The quick start selects on BioRED dev alone (the ALL task it is scored on): a quarter of the dev time.
        data = recipes.aioner(args.corpora, share, args.seed, ["BioRED"] if args.recipe == "quickstart" else None,
                              args.exclude_tests_of)
        model, tokenizer = start_model(data.scheme)
    elif args.recipe == "finetune":
        data = recipes.new_type_corpus(args.corpora[0], sample, args.seed)
        model, tokenizer = load_checkpoint(args.init_from)
        overlap = set(data.scheme.entity_types) & set(model.config.scheme.entity_types)
        if overlap:
            raise SystemExit(f"checkpoint {args.init_from} already has the types {sorted(overlap)}: finetune is for "
                             "unseen types (use --recipe single --init_from to continue training)")
        model.reset_output_layers(data.scheme.to_pairs())
        add_tasks(model, tokenizer, data.scheme.to_pairs())
        model.train()
    elif args.recipe == "merged":
        data = recipes.merged(args.corpora[0], None, sample, args.seed)
        model, tokenizer = new_tagger(args.encoder, data.scheme.to_pairs(), **head)
    else:  # gerbera
        stage1 = recipes.gerbera_stage1(args.corpora[0], args.general, args.general_sample, args.seed, sample)
        model, tokenizer = start_model(stage1.scheme)
        accelerator.print(f"GERBERA stage 1: {stage1.description}")
        fit(model, tokenizer, stage1, train_args(out / "stage1", args.stage1_epochs or args.epochs), accelerator)
        accelerator.wait_for_everyone()
        accelerator.free_memory()  # stage 1's wrapped model, optimizer and scheduler
        model, tokenizer = load_checkpoint(str(out / "stage1"))
        data = recipes.single(args.corpora[0], sample, args.seed)
        # Stage 2: the target's labels only, starting from what stage 1 learnt of them.
        model.reset_output_layers(data.scheme.to_pairs(), keep_known=True)
        model.train()
        accelerator.print("GERBERA stage 2: the target set alone")

    progress = fit(model, tokenizer, data, train_args(out, args.epochs), accelerator)
    finish(args, out, data, progress, time.time() - start)
    shutdown(accelerator)
    return 0


def finish(args, out: Path, data, progress: dict, seconds: float) -> None:
    """On the main process: score the best model on the test sets, write results and the model card, push."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    from aioner.checkpoint import load_checkpoint
    from aioner.evaluation import evaluate_corpus
    from aioner.model_card import write_model_card
    from pipeline_aioner import AIONERTagger

    if not (out / "config.json").exists():
        print(f"no model was saved in {out} (no completed epoch)")
        return
    model, tokenizer = load_checkpoint(str(out))
    tagger = AIONERTagger(model, tokenizer, autocast_dtype=None)  # scores in fp32, the reference precision
    tests = data.test_corpora if args.eval_test is None else args.eval_test
    results = []
    for corpus in tests:
        r = evaluate_corpus(tagger, corpus)
        results.append(r)
        print(f"{corpus} test: strict F1 {100 * r['strict']['overall']['f1']:.2f}, "
              f"relaxed F1 {100 * r['relaxed']['overall']['f1']:.2f}")
    command = "python train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    (out / "results.json").write_text(json.dumps({
        "command": command, "seconds": round(seconds, 1), "best_dev_f1": progress.get("best_f1"),
        "history": progress.get("history"), "test": results}, indent=1))
    model_id = args.hub_model_id or out.name
    encoder = args.encoder or f"{DEFAULT_ENCODER} (sentence-transformers/all-MiniLM-L6-v2)"
    write_model_card(out, {
        "model_id": model_id, "recipe": args.recipe, "recipe_desc": data.description, "encoder": encoder,
        "base_model": args.encoder if args.encoder and "/" in args.encoder and not Path(args.encoder).exists() else None,
        "tasks": model.config.scheme.to_dict(), "decoder": model.config.decoder,
        "trained_tasks": getattr(model.config, "trained_tasks", None),
        "training_data": f"{len(data.train)} training sentences ({data.description}); dev: {len(data.dev)} sentences",
        "hyperparameters": (f"batch {args.batch_size}, epochs ≤ {args.epochs} (patience {args.patience}), "
                            f"encoder lr {args.learning_rate or 'per-encoder default'}, head lr {args.head_learning_rate}, "
                            f"window {args.window_length} sub-words, mixed precision {args.mixed_precision or 'no'}"),
        "command": command, "dev_f1": progress.get("best_f1"), "train_seconds": seconds,
        "datasets": sorted({r["corpus"] for r in results}),
    }, results)
    if args.push_to_hub:
        push(out, model_id)


def push(out: Path, repo_id: str) -> None:
    """Upload the checkpoint and its card (not the training state or logs)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id,
                      ignore_patterns=["train_state/*", "runs/*", "stage1/*", ".best.tmp/*"])
    print(f"pushed {out} to https://huggingface.co/{repo_id}")


if __name__ == "__main__":
    sys.exit(main())
