"""Train AIONER models with Accelerate.

    python train.py --recipe quickstart --output_dir runs/quickstart          # minutes on a 2-core CPU
    accelerate launch train.py --recipe aioner --output_dir runs/aioner       # BioRED + the ten external corpora
    python train.py --recipe single --corpora BioRED --output_dir runs/biored # the paper's baseline
    python train.py --recipe finetune --init_from runs/aioner --corpora AnatEM --output_dir runs/anatem-ft
    python train.py --recipe merged --corpora AnatEM --output_dir runs/anatem-merged
    python train.py --recipe gerbera --corpora NCBI-Disease --general CoNLL-2003 --output_dir runs/ncbi-gerbera
    python train.py --recipe mtl --output_dir runs/mtl            # the MTL baseline: one output layer per corpus
    python train.py --config my_run.yaml                                        # the same options in YAML
    python train.py my_run.yaml                                                 # or in one YAML/JSON file alone

Every option can come from a YAML file (``--config``; command-line options win).
The best model by dev F1 is saved in ``--output_dir`` (safetensors, tokenizer with
task tags, code, pipeline, model card) and loads with
``pipeline("token-classification", model=output_dir, trust_remote_code=True)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aioner.arguments import OptionParser, TrainArgs
from aioner.atomic_files import write_text
from aioner.encoders import DEFAULT_ENCODER
from aioner.recipes import QUICKSTART_CORPORA, QUICKSTART_SAMPLE, RECIPES
from dataset_scripts.corpora import AIO_TRAINING_CORPORA


@dataclass
class RecipeArgs:
    """What to train: the recipe, its data and model, and what happens after training."""

    recipe: str = field(
        default="quickstart", metadata={"choices": RECIPES, "help": "see aioner/recipes.py (default: %(default)s)"}
    )
    encoder: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a BERT-like encoder (default: the embedded all-MiniLM-L6-v2)"},
    )
    corpora: list[str] | None = field(default=None, metadata={"help": "corpus names (see dataset_scripts/corpora.py)"})
    general: list[str] = field(
        default_factory=lambda: ["CoNLL-2003"], metadata={"help": "gerbera: general-domain sets (default: %(default)s)"}
    )
    init_from: str | None = field(
        default=None, metadata={"help": "finetune (required) / other recipes (optional): an AIONER checkpoint"}
    )
    stage1_epochs: int | None = field(
        default=None, metadata={"help": "gerbera: epochs of the multi-task stage (default: --epochs)"}
    )
    decoder: Literal["crf", "softmax"] = field(
        default="crf", metadata={"help": "output layer: CRF or softmax (default: %(default)s)"}
    )
    head: Literal["dense", "bilstm"] = field(
        default="dense",
        metadata={"help": "encoder -> Dense+ReLU (the paper's, the default) or encoder -> BiLSTM -> Dense+ReLU"},
    )
    lstm_size: int = field(
        default=256, metadata={"help": "--head bilstm: hidden units per direction (default: %(default)s)"}
    )
    fc_size: int | None = field(
        default=None, metadata={"help": "units of the Dense layer (default: the width of its input)"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout after the Dense layer (default: %(default)s)"})
    context: Literal["sentence", "pack", "margin"] = field(
        default="sentence",
        metadata={
            "help": "what a window holds besides the words it labels: one sentence (the paper's, the default), "
            "consecutive sentences of a document (pack), or one sentence plus --context_margin sub-words of its "
            "neighbours on each side (margin); saved in the config, so the checkpoint tags the same way "
            "(a new model's: --init_from keeps the checkpoint's)"
        },
    )
    context_margin: int = field(
        default=64, metadata={"help": "--context margin: sub-words of context per side (default: %(default)s)"}
    )
    window_length: int = field(
        default=256, metadata={"help": "sub-words per window, long sentences are split (default: %(default)s)"}
    )
    sample: float | None = field(
        default=None, metadata={"help": "per corpus: a fraction (<1) or a count of training documents"}
    )
    corpus_sample: list[str] | None = field(
        default=None,
        metadata={
            "metavar": "NAME=N",
            "help": (
                "aioner/quickstart: per-corpus --sample overrides, e.g. BioRED=10 (a fraction < 1, a count or all)"
            ),
        },
    )
    exclude_tests_of: list[str] | None = field(
        default=None,
        metadata={
            "metavar": "CORPUS",
            "help": (
                "aioner, mtl: leave out training documents that are in these corpora's test sets (default: BioRED)"
            ),
        },
    )
    general_sample: float | None = field(
        default=None, metadata={"help": "gerbera: fraction or count of general-domain sentences"}
    )
    eval_test: list[str] | None = field(
        default=None,
        metadata={"nargs": "*", "help": "test sets to score at the end (default: the recipe's; none when given alone)"},
    )
    push_to_hub: bool = field(default=False, metadata={"help": "upload the model and its card to the Hub"})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repository for --push_to_hub (default: the output folder name)"}
    )


@dataclass
class Arguments(TrainArgs, RecipeArgs):
    """Every option of train.py: RecipeArgs' then TrainArgs' (aioner/arguments.py), with the
    recipe's defaults filled in; ``extra`` records what the run is, so that a resume can check it."""

    def __post_init__(self):
        super().__post_init__()
        if self.recipe == "quickstart":
            self.corpora = self.corpora or QUICKSTART_CORPORA
            self.epochs = self.epochs or 2
        self.epochs = self.epochs or 20
        self.output_dir = str(Path(self.output_dir or f"runs/{self.recipe}"))
        self.extra = {
            "recipe": self.recipe,
            "encoder": self.encoder,
            "corpora": self.corpora,
            "init_from": self.init_from,
            "decoder": self.decoder,
            "sample": self.sample,
            "seed": self.seed,
        }
        # Only when given, so that runs started before these options existed still resume.
        self.extra.update({k: getattr(self, k) for k in ("corpus_sample", "exclude_tests_of") if getattr(self, k)})
        if self.head != "dense":
            self.extra["head"] = self.head
        if self.context != "sentence":
            self.extra["context"] = [self.context, self.context_margin]


