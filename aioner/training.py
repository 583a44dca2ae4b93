"""The training loop: Accelerate (DDP, mixed precision, accumulation), early stopping, resumable state.

Layout of an output folder:

    OUT/                    the best model by dev F1: loads with trust_remote_code, pipeline()
    OUT/README.md           its model card (written at the end, with test scores)
    OUT/train_state/        accelerate save_state folders (rotated), progress.json inside each
    OUT/runs/               TensorBoard logs
    OUT/training_args.json  the arguments of the run (a second run with other args is refused)
    OUT/train_log.jsonl     one line per evaluation
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from array import array
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, parse_flag_from_env, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from aioner_scheme import spans_from_labels, training_record, window_budget
from pipeline_aioner import length_batches

from . import progress_bars_disabled
from .arguments import TrainArgs
from .atomic_files import write_text
from .checkpoint import save_checkpoint
from .encoders import DEFAULT_ENCODER
from .features import LengthGroupedBatches, collate, encode_rows
from .recipes import Data
from .scoring import score_entities

# A small general-domain encoder needs a higher learning rate than the paper's 5e-6 for PubMedBERT.
ENCODER_LEARNING_RATES = {DEFAULT_ENCODER: 1e-4}
DEFAULT_LEARNING_RATE = 5e-5
# Training loss, learning rate and tokens/s go to the log and the progress bar every this many steps.
LOG_EVERY = 10

# A run folder's layout (train.py --output_dir): the checkpoint's own files at the top, and beside them:
STATE_DIR = "train_state"  # resumable states, one step_N/ each (Accelerate's save_state plus progress.json)
LOG_DIR = "runs"  # TensorBoard
STAGE1_DIR = "stage1"  # GERBERA's multi-task stage, a run folder of its own
BEST_SCRATCH = ".best.tmp"  # save_best writes the new best model here, then moves each file into place
NOT_CHECKPOINT = (STATE_DIR, LOG_DIR, STAGE1_DIR, BEST_SCRATCH)  # what a pushed checkpoint leaves out


class RunDirectoryError(RuntimeError):
    """The output folder holds another run (or something else): nothing is overwritten."""


def enable_cpu_ranks() -> bool:
    """Make ``torchrun``/``accelerate launch --multi_gpu`` processes on a machine without CUDA real gloo ranks.

    Without ``ACCELERATE_USE_CPU``, Accelerate on a CPU-only machine ignores WORLD_SIZE
    and each process trains alone (DistributedType.NO), unsynchronised. ``Accelerator`` reads that
    variable; ``PartialState`` does not, so the returned flag must be passed as ``PartialState(cpu=...)``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    return parse_flag_from_env("ACCELERATE_USE_CPU")


def default_learning_rate(encoder: str | None) -> float:
    return ENCODER_LEARNING_RATES.get(encoder or DEFAULT_ENCODER, DEFAULT_LEARNING_RATE)


def check_output_dir(out: Path, args: TrainArgs) -> None:
    """Refuse a folder holding another run; accept the same run when resuming."""
    # TensorBoard's logs and GERBERA's first stage may precede this stage's files.
    if not out.exists() or not [p for p in out.iterdir() if p.name not in (LOG_DIR, STAGE1_DIR)]:
        return
    recorded = out / "training_args.json"
    if not recorded.exists():
        raise RunDirectoryError(f"output dir {out} is not empty and holds no training run: choose another folder")
    if not args.resume_from_checkpoint:
        raise RunDirectoryError(
            f"output dir {out} already holds a training run; pass --resume_from_checkpoint latest to continue it, "
            "or choose another folder (nothing was overwritten)"
        )
    before = json.loads(recorded.read_text())
    if before.get("extra") != args.extra:
        raise RunDirectoryError(
            f"output dir {out} holds a run with other settings ({before.get('extra')}); this run asks for {args.extra}"
        )


def state_dir(out: Path, step: int) -> Path:
    """Where a run saves its training state after ``step`` optimizer steps."""
    return out / STATE_DIR / f"step_{step}"


