"""Domain-adaptive pre-training: continued masked-language-model training of an encoder on our biomedical text.

    python pretrain_mlm.py --output_dir runs/minilm-dapt --max_seconds 3600     # the AIO training corpora
    python pretrain_mlm.py --corpora BioRED --max_steps 200 --whole_word_mask --output_dir runs/minilm-biored
    python train.py --recipe single --corpora BioRED --encoder runs/minilm-dapt --output_dir runs/biored-dapt

The text is the titles and abstracts (or passages) of the TRAIN split of each corpus, and
nothing else: no dev hold-out, no test file, no document whose id is in a test split of any
registered corpus; ``--heldout_share`` of the documents are kept apart to measure the MLM loss
before and after (``aioner/mlm_data.py`` says exactly how the text is chosen, packed and masked).

The loop is Accelerate (``accelerate launch pretrain_mlm.py ...`` for several processes),
with a wall-clock budget (``--max_seconds``: the learning rate decays linearly over it).

The output folder holds the encoder with its MLM head (``save_pretrained``: loads with
``AutoModel`` and ``AutoModelForMaskedLM``), the tokenizer, ``mlm_training.json`` (options,
data report, loss curve), ``pretraining_documents.tsv`` (every document id it trained on or
held out) and a model card (README.md) saying exactly what text it saw.

Encoders saved without their MLM head (the embedded all-MiniLM-L6-v2 is a sentence-
transformers ``BertModel``) get a freshly initialised head whose output layer is tied to
the input embeddings; the card lists the weights that were initialised.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import progress_bars_disabled
from .arguments import OptionParser
from .encoders import DEFAULT_ENCODER
from .mlm_data import MaskingCollator, collect_documents, default_corpora, fixed_batches, pack_documents
from .mlm_model import (
    BASE_MODEL_LICENSES,
    MaskedOnlyLoss,
    base_model_id,
    evaluate_loss,
    heads_tied,
    load_mlm_model,
    param_groups,
    push,
    save,
)
from .training import describe_machine, enable_cpu_ranks, shutdown


@dataclass
class MLMArgs:
    """The options of ``pretrain_mlm.py`` / ``aioner-pretrain-mlm``: each field is one command-line option
    (``aioner.arguments.OptionParser``)."""

    output_dir: str = field(metadata={"help": "folder for the adapted encoder, its tokenizer, record and card"})
    encoder: str | None = field(
        default=None, metadata={"help": "Hub id, folder or embedded:NAME (default: the embedded all-MiniLM-L6-v2)"}
    )
    corpora: list[str] | None = field(
        default=None,
        metadata={
            "help": "corpora whose TRAIN split gives the text (default: the AIO training corpora, BioRED included)"
        },
    )
    sample: float | None = field(
        default=None, metadata={"help": "per corpus: a fraction (<1) or a count of training documents"}
    )
    heldout_share: float = field(
        default=0.02, metadata={"help": "share of the documents kept apart to measure the MLM loss (never trained on)"}
    )
    exclude_tests_of: list[str] | None = field(
        default=None,
        metadata={
            "metavar": "CORPUS",
            "help": "leave out documents whose id is in these corpora's test sets "
            "(default: every registered corpus with a test set)",
        },
    )
    max_heldout_sequences: int = field(
        default=256, metadata={"help": "held-out sequences scored (with fixed masks) before and after training"}
    )
    seq_length: int = field(default=128, metadata={"help": "sub-words per packed sequence, special tokens included"})
    batch_size: int = field(default=32, metadata={"help": "sequences per batch and process"})
    grad_accum: int = field(default=1, metadata={"help": "batches per optimizer step"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate of AdamW"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on biases and norms)"})
    warmup_ratio: float = field(
        default=0.06, metadata={"help": "share of the run (steps, or the --max_seconds budget) of linear warm-up"}
    )
    head_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "first N optimizer steps train only the weights the model lacked (a new MLM head), "
            "the pre-trained encoder at learning rate 0"
        },
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    epochs: float | None = field(
        default=None,
        metadata={"help": "passes over the text (default 1, or unbounded under --max_steps/--max_seconds)"},
    )
    max_steps: int = field(default=0, metadata={"help": "stop after N optimizer steps (0: no limit)"})
    max_seconds: float = field(
        default=0,
        metadata={
            "help": "wall-clock budget of the training loop in seconds (0: none); the learning rate decays over it"
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "share of the sub-words chosen for masking"})
    whole_word_mask: bool = field(default=False, metadata={"help": "mask whole words (all their sub-words)"})
    mixed_precision: str | None = field(
        default=None,
        metadata={"choices": ["no", "bf16", "fp16"], "help": "default: from `accelerate launch` or its config"},
    )
    log_steps: int = field(default=10, metadata={"help": "mean training loss every N optimizer steps"})
    eval_steps: int = field(default=0, metadata={"help": "held-out loss every N steps (0: before and after only)"})
    seed: int = field(default=0, metadata={"help": "seed of the sample, the shuffling and the masks"})
    overwrite: bool = field(default=False, metadata={"help": "write into a non-empty output folder"})
    push_to_hub: bool = field(default=False, metadata={"help": "upload the output folder to the Hub"})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repository for --push_to_hub (default: the output folder name)"}
    )
    # The command line, for the record and the card (parse_args fills it in; not an option to type).
    command: str = field(default="", metadata={"help": argparse.SUPPRESS})

    def __post_init__(self):
        if self.epochs is None and not self.max_steps and not self.max_seconds:
            self.epochs = 1.0


# ----- training -----
def schedule_factor(progress: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of the run, then linear decay to 0 at the end.

    ``progress`` is the larger of the share of planned steps and the share of the time budget
    done, so the schedule follows a wall-clock budget, which a step-indexed LR scheduler
    (transformers' ``get_scheduler``) cannot.
    """
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - warmup))