def parse_args(argv=None) -> Arguments:
    parser = OptionParser(Arguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser.parse(argv)


def check_args(args) -> None:
    """Fail before any work on names that do not exist or options a recipe cannot use."""
    from dataset_scripts.corpora import get_corpus

    for name in (
        (args.corpora or [])
        + (args.general if args.recipe == "gerbera" else [])
        + (args.eval_test or [])
        + list(corpus_sample(args))
        + (args.exclude_tests_of or [])
    ):
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


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    import torch
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import set_seed

    from aioner.training import LOG_DIR, enable_cpu_ranks, fit, shutdown
    from pipeline_aioner import native_bf16

    enable_cpu_ranks()
    on_cpu = not torch.cuda.is_available()
    native = on_cpu and native_bf16("cpu")  # CUDA is not touched before Accelerate places each rank
    if args.recipe == "quickstart" and args.mixed_precision is None and native:
        args.mixed_precision = "bf16"
    if args.mixed_precision == "bf16" and on_cpu and not native:
        # Measured on an AVX2-only EPYC, the Table 2 AIO recipe: 58 training tokens/s in bf16, 914 in fp32.
        warnings.warn(
            "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated here and training runs many "
            "times slower than in fp32; leave out --bf16 / --mixed_precision bf16 on this machine",
            stacklevel=1,
        )
    out = Path(args.output_dir)
    # Per-corpus output layers (mtl): a batch need not hold every corpus, so DDP must allow unused heads.
    ddp = [DistributedDataParallelKwargs(find_unused_parameters=True)] if args.recipe == "mtl" else []
    accelerator = Accelerator(
        gradient_accumulation_steps=args.grad_accum,
        log_with="tensorboard",
        project_dir=str(out / LOG_DIR),
        mixed_precision=args.mixed_precision,
        kwargs_handlers=ddp,
    )
    start = time.time()
    # Before the model is built: its new layers (dense, classifier, CRF, task-tag embeddings) are drawn
    # here, so --seed must fix them too, not only the data order (fit seeds again for that).
    set_seed(args.seed)
    data, model, tokenizer = prepare(args, accelerator)
    progress = fit(model, tokenizer, data, args, accelerator)
    finish(args, out, data, progress, time.time() - start)
    shutdown(accelerator)
    return 0


def prepare(args: Arguments, accelerator) -> tuple:
    """The recipe's training data and starting model; GERBERA trains its first stage here."""
    from aioner import recipes
    from aioner.checkpoint import add_tasks, load_checkpoint, new_tagger
    from aioner.training import STAGE1_DIR, fit

    head = {
        "decoder": args.decoder,
        "fc_size": args.fc_size,
        "dropout": args.dropout,
        "window_length": args.window_length,
        "head": args.head,
        "lstm_size": args.lstm_size,
        "context": args.context,
        "context_margin": args.context_margin if args.context == "margin" else 0,
    }
    sample = int(args.sample) if args.sample and args.sample >= 1 else args.sample
    if args.recipe == "single":
        data = recipes.single(args.corpora[0], sample, args.seed)
        return data, *start_model(args, data.scheme, head)
    if args.recipe == "mtl":
        if args.init_from:
            raise SystemExit("--recipe mtl trains its per-corpus output layers from an encoder: drop --init_from")
        share = {**dict.fromkeys(args.corpora or AIO_TRAINING_CORPORA, sample), **corpus_sample(args)}
        data = recipes.mtl(args.corpora, share, args.seed, args.exclude_tests_of)
        return data, *new_tagger(
            args.encoder, data.scheme.to_pairs(), output_layers="per_task", task_tags=False, **head
        )
    if args.recipe in ("aioner", "quickstart"):
        share = (
            {c: QUICKSTART_SAMPLE.get(c) for c in args.corpora}
            if args.recipe == "quickstart" and not sample
            else sample
        )
        if args.corpus_sample:
            names = args.corpora or AIO_TRAINING_CORPORA
            share = {**(share if isinstance(share, dict) else dict.fromkeys(names, share)), **corpus_sample(args)}
        # The quick start selects on BioRED dev alone (the ALL task it is scored on): a quarter of the dev time.
        data = recipes.aioner(
            args.corpora, share, args.seed, ["BioRED"] if args.recipe == "quickstart" else None, args.exclude_tests_of
        )
        return data, *start_model(args, data.scheme, head)
    if args.recipe == "finetune":
        data = recipes.new_type_corpus(args.corpora[0], sample, args.seed)
        model, tokenizer = load_checkpoint(args.init_from)
        overlap = set(data.scheme.entity_types) & set(model.config.scheme.entity_types)
        if overlap:
            raise SystemExit(
                f"checkpoint {args.init_from} already has the types {sorted(overlap)}: finetune is for "
                "unseen types (use --recipe single --init_from to continue training)"
            )
        model.reset_output_layers(data.scheme.to_pairs())
        add_tasks(model, tokenizer, data.scheme.to_pairs())
        return data, model.train(), tokenizer
    if args.recipe == "merged":
        data = recipes.merged(args.corpora[0], None, sample, args.seed)
        return data, *new_tagger(args.encoder, data.scheme.to_pairs(), **head)
    # gerbera
    stage1 = recipes.gerbera_stage1(args.corpora[0], args.general, args.general_sample, args.seed, sample)
    model, tokenizer = start_model(args, stage1.scheme, head)
    accelerator.print(f"GERBERA stage 1: {stage1.description}")
    stage1_dir = Path(args.output_dir) / STAGE1_DIR
    fit(
        model,
        tokenizer,
        stage1,
        dataclasses.replace(args, output_dir=str(stage1_dir), epochs=args.stage1_epochs or args.epochs),
        accelerator,
    )
    accelerator.wait_for_everyone()
    accelerator.free_memory()  # stage 1's wrapped model, optimizer and scheduler
    model, tokenizer = load_checkpoint(str(stage1_dir))
    data = recipes.single(args.corpora[0], sample, args.seed)
    # Stage 2: the target's labels only, starting from what stage 1 learnt of them.
    model.reset_output_layers(data.scheme.to_pairs(), keep_known=True)
    accelerator.print("GERBERA stage 2: the target set alone")
    return data, model.train(), tokenizer


def start_model(args: Arguments, scheme, head: dict) -> tuple:
    """A fresh model on the encoder, or --init_from whose label set must already cover the data."""
    from aioner.checkpoint import load_checkpoint, new_tagger

    if not args.init_from:
        return new_tagger(args.encoder, scheme.to_pairs(), **head)
    model, tokenizer = load_checkpoint(args.init_from)
    missing = set(scheme.labels) - set(model.config.label2id)
    if missing:
        raise SystemExit(
            f"checkpoint {args.init_from} lacks the labels {sorted(missing)} this recipe trains; "
            "use --recipe finetune for new entity types"
        )
    return model.train(), tokenizer


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
        print(
            f"{corpus} test: strict F1 {100 * r['strict']['overall']['f1']:.2f}, "
            f"relaxed F1 {100 * r['relaxed']['overall']['f1']:.2f}"
        )
    command = "python train.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    train_seconds = progress.get("train_seconds", 0.0) + stage1_seconds(out)
    # results.json marks a finished run (benchmarks reuse it): it appears whole or not at all.
    write_text(
        out / "results.json",
        json.dumps(
            {
                "command": command,
                "seconds": round(seconds, 1),
                # Summed over every process that trained this run (resumes included); dev evaluation excluded.
                "train_seconds": round(train_seconds, 3),  # a smoke run can train in under 50 ms
                "best_dev_f1": progress.get("best_f1"),
                "history": progress.get("history"),
                "test": results,
            },
            indent=1,
        ),
    )
    model_id = args.hub_model_id or out.name
    encoder = args.encoder or f"{DEFAULT_ENCODER} (sentence-transformers/all-MiniLM-L6-v2)"
    write_model_card(
        out,
        {
            "model_id": model_id,
            "recipe": args.recipe,
            "recipe_desc": data.description,
            "encoder": encoder,
            "base_model": args.encoder
            if args.encoder and "/" in args.encoder and not Path(args.encoder).exists()
            else None,
            "tasks": model.config.scheme.to_dict(),
            "decoder": model.config.decoder,
            "trained_tasks": getattr(model.config, "trained_tasks", None),
            "training_data": f"{len(data.train)} training sentences ({data.description}); dev: {len(data.dev)} sentences",
            "hyperparameters": (
                f"batch {args.batch_size}, epochs ≤ {args.epochs} (patience {args.patience}), "
                f"encoder lr {args.learning_rate or 'per-encoder default'}, head lr {args.head_learning_rate}, "
                f"window {args.window_length} sub-words, mixed precision {args.mixed_precision or 'no'}"
            ),
            "command": command,
            "dev_f1": progress.get("best_f1"),
            "train_seconds": train_seconds,
            "datasets": sorted({r["corpus"] for r in results}),
        },
        results,
    )
    if args.push_to_hub:
        push(out, model_id)


def stage1_seconds(out: Path) -> float:
    """GERBERA's multi-task stage trained first, in its own run folder: its training seconds (0 for other
    recipes)."""
    from aioner.training import STAGE1_DIR, latest_progress

    return latest_progress(out / STAGE1_DIR).get("train_seconds", 0.0)


def push(out: Path, repo_id: str) -> None:
    """Upload the checkpoint and its card (not the training state or logs)."""
    from huggingface_hub import HfApi

    from aioner.training import NOT_CHECKPOINT

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id, ignore_patterns=[f"{d}/*" for d in NOT_CHECKPOINT])
    print(f"pushed {out} to https://huggingface.co/{repo_id}")


if __name__ == "__main__":
    sys.exit(main())