def saved_states(out: Path) -> list[Path]:
    """A run's state folders, oldest first, half-written ones included."""
    return sorted((out / STATE_DIR).glob("step_*"), key=lambda p: int(p.name.split("_")[1]))


def latest_state(out: Path) -> Path | None:
    states = [s for s in saved_states(out) if (s / "progress.json").exists()]  # without it: half written
    return states[-1] if states else None


def latest_progress(out: Path) -> dict:
    """What the latest saved state of a train.py run records (its ``progress.json``: epoch, step, training
    seconds and sub-words, ...); {} before any."""
    state = latest_state(out)
    return json.loads((state / "progress.json").read_text()) if state else {}


@torch.inference_mode()
def evaluate_features(model, features, scheme, batch_tokens: int, device, pad_id: int = 0) -> dict:
    """Strict entity-level P/R/F1 on word spans of pre-tokenized rows (dev evaluation)."""
    model.eval()
    torch.set_flush_denormal(True)  # denormal CRF scores slow CPU decoding many times over (see pipeline_aioner)
    gold, pred = set(), set()
    by_task: dict[str, list] = {}
    for f in features:
        by_task.setdefault(f.task, []).append(f)
    for task, feats in by_task.items():
        allowed = scheme.allowed_label_ids(task)
        for batch in length_batches(feats, batch_tokens):
            inputs = collate(batch, pad_id=pad_id)
            word_mask = inputs["labels"] != -100
            logits, _ = model.emissions(
                inputs["input_ids"].to(device),
                inputs["attention_mask"].to(device),
                task_ids=inputs["task_ids"].to(device),
            )
            paths = model.decode_emissions(logits, word_mask.to(device), allowed, task=task)
            for f, path, labels, mask in zip(batch, paths, inputs["labels"], word_mask):
                for found, ids in ((gold, labels[mask].tolist()), (pred, path)):
                    for s in spans_from_labels([scheme.labels[j] for j in ids]):
                        found.add((str(f.row), f.word_offset + s.start, f.word_offset + s.end, s.type))
    return score_entities(gold, pred, "strict")


def fit(model, tokenizer, data: Data, args: TrainArgs, accelerator: Accelerator | None = None) -> dict:
    """Train ``model`` on ``data``; the best model by dev F1 ends up saved in ``args.output_dir``."""
    out = Path(args.output_dir)
    accelerator = accelerator or Accelerator(
        gradient_accumulation_steps=args.grad_accum,
        log_with="tensorboard",
        project_dir=str(out / LOG_DIR),
        mixed_precision=args.mixed_precision,
    )
    if accelerator.is_main_process:
        check_output_dir(out, args)
    accelerator.wait_for_everyone()
    out.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)

    scheme = data.scheme
    tags = getattr(model.config, "task_tags", True)
    budget = window_budget(tokenizer, model.config.window_length, model.encoder.config, tags)
    # Windows as the checkpoint will tag them (config.context: sentence, packed or with margins).
    window = {
        "context": getattr(model.config, "context", "sentence"),
        "margin": getattr(model.config, "context_margin", 0),
    }
    train_feats = encode_rows(data.train, data.train_labels, tokenizer, scheme, budget, tags, **window)
    dev_feats = encode_rows(data.dev, data.dev_labels, tokenizer, scheme, budget, tags, **window) if data.dev else []
    if not train_feats:
        raise ValueError(f"no training sentences for {data.description}")
    record_training(model, data)
    sampler = LengthGroupedBatches([len(f.input_ids) for f in train_feats], args.batch_size, args.seed)
    pad_id = tokenizer.pad_token_id or 0
    loader = DataLoader(train_feats, batch_sampler=sampler, collate_fn=partial(collate, pad_id=pad_id))

    steps_per_epoch = math.ceil(math.ceil(len(loader) / accelerator.num_processes) / args.grad_accum)
    optimizer, scheduler = make_optimizer(model, args, steps_per_epoch)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    progress = load_progress(accelerator, out, args.resume_from_checkpoint, data_fingerprint(train_feats))
    if accelerator.is_main_process:
        (out / "training_args.json").write_text(json.dumps(asdict(args), indent=1))
    accelerator.init_trackers(
        "aioner", config={k: v for k, v in asdict(args).items() if isinstance(v, (int, float, str, bool))}
    )

    stop = False
    while progress["epoch"] < args.epochs and not stop:
        sampler.set_epoch(progress["epoch"])
        model.train()
        tokens, t0, stop = train_epoch(accelerator, model, optimizer, scheduler, loader, progress, args, out)
        epoch_seconds = time.time() - t0  # training only: dev evaluation below is not training time
        progress["train_tokens"] += tokens
        progress["train_seconds"] += epoch_seconds
        end_epoch(
            accelerator, model, tokenizer, out, progress, (dev_feats, scheme, pad_id), args, tokens, epoch_seconds
        )
        progress["epoch"] += 1
        progress["batches_done"], progress["epoch_seconds"], progress["epoch_tokens"] = 0, 0.0, 0
        save_state(accelerator, out, progress, args.keep_states)
        if progress["bad_epochs"] >= args.patience:
            accelerator.print(f"early stop: no dev improvement in {args.patience} epochs")
            break
    check_replicas_agree(accelerator, model)
    for tracker in accelerator.trackers:
        tracker.finish()
    return progress