def set_learning_rates(optimizer, args: MLMArgs, step: int, planned: int, elapsed: float, new_head: bool) -> None:
    """The learning rate of optimizer step ``step + 1``: the schedule, or 0 for pre-trained weights
    during the head warm-up."""
    progress = (step + 1) / planned if planned else 0.0
    if args.max_seconds:
        progress = max(progress, elapsed / args.max_seconds)
    for group in optimizer.param_groups:
        held = group.get("pretrained") and new_head and step < args.head_warmup_steps
        group["lr"] = 0.0 if held else args.learning_rate * schedule_factor(progress, args.warmup_ratio)


def planned_steps(args: MLMArgs, batches: int) -> tuple[int, float]:
    """(optimizer steps planned, passes over the text allowed); a time budget alone allows 'unbounded' passes."""
    epochs = args.epochs
    if epochs is None:
        epochs = 1000 if (args.max_steps or args.max_seconds) else 1
    planned = int(math.ceil(max(1, math.ceil(batches / args.grad_accum)) * epochs))
    return (min(planned, args.max_steps) if args.max_steps else planned), epochs


def _window(step: int, loss: float, n: int, lr: float, seconds: float, tokens: int) -> dict:
    return {
        "step": step,
        "loss": round(loss / n, 4),
        "lr": lr,
        "seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
    }