def train_epoch(
    accelerator: Accelerator, model, optimizer, scheduler, loader, progress: dict, args: TrainArgs, out: Path
) -> tuple[int, float, bool]:
    """The optimizer steps of epoch ``progress["epoch"]``, its first ``progress["batches_done"]`` batches skipped
    (a mid-epoch resume); returns (sub-words trained on, the epoch's start time, whether --max_steps was reached)."""
    batches = loader
    if progress["batches_done"]:
        batches = accelerator.skip_first_batches(loader, progress["batches_done"])
    bar = tqdm(
        batches,
        desc=f"epoch {progress['epoch'] + 1}/{args.epochs}",
        # An explicit disable= hides tqdm's own TQDM_DISABLE default: honour it here (batch logs, the GPU run).
        disable=not accelerator.is_local_main_process or progress_bars_disabled(),
        initial=progress["batches_done"],
        total=len(loader),
    )
    # A mid-epoch resume carries on the epoch's clock and token count from its checkpoint, so
    # train_seconds counts the work before an interruption (steps redone after it count once).
    t0 = time.time() - progress.get("epoch_seconds", 0.0)
    # Counted on the device and read every LOG_EVERY steps: on a GPU each read (.item(), int()) waits for
    # the step to finish, and the H200 lease measured steps bound by the CPU's launches (13-15 steps/s).
    start_tokens = progress.get("epoch_tokens", 0)
    counted = torch.zeros((), dtype=torch.long, device=accelerator.device)

    def tokens() -> int:
        return start_tokens + int(counted) * accelerator.num_processes

    for batch in bar:
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        counted += batch["attention_mask"].sum()
        progress["batches_done"] += 1
        if accelerator.sync_gradients:
            progress["global_step"] += 1
            if progress["global_step"] % LOG_EVERY == 0:
                value = loss.item()  # one host read for the log and the bar
                accelerator.log(
                    {"train/loss": value, "train/lr": scheduler.get_last_lr()[0]}, step=progress["global_step"]
                )
                bar.set_postfix(loss=f"{value:.3f}", tok_s=f"{tokens() / max(time.time() - t0, 1e-9):.0f}")
            if args.save_steps and progress["global_step"] % args.save_steps == 0:
                progress["epoch_seconds"], progress["epoch_tokens"] = time.time() - t0, tokens()
                save_state(accelerator, out, progress, args.keep_states)
            if args.max_steps and progress["global_step"] >= args.max_steps:
                return tokens(), t0, True
    return tokens(), t0, False


def make_optimizer(model, args: TrainArgs, steps_per_epoch: int) -> tuple:
    """AdamW (the encoder at its learning rate, no decay on biases and norms; the layers above at
    theirs) and its linear warm-up and decay over the run's optimizer steps."""
    lr = args.learning_rate if args.learning_rate is not None else default_learning_rate(args.extra.get("encoder"))
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    no_decay = [p for n, p in model.encoder.named_parameters() if "bias" in n or "LayerNorm" in n or "norm" in n]
    decay = [p for n, p in model.encoder.named_parameters() if not ("bias" in n or "LayerNorm" in n or "norm" in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "lr": lr, "weight_decay": args.weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
            {"params": head, "lr": args.head_learning_rate, "weight_decay": 0.0},
        ]
    )
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)


def data_fingerprint(features) -> dict:
    """What a run trains on: its windows' count and a digest of their sub-words and labels."""
    digest = hashlib.sha256()
    for f in features:
        digest.update(array("q", f.input_ids).tobytes())
        digest.update(array("q", f.labels).tobytes())
    return {"windows": len(features), "sha256": digest.hexdigest()[:16]}


def check_same_data(state: Path, saved: dict | None, now: dict) -> None:
    """Refuse to resume on other training windows than the state was saved on: the batch order is a
    permutation of window indices, so the rest of the epoch would skip some examples and repeat others.
    (States saved before the fingerprint existed are not checked.)"""
    if saved is not None and saved != now:
        raise RunDirectoryError(
            f"{state} was saved while training on {saved['windows']:,} windows (digest {saved['sha256']}), but "
            f"this run builds {now['windows']:,} (digest {now['sha256']}): the corpora, their sampling or the code "
            "that cuts words and windows changed since. Resume with the code and corpora the run started with, "
            "or train in a new --output_dir (nothing was changed)"
        )


def load_progress(accelerator: Accelerator, out: Path, resume: str | None, fingerprint: dict) -> dict:
    """A fresh run's progress, or the saved state's that ``resume`` names (loaded into ``accelerator``) after
    checking that it trained on the same windows (``fingerprint``: ``data_fingerprint``'s)."""
    progress = {
        "epoch": 0,
        "batches_done": 0,
        "global_step": 0,
        "best_f1": -1.0,
        "bad_epochs": 0,
        "history": [],
        "train_tokens": 0,
        "train_seconds": 0.0,
    }
    if resume:
        state = latest_state(out) if resume == "latest" else Path(resume)
        if state is None:
            accelerator.print(f"no saved state in {out / 'train_state'}: starting from scratch")
        else:
            saved = json.loads((state / "progress.json").read_text())
            check_same_data(state, saved.get("train_data"), fingerprint)
            accelerator.load_state(str(state))
            progress = saved
            accelerator.print(
                f"resumed from {state}: epoch {progress['epoch']}, "
                f"{progress['batches_done']} batches into it, step {progress['global_step']}"
            )
    progress["train_data"] = fingerprint
    return progress