def run_steps(
    args: MLMArgs, accelerator: Accelerator, wrapped, optimizer, loader, eval_batches, new_head: bool
) -> dict:
    """The optimizer steps: until the planned steps or the time budget run out; the loss curve."""
    planned, epochs = planned_steps(args, len(loader))
    unwrapped, device = accelerator.unwrap_model(wrapped), accelerator.device
    history, evals = [], []
    step, tokens, window_loss, window_n, stop = 0, 0, 0.0, 0, False
    time_bound = bool(args.max_seconds) and not args.max_steps and args.epochs is None
    bar = tqdm(
        total=None if time_bound else planned,
        desc="mlm",
        disable=not accelerator.is_local_main_process or progress_bars_disabled(),
    )
    wrapped.train()
    t0 = time.time()
    epoch = 0
    while not stop and epoch < math.ceil(epochs):
        for batch in loader:
            with accelerator.accumulate(wrapped):
                loss = wrapped(**batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(wrapped.parameters(), args.max_grad_norm)
                    set_learning_rates(optimizer, args, step, planned, time.time() - t0, new_head)
                optimizer.step()
                optimizer.zero_grad()
            tokens += int(batch["attention_mask"].sum()) * accelerator.num_processes
            window_loss += float(loss.detach())
            window_n += 1
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            elapsed = time.time() - t0
            if step % args.log_steps == 0 or step == 1:
                history.append(_window(step, window_loss, window_n, optimizer.param_groups[0]["lr"], elapsed, tokens))
                bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", tok_s=f"{history[-1]['tokens_per_s']:.0f}")
                window_loss, window_n = 0.0, 0
            if args.eval_steps and step % args.eval_steps == 0 and eval_batches:
                evals.append({"step": step, "heldout_loss": evaluate_loss(unwrapped, eval_batches, device)})
            over_time = bool(args.max_seconds) and elapsed >= args.max_seconds
            if accelerator.num_processes > 1:  # every rank stops at the same step
                if over_time:
                    accelerator.set_trigger()
                over_time = accelerator.check_trigger()
            if step >= planned or over_time:
                stop = True
                break
        epoch += 1
    bar.close()
    seconds = time.time() - t0
    if window_n:
        history.append(_window(step, window_loss, window_n, optimizer.param_groups[0]["lr"], seconds, tokens))
    return {"steps": step, "tokens": tokens, "seconds": seconds, "history": history, "heldout": evals}


def prepare_text(args: MLMArgs, corpora: list[str], tokenizer):
    """(training documents, held-out documents, report, packed training text, fixed held-out batches)."""
    train_docs, heldout_docs, report = collect_documents(
        corpora,
        sample=args.sample,
        seed=args.seed,
        heldout_share=args.heldout_share,
        exclude_tests_of=args.exclude_tests_of,
    )
    if not train_docs:
        raise SystemExit(f"no training text in {corpora}: {[(c.corpus, c.skipped) for c in report.corpora]}")
    packed = pack_documents(train_docs, tokenizer, args.seq_length, with_offsets=args.whole_word_mask)
    for entry in report.corpora:
        entry.tokens = packed.per_corpus_tokens.get(entry.corpus, 0)
    eval_batches = []
    if heldout_docs:
        held = pack_documents(heldout_docs, tokenizer, args.seq_length, with_offsets=args.whole_word_mask)
        eval_batches = fixed_batches(
            tokenizer,
            held,
            args.batch_size,
            args.max_heldout_sequences,
            args.mlm_probability,
            args.whole_word_mask,
            seed=args.seed + 1,
        )
    return train_docs, heldout_docs, report, packed, eval_batches


def make_loader(args: MLMArgs, tokenizer, packed) -> DataLoader:
    """The packed training sequences in shuffled batches, masked afresh each time they are drawn."""
    return DataLoader(
        list(range(len(packed.input_ids))),
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=MaskingCollator(tokenizer, packed, args.mlm_probability, args.whole_word_mask),
        generator=torch.Generator().manual_seed(args.seed),
    )


def train_mlm(args: MLMArgs) -> dict:
    """Run the whole recipe; returns the training record (also written to mlm_training.json)."""
    enable_cpu_ranks()  # `accelerate launch` on a machine without CUDA: real gloo ranks
    out = Path(args.output_dir)
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum, mixed_precision=args.mixed_precision)
    if accelerator.is_main_process and out.exists() and any(out.iterdir()) and not args.overwrite:
        raise SystemExit(f"output dir {out} is not empty: choose another folder or pass --overwrite")
    set_seed(args.seed)
    t_start = time.time()
    corpora = list(args.corpora or default_corpora())
    model, tokenizer, path, initialised = load_mlm_model(args.encoder)
    if args.whole_word_mask and not tokenizer.is_fast:
        raise SystemExit("--whole_word_mask needs a fast tokenizer (word boundaries come from its offsets)")
    train_docs, heldout_docs, report, packed, eval_batches = prepare_text(args, corpora, tokenizer)
    data_seconds = time.time() - t_start
    accelerator.print(
        f"[mlm] {len(train_docs)} documents, {packed.tokens} sub-words in {len(packed.input_ids)} "
        f"sequences of <= {args.seq_length} ({data_seconds:.0f} s); held out: {len(heldout_docs)} documents"
    )

    loader = make_loader(args, tokenizer, packed)
    if args.head_warmup_steps and not initialised:
        accelerator.print("[mlm] --head_warmup_steps: the model loaded with its MLM head, nothing to warm up")
    optimizer = torch.optim.AdamW(param_groups(model, set(initialised), args.weight_decay), lr=args.learning_rate)
    wrapped, optimizer, loader = accelerator.prepare(MaskedOnlyLoss(model), optimizer, loader)
    unwrapped = accelerator.unwrap_model(wrapped)  # the loss module; unwrapped.model is the MLM model

    before = evaluate_loss(unwrapped, eval_batches, accelerator.device) if eval_batches else None
    if before is not None:
        accelerator.print(f"[mlm] held-out MLM loss before: {before:.4f}")
    run = run_steps(args, accelerator, wrapped, optimizer, loader, eval_batches, bool(initialised))
    after = evaluate_loss(unwrapped, eval_batches, accelerator.device) if eval_batches else None
    evals = run["heldout"]
    if before is not None:
        evals = [{"step": 0, "heldout_loss": before}, *evals, {"step": run["steps"], "heldout_loss": after}]
        accelerator.print(f"[mlm] held-out MLM loss after {run['steps']} steps: {after:.4f}")

    record = {
        "options": asdict(args),
        "encoder": args.encoder or DEFAULT_ENCODER,
        "encoder_path": path,
        "base_model": base_model_id(args.encoder),
        "license": BASE_MODEL_LICENSES.get(args.encoder or DEFAULT_ENCODER),
        "corpora": corpora,
        "data": {
            **asdict(report),
            "documents": len(train_docs),
            "heldout_documents": len(heldout_docs),
            "sequences": len(packed.input_ids),
            "tokens": packed.tokens,
            "heldout_sequences_scored": sum(len(b["input_ids"]) for b in eval_batches),
        },
        "initialised_weights": initialised,
        "decoder_tied_to_embeddings": heads_tied(unwrapped.model),
        "steps": run["steps"],
        "epochs_seen": round(run["tokens"] / max(1, sum(map(len, packed.input_ids))), 3),
        "train_tokens": run["tokens"],
        "train_seconds": round(run["seconds"], 1),
        "data_seconds": round(data_seconds, 1),
        "train_tokens_per_s": round(run["tokens"] / max(run["seconds"], 1e-9), 1),
        "history": run["history"],
        "heldout": evals,
        "heldout_loss_before": before,
        "heldout_loss_after": after,
        "machine": describe_machine(),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save(out, unwrapped.model, tokenizer, record, train_docs, heldout_docs, args.hub_model_id or out.name)
        if args.push_to_hub:
            push(out, args.hub_model_id or out.name)
    shutdown(accelerator)
    return record


# ----- command line -----
class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written; each option's default after its help, unless None (the help
    then says what applies)."""

    def _get_help_string(self, action):
        if (
            action.option_strings
            and action.default not in (None, argparse.SUPPRESS)
            and "%(default)" not in action.help
        ):
            return action.help + " (default: %(default)s)"
        return action.help


def parse_args(argv=None) -> MLMArgs:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = OptionParser(MLMArgs, description=__doc__, formatter_class=_HelpFormatter).parse(argv)
    args.command = "python pretrain_mlm.py " + shlex.join(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    record = train_mlm(args)
    print(
        json.dumps(
            {
                k: record[k]
                for k in ("steps", "train_seconds", "train_tokens_per_s", "heldout_loss_before", "heldout_loss_after")
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