def save_state(accelerator: Accelerator, out: Path, progress: dict, keep_states: int) -> None:
    """Save the training state in ``state_dir`` and drop all but the newest ``keep_states``."""
    state = state_dir(out, progress["global_step"])
    accelerator.save_state(str(state))
    if accelerator.is_main_process:
        # progress.json last: a state folder without it is incomplete and never resumed from.
        write_text(state / "progress.json", json.dumps(progress))
        for old in saved_states(out)[:-keep_states]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def end_epoch(
    accelerator: Accelerator,
    model,
    tokenizer,
    out: Path,
    progress: dict,
    dev_set: tuple,
    args: TrainArgs,
    tokens: int,
    epoch_seconds: float,
) -> None:
    """Dev evaluation on the main process (log, best model saved), the decision shared with all ranks."""
    if accelerator.is_main_process:
        dev_feats, scheme, pad_id = dev_set
        epoch = progress["epoch"]
        unwrapped = accelerator.unwrap_model(model)
        if dev_feats:
            dev = evaluate_features(unwrapped, dev_feats, scheme, args.eval_batch_tokens, accelerator.device, pad_id)
            f1 = dev["overall"]["f1"]
        else:
            dev, f1 = None, progress["epoch"]  # no dev set: the latest epoch is the best
        improved = f1 > progress["best_f1"]
        record = {
            "epoch": epoch + 1,
            "step": progress["global_step"],
            "dev_f1": f1 if dev else None,
            "train_tokens": tokens,
            "train_seconds": round(epoch_seconds, 2),
            "train_tokens_per_s": tokens / max(epoch_seconds, 1e-9),
        }
        progress["history"].append(record)
        with open(out / "train_log.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        if dev:
            accelerator.print(
                f"epoch {epoch + 1}: dev F1 {100 * f1:.2f} (best {100 * max(f1, progress['best_f1']):.2f})"
            )
            accelerator.log({"dev/f1": f1}, step=progress["global_step"])
        if improved:
            progress["best_f1"], progress["bad_epochs"] = f1, 0
            save_best(unwrapped, tokenizer, out)
        elif progress["best_f1"] > 0:
            # Patience counts from the first epoch that finds anything on dev: a small corpus takes a few
            # epochs of ~10 steps before any entity comes out (tmVar3 at 10%: dev F1 0 for 4 epochs), and
            # stopping then would keep a model that has learnt nothing. --epochs still bounds the run.
            progress["bad_epochs"] += 1
    shared = broadcast_object_list([progress])  # best_f1, bad_epochs: every rank stops at the same epoch
    progress.update(shared[0])


def shutdown(accelerator: Accelerator) -> None:
    """End a run: drop the DDP wrappers while the process group still exists, then destroy the group.

    Destroying a gloo group first and letting a DDP reducer release it afterwards can hang
    in ProcessGroupGloo's destructor (seen with two CPU ranks).
    """
    import gc

    accelerator.wait_for_everyone()
    accelerator.free_memory()
    gc.collect()
    accelerator.state.destroy_process_group()


def check_replicas_agree(accelerator: Accelerator, model) -> None:
    """With several processes, every rank must end with the same weights (gradients were synchronised)."""
    if accelerator.num_processes < 2:
        return
    with torch.no_grad():
        total = torch.stack([p.detach().float().sum() for p in accelerator.unwrap_model(model).parameters()]).sum()
    sums = accelerator.gather(total.reshape(1).to(accelerator.device)).tolist()
    if max(sums) - min(sums) > 1e-3 * max(1.0, abs(sums[0])):
        raise RuntimeError(f"model replicas diverged across ranks: parameter sums {sums}")
    accelerator.print(f"gradients synchronised: parameter sums equal on {len(sums)} ranks ({sums[0]:.6f})")


def record_training(model, data: Data) -> None:
    """Write into the config what this training saw per task (taggers refuse the tasks it lacks).

    Counted from the rows used, after sampling and test-document exclusion. A task still in the
    scheme keeps an earlier training's count (``--init_from``) unless this training has rows for it.
    """
    earlier = getattr(model.config, "trained_tasks", None) or {}
    tasks = set(model.config.scheme.tasks)
    model.config.trained_tasks = {
        **{t: e for t, e in earlier.items() if t in tasks},
        **training_record(data.train, data.train_labels),
    }


def save_best(model, tokenizer, out: Path) -> None:
    """Write the checkpoint to a scratch folder, then move each file into place (never half a model)."""
    scratch = out / BEST_SCRATCH
    shutil.rmtree(scratch, ignore_errors=True)
    save_checkpoint(model, tokenizer, scratch)
    for f in scratch.iterdir():
        os.replace(f, out / f.name)
    scratch.rmdir()


def describe_machine() -> str:
    """CPU model, cores, torch threads, GPU and torch version: the "machine" of every results file."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}"
