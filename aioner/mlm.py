"""Domain-adaptive pre-training: continued masked-language-model training of an encoder on our biomedical text.

    python pretrain_mlm.py --output_dir runs/minilm-dapt --max_seconds 3600     # the AIO training corpora
    python pretrain_mlm.py --corpora BioRED --max_steps 200 --whole_word_mask --output_dir runs/minilm-biored
    python train.py --recipe single --corpora BioRED --encoder runs/minilm-dapt --output_dir runs/biored-dapt

The text is the titles and abstracts (or passages) of the TRAIN split of each corpus, and
nothing else: the fixed dev hold-out of corpora without a dev file is left out (it selects
the fine-tuned models), no test file is read for text, and every document whose id is in a
test split of any registered corpus (BioRED's above all) is dropped. A small share of the
documents (by hash, ``--heldout_share``) is kept apart to measure the MLM loss before and
after, and is never trained on. Sentences (a rule-based splitter; a sentence is never cut
unless longer than a sequence) are packed in document order into sequences of
``--seq_length`` sub-words, documents separated by the separator token.

Masking is transformers' ``DataCollatorForLanguageModeling`` (15% of sub-words, 80/10/10),
or with ``--whole_word_mask`` its whole-word mode (transformers >= 5: words from the
tokenizer's offsets; every sub-word of a chosen word is replaced by the mask token).
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
import hashlib
import json
import math
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from aioner.encoders import DEFAULT_ENCODER

# Hub ids of the embedded encoders, for the card's base_model.
BASE_MODEL_IDS = {DEFAULT_ENCODER: "sentence-transformers/all-MiniLM-L6-v2",
                  "embedded:all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}
BASE_MODEL_LICENSES = {DEFAULT_ENCODER: "apache-2.0", "embedded:all-mpnet-base-v2": "apache-2.0"}

# A sentence ends at . ! ? followed by space and something that can start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


def split_sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def default_corpora() -> list[str]:
    from dataset_scripts.corpora import AIO_TRAINING_CORPORA

    return ["BioRED", *[c for c in AIO_TRAINING_CORPORA if c != "BioRED"]]


# ----- the text -----
@dataclass
class CorpusText:
    corpus: str
    file: str = ""  # relative to the corpora folder
    sha256: str = ""
    split: str = "train"
    documents_in_split: int = 0
    dev_held_out: int = 0  # documents of the train file in the fixed dev hold-out (never read for text)
    excluded_test_ids: int = 0
    duplicates: int = 0
    not_sampled: int = 0
    documents_used: int = 0
    heldout_documents: int = 0
    sentences: int = 0
    characters: int = 0
    tokens: int = 0
    skipped: str = ""  # why the corpus gave no text (file not available)


@dataclass
class TextReport:
    corpora: list[CorpusText] = field(default_factory=list)
    test_files_read: list[str] = field(default_factory=list)
    test_files_missing: list[str] = field(default_factory=list)
    test_ids: int = 0


def test_ids_of(corpora=None) -> tuple[set[str], list[str], list[str]]:
    """Ids of every document in the test splits of ``corpora`` (default: every registered PubTator
    corpus); (ids, files read, files not available)."""
    from dataset_scripts.corpora import CORPORA, CorpusUnavailableError, fetch, get_corpus
    from dataset_scripts.pubtator import read_pubtator

    ids, read, missing = set(), [], []
    seen_files = set()
    for corpus in (CORPORA.values() if corpora is None else [get_corpus(c) for c in corpora]):
        source = corpus.splits.get("test")
        if source is None or corpus.format != "pubtator" or source.path in seen_files:
            continue
        seen_files.add(source.path)
        try:
            path = fetch(source, allow_download=False)
        except CorpusUnavailableError:
            missing.append(source.path)
            continue
        ids.update(d.id for d in read_pubtator(path, strict=False))
        read.append(source.path)
    return ids, read, missing


def in_heldout(doc_key: str, share: float) -> bool:
    if share <= 0:
        return False
    return int(hashlib.md5(f"mlm-heldout:{doc_key}".encode()).hexdigest(), 16) % 10_000 < share * 10_000


def collect_documents(corpora, *, sample=None, seed: int = 0, heldout_share: float = 0.02, exclude_tests_of=None):
    """(training documents, held-out documents, report); a document is (corpus, id, [sentences]).

    ``exclude_tests_of``: corpora whose test document ids are left out (default: every registered
    corpus; BioRED re-annotates abstracts of other corpora, so this drops about a third of its train split).
    """
    import random

    from dataset_scripts.aio import SplitReport, read_documents
    from dataset_scripts.corpora import CorpusUnavailableError, fetch, get_corpus, sha256_of

    test_ids, read, missing = test_ids_of(exclude_tests_of)
    report = TextReport(test_files_read=read, test_files_missing=missing, test_ids=len(test_ids))
    train, heldout, seen = [], [], set()
    for name in corpora:
        corpus = get_corpus(name)
        entry = CorpusText(name)
        report.corpora.append(entry)
        if "train" not in corpus.splits:
            entry.skipped = "no train split"
            continue
        source = corpus.splits["train"]
        entry.file = source.path
        try:
            path = fetch(source, allow_download=False)
            docs, _ = read_documents(corpus, "train", SplitReport(name, "train"))
            if corpus.dev_from_train:
                entry.dev_held_out = len(read_documents(corpus, "dev", SplitReport(name, "dev"))[0])
        except CorpusUnavailableError as err:
            entry.skipped = f"not available: {err}"
            continue
        entry.sha256 = sha256_of(Path(path))
        entry.documents_in_split = len(docs)
        kept = [d for d in docs if d.id not in test_ids]
        entry.excluded_test_ids = len(docs) - len(kept)
        if sample is not None:
            n = round(len(kept) * sample) if sample < 1 else min(int(sample), len(kept))
            picked = sorted(random.Random(seed).sample(range(len(kept)), n))
            entry.not_sampled = len(kept) - n
            kept = [kept[i] for i in picked]
        for doc in kept:
            text = doc.text
            digest = hashlib.sha1(text.encode()).hexdigest()
            if digest in seen:  # BC5CDR's two tasks share one file; corpora share abstracts
                entry.duplicates += 1
                continue
            seen.add(digest)
            sentences = [s for p in sorted(doc.passages, key=lambda p: p.offset) for s in split_sentences(p.text)]
            if not sentences:
                continue
            item = (name, doc.id, sentences)
            if in_heldout(f"{name}:{doc.id}", heldout_share):
                heldout.append(item)
                entry.heldout_documents += 1
            else:
                train.append(item)
                entry.documents_used += 1
                entry.sentences += len(sentences)
                entry.characters += sum(map(len, sentences))
    if heldout_share > 0 and not heldout and len(train) > 1:  # tiny data: hold out one document anyway
        heldout.append(train.pop())
        entry = next(e for e in report.corpora if e.corpus == heldout[0][0])
        entry.documents_used -= 1
        entry.heldout_documents += 1
        entry.sentences -= len(heldout[0][2])
        entry.characters -= sum(map(len, heldout[0][2]))
    return train, heldout, report


# ----- sub-words, packed -----
@dataclass
class Packed:
    input_ids: list  # of np.int32 arrays
    special: list  # of np.uint8 arrays (1: special token)
    offsets: list | None  # of np.int32 [n, 2] arrays (whole-word masking only)
    tokens: int = 0  # sub-words of the text (special tokens not counted)
    per_corpus_tokens: dict = field(default_factory=dict)


def special_ids(tokenizer) -> tuple[int, int]:
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or end is None:
        raise ValueError("the tokenizer has neither CLS/SEP nor BOS/EOS tokens")
    return start, end


def pack(documents, tokenizer, seq_length: int = 128, with_offsets: bool = False) -> Packed:
    """Sentences packed in order into ``[CLS] s1 s2 ... [SEP] (next document) ... [SEP]`` of <= seq_length."""
    from transformers.utils import logging as hf_logging

    if seq_length < 8:
        raise ValueError("seq_length must be at least 8")
    cls, sep = special_ids(tokenizer)
    body = seq_length - 2
    out = Packed([], [], [] if with_offsets else None)
    ids: list[int] = []
    special: list[int] = []
    offs: list[tuple[int, int]] = []
    base = 0  # a running character offset: sentences never touch, so whole words stay within one

    def flush():
        nonlocal ids, special, offs
        while special and special[-1]:  # no separator right before the final [SEP]
            ids.pop(), special.pop(), offs.pop()
        if ids:
            out.input_ids.append(np.array([cls, *ids, sep], dtype=np.int32))
            out.special.append(np.array([1, *special, 1], dtype=np.uint8))
            if with_offsets:
                out.offsets.append(np.array([(0, 0), *offs, (0, 0)], dtype=np.int32).reshape(-1, 2))
        ids, special, offs = [], [], []

    batch = 512
    for start in range(0, len(documents), batch):
        chunk = documents[start:start + batch]
        sentences = [s for _, _, sents in chunk for s in sents]
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # long sentences are cut below, not fed whole to the model
        try:
            enc = tokenizer(sentences, add_special_tokens=False, return_attention_mask=False,
                            return_token_type_ids=False, return_offsets_mapping=with_offsets)
        finally:
            hf_logging.set_verbosity(verbosity)
        k = 0
        for corpus, _, sents in chunk:
            for s in sents:
                s_ids = enc["input_ids"][k]
                s_offs = [(a + base, b + base) for a, b in enc["offset_mapping"][k]] if with_offsets else [(0, 0)] * len(s_ids)
                k += 1
                base += len(s) + 1
                out.tokens += len(s_ids)
                out.per_corpus_tokens[corpus] = out.per_corpus_tokens.get(corpus, 0) + len(s_ids)
                while s_ids:
                    if len(ids) + len(s_ids) > body:
                        if len(s_ids) > body or not ids:  # longer than a sequence: cut it
                            room = body - len(ids)
                            ids += s_ids[:room]
                            special += [0] * room
                            offs += s_offs[:room]
                            s_ids, s_offs = s_ids[room:], s_offs[room:]
                        flush()
                        continue
                    ids += s_ids
                    special += [0] * len(s_ids)
                    offs += s_offs
                    s_ids = []
            if ids and len(ids) < body:  # document boundary
                ids.append(sep)
                special.append(1)
                offs.append((0, 0))
            elif ids:
                flush()
    flush()
    return out


class MaskingCollator:
    """Pads packed sequences and masks them with transformers' DataCollatorForLanguageModeling."""

    def __init__(self, tokenizer, packed: Packed, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 seed: int | None = None):
        import warnings

        from transformers import DataCollatorForLanguageModeling

        self.packed, self.pad = packed, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        with warnings.catch_warnings():  # whole-word mode announces that it masks with [MASK] only
            warnings.simplefilter("ignore")
            self.collator = DataCollatorForLanguageModeling(
                tokenizer, mlm=True, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed)
        if seed is not None:
            self.collator.create_rng()

    def __call__(self, indices):
        import torch

        p = self.packed
        width = max(len(p.input_ids[i]) for i in indices)
        n = len(indices)
        ids = torch.full((n, width), self.pad, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        special = torch.ones((n, width), dtype=torch.long)  # padding is never masked
        offsets = torch.zeros((n, width, 2), dtype=torch.long) if p.offsets is not None else None
        for row, i in enumerate(indices):
            m = len(p.input_ids[i])
            ids[row, :m] = torch.from_numpy(p.input_ids[i].astype(np.int64))
            attention[row, :m] = 1
            special[row, :m] = torch.from_numpy(p.special[i].astype(np.int64))
            if offsets is not None:
                offsets[row, :m] = torch.from_numpy(p.offsets[i].astype(np.int64))
        inputs, labels = self.collator.torch_mask_tokens(ids, special_tokens_mask=special, offset_mapping=offsets)
        return {"input_ids": inputs, "attention_mask": attention, "labels": labels}


# ----- the model -----
def load_mlm_model(encoder: str | None):
    """(model with an MLM head, tokenizer, resolved path, names of weights initialised here)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .checkpoint import resolve_encoder

    path = resolve_encoder(encoder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.mask_token is None:
        raise ValueError(f"the tokenizer of {encoder or path} has no mask token: it cannot do masked-LM training")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the head's "missing" weights are reported on the card instead
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
    if out_emb is not None and out_emb.weight.data_ptr() != in_emb.weight.data_ptr():
        model.tie_weights()  # a head loaded without weights: its decoder shares the input embeddings
    initialised = sorted(info.get("missing_keys") or [])
    return model, tokenizer, path, initialised


class MaskedOnlyLoss(torch.nn.Module):
    """An MLM model's loss with the head applied to the masked positions only.

    ``*ForMaskedLM`` models score every position against the whole vocabulary (for a
    384-wide encoder that is as much work as the encoder itself); the loss needs only the
    ~15% masked ones. Same loss, about half the compute. Wraps the model so that Accelerate
    (DDP) sees one module; ``self.model`` is what is saved.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        prefix = model.base_model_prefix
        others = [m for name, m in model.named_children() if name != prefix]
        if not hasattr(model, prefix) or len(others) != 1:
            raise ValueError(f"{type(model).__name__}: cannot tell its encoder from its MLM head")
        self.head = others[0]

    def forward(self, input_ids, attention_mask, labels):
        hidden = getattr(self.model, self.model.base_model_prefix)(
            input_ids=input_ids, attention_mask=attention_mask)[0]
        chosen = labels != -100
        if not chosen.any():  # nothing masked: a zero loss that still touches the graph
            return hidden.sum() * 0.0
        logits = self.head(hidden[chosen])
        return torch.nn.functional.cross_entropy(logits.float(), labels[chosen])


def heads_tied(model) -> bool:
    out_emb = model.get_output_embeddings()
    return out_emb is not None and out_emb.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


# ----- training -----
@dataclass
class MLMArgs:
    output_dir: str
    encoder: str | None = None
    corpora: list | None = None
    sample: float | None = None  # per corpus: fraction (< 1) or count of training documents (tests, smoke runs)
    heldout_share: float = 0.02
    exclude_tests_of: list | None = None  # None: the test splits of every registered corpus
    max_heldout_sequences: int = 256
    seq_length: int = 128
    batch_size: int = 32
    grad_accum: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    head_warmup_steps: int = 0  # first optimizer steps in which only newly initialised weights learn
    max_grad_norm: float = 1.0
    epochs: float | None = None
    max_steps: int = 0
    max_seconds: float = 0
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    mixed_precision: str | None = None
    log_steps: int = 10
    eval_steps: int = 0
    seed: int = 0
    overwrite: bool = False
    push_to_hub: bool = False
    hub_model_id: str | None = None
    command: str = ""


def schedule_factor(progress: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` of the run, then linear decay to 0 at the end."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - warmup))


def evaluate_loss(model, batches, device) -> float:
    """Mean masked-token cross-entropy over fixed, pre-masked batches."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            n = int((batch["labels"] != -100).sum())
            if n:
                total += float(model(**batch)) * n
                count += n
    model.train(was_training)
    return total / count if count else float("nan")


def train_mlm(args: MLMArgs) -> dict:
    """Run the whole recipe; returns the training record (also written to mlm_training.json)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .training import enable_cpu_ranks, shutdown

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
    train_docs, heldout_docs, report = collect_documents(corpora, sample=args.sample, seed=args.seed,
                                                         heldout_share=args.heldout_share,
                                                         exclude_tests_of=args.exclude_tests_of)
    if not train_docs:
        raise SystemExit(f"no training text in {corpora}: {[(c.corpus, c.skipped) for c in report.corpora]}")
    packed = pack(train_docs, tokenizer, args.seq_length, with_offsets=args.whole_word_mask)
    for entry in report.corpora:
        entry.tokens = packed.per_corpus_tokens.get(entry.corpus, 0)
    held = pack(heldout_docs, tokenizer, args.seq_length, with_offsets=args.whole_word_mask) if heldout_docs else None
    data_seconds = time.time() - t_start
    accelerator.print(f"[mlm] {len(train_docs)} documents, {packed.tokens} sub-words in {len(packed.input_ids)} "
                      f"sequences of <= {args.seq_length} ({data_seconds:.0f} s); held out: {len(heldout_docs)} documents")

    collate = MaskingCollator(tokenizer, packed, args.mlm_probability, args.whole_word_mask)
    loader = DataLoader(list(range(len(packed.input_ids))), batch_size=args.batch_size, shuffle=True,
                        collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))
    eval_batches = []
    if held is not None:
        eval_collate = MaskingCollator(tokenizer, held, args.mlm_probability, args.whole_word_mask, seed=args.seed + 1)
        n_eval = min(len(held.input_ids), args.max_heldout_sequences)
        eval_batches = [eval_collate(list(range(i, min(i + args.batch_size, n_eval))))
                        for i in range(0, n_eval, args.batch_size)]

    # Pre-trained weights and the weights initialised here (a new MLM head) in separate groups: with
    # --head_warmup_steps the pre-trained ones keep learning rate 0 at first, so that a random head's
    # first large gradients do not rewrite the encoder. (A learning rate of 0 rather than frozen
    # weights: under several ranks DDP needs the same weights to take gradients throughout.)
    new_weights = set(initialised)
    groups = []
    for pretrained in (True, False):
        for decay in (True, False):
            params = [p for n, p in model.named_parameters() if (n not in new_weights) == pretrained
                      and ("bias" in n or "norm" in n.lower()) != decay]
            if params:
                groups.append({"params": params, "weight_decay": args.weight_decay if decay else 0.0,
                               "pretrained": pretrained})
    if args.head_warmup_steps and not new_weights:
        accelerator.print("[mlm] --head_warmup_steps: the model loaded with its MLM head, nothing to warm up")
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)
    mlm = MaskedOnlyLoss(model)
    wrapped, optimizer, loader = accelerator.prepare(mlm, optimizer, loader)

    steps_per_epoch = max(1, math.ceil(len(loader) / args.grad_accum))
    epochs = args.epochs
    if epochs is None:
        epochs = 1000 if (args.max_steps or args.max_seconds) else 1
    planned = int(math.ceil(steps_per_epoch * epochs))
    if args.max_steps:
        planned = min(planned, args.max_steps)
    multi = accelerator.num_processes > 1

    unwrapped = accelerator.unwrap_model(wrapped)  # the loss module; unwrapped.model is the MLM model
    device = accelerator.device
    heldout_before = evaluate_loss(unwrapped, eval_batches, device) if eval_batches else None
    if heldout_before is not None:
        accelerator.print(f"[mlm] held-out MLM loss before: {heldout_before:.4f}")
    history, evals = [], ([{"step": 0, "heldout_loss": heldout_before}] if heldout_before is not None else [])
    step, tokens, window_loss, window_n, stop = 0, 0, 0.0, 0, False
    time_bound = bool(args.max_seconds) and not args.max_steps and args.epochs is None
    bar = tqdm(total=None if time_bound else planned, desc="mlm", disable=not accelerator.is_local_main_process)
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
                    elapsed = time.time() - t0
                    progress = (step + 1) / planned if planned else 0.0
                    if args.max_seconds:
                        progress = max(progress, elapsed / args.max_seconds)
                    for group in optimizer.param_groups:
                        held = group.get("pretrained") and new_weights and step < args.head_warmup_steps
                        group["lr"] = 0.0 if held else args.learning_rate * schedule_factor(progress, args.warmup_ratio)
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
                record = {"step": step, "loss": round(window_loss / window_n, 4),
                          "lr": optimizer.param_groups[0]["lr"], "seconds": round(elapsed, 1),
                          "tokens_per_s": round(tokens / max(elapsed, 1e-9), 1)}
                history.append(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                window_loss, window_n = 0.0, 0
            if args.eval_steps and step % args.eval_steps == 0 and eval_batches:
                evals.append({"step": step, "heldout_loss": evaluate_loss(unwrapped, eval_batches, device)})
            over_time = bool(args.max_seconds) and elapsed >= args.max_seconds
            if multi:
                if over_time:
                    accelerator.set_trigger()
                over_time = accelerator.check_trigger()
            if step >= planned or over_time:
                stop = True
                break
        epoch += 1
    bar.close()
    train_seconds = time.time() - t0
    if window_n:
        history.append({"step": step, "loss": round(window_loss / window_n, 4), "lr": optimizer.param_groups[0]["lr"],
                        "seconds": round(train_seconds, 1), "tokens_per_s": round(tokens / max(train_seconds, 1e-9), 1)})
    heldout_after = evaluate_loss(unwrapped, eval_batches, device) if eval_batches else None
    if heldout_after is not None:
        evals.append({"step": step, "heldout_loss": heldout_after})
        accelerator.print(f"[mlm] held-out MLM loss after {step} steps: {heldout_after:.4f}")

    record = {
        "options": asdict(args), "encoder": args.encoder or DEFAULT_ENCODER, "encoder_path": path,
        "base_model": base_model_id(args.encoder), "corpora": corpora,
        "data": {**asdict(report), "documents": len(train_docs), "heldout_documents": len(heldout_docs),
                 "sequences": len(packed.input_ids), "tokens": packed.tokens,
                 "heldout_sequences_scored": sum(len(b["input_ids"]) for b in eval_batches)},
        "initialised_weights": initialised, "decoder_tied_to_embeddings": heads_tied(unwrapped.model),
        "steps": step, "epochs_seen": round(tokens / max(1, sum(map(len, packed.input_ids))), 3),
        "train_tokens": tokens, "train_seconds": round(train_seconds, 1), "data_seconds": round(data_seconds, 1),
        "train_tokens_per_s": round(tokens / max(train_seconds, 1e-9), 1),
        "history": history, "heldout": evals, "heldout_loss_before": heldout_before, "heldout_loss_after": heldout_after,
        "machine": machine(), "transformers": _version("transformers"), "torch": _version("torch"),
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        unwrapped.model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "mlm_training.json").write_text(json.dumps(record, indent=1))
        with open(out / "pretraining_documents.tsv", "w") as f:
            f.write("corpus\tdocument_id\trole\n")
            for role, docs in (("train", train_docs), ("heldout", heldout_docs)):
                for corpus, doc_id, _ in docs:
                    f.write(f"{corpus}\t{doc_id}\t{role}\n")
        (out / "README.md").write_text(model_card(record, out.name if not args.hub_model_id else args.hub_model_id))
        if args.push_to_hub:
            push(out, args.hub_model_id or out.name)
    shutdown(accelerator)
    return record


def base_model_id(encoder: str | None) -> str | None:
    encoder = encoder or DEFAULT_ENCODER
    if encoder in BASE_MODEL_IDS:
        return BASE_MODEL_IDS[encoder]
    if Path(encoder).exists():
        card = Path(encoder) / "mlm_training.json"  # an adapted encoder adapted again: its own base
        if card.exists():
            return json.loads(card.read_text()).get("base_model")
        return None
    return encoder if "/" in encoder else None


def model_card(record: dict, model_id: str) -> str:
    """README.md: what the encoder is, exactly what text it saw, how it was trained, how to use it."""
    o, d = record["options"], record["data"]
    base = record.get("base_model")
    front = ["---", "library_name: transformers", "pipeline_tag: fill-mask", "language: en",
             "tags: [biomedical, domain-adaptive-pretraining, masked-language-modeling, aioner]"]
    if base:
        front.append(f"base_model: {base}")
    license_ = BASE_MODEL_LICENSES.get(record["encoder"])
    if license_:
        front.append(f"license: {license_}")
    front.append("---")
    rows = ["| corpus | file (SHA-256) | split read | documents in split | left out: test ids | left out: "
            "duplicates | held out (loss only) | trained on | sentences | sub-words |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in d["corpora"]:
        if c["skipped"]:
            rows.append(f"| {c['corpus']} | {c['file'] or '—'} | — | — | — | — | — | 0 (skipped: "
                        f"{c['skipped'].splitlines()[0][:120]}) | — | — |")
            continue
        split = "train" + (f" less the fixed dev hold-out ({c['dev_held_out']} documents, never read)"
                           if c["dev_held_out"] else "")
        if c["not_sampled"]:
            split += f"; sample, {c['not_sampled']} not drawn"
        rows.append(f"| {c['corpus']} | `{c['file']}` (`{c['sha256'][:16]}…`) | {split} | {c['documents_in_split']} | "
                    f"{c['excluded_test_ids']} | {c['duplicates']} | {c['heldout_documents']} | {c['documents_used']} | "
                    f"{c['sentences']} | {c['tokens']} |")
    hist = record["history"]
    first, last = (hist[0], hist[-1]) if hist else ({}, {})
    before, after = record.get("heldout_loss_before"), record.get("heldout_loss_after")
    fmt = (lambda x: "—" if x is None else f"{x:.4f}")
    init = record["initialised_weights"]
    head = (f"The encoder had no MLM head: {len(init)} weights were initialised here "
            f"({', '.join(init[:6])}{' …' if len(init) > 6 else ''}); the output layer is "
            f"{'tied to' if record['decoder_tied_to_embeddings'] else 'NOT tied to'} the input embeddings."
            if init else "The encoder's own MLM head was continued.")
    masking = ("whole-word masking (every sub-word of a chosen word replaced by the mask token)"
               if o["whole_word_mask"] else "sub-word masking (80% mask token, 10% random, 10% unchanged)")
    return "\n".join(front + [
        f"# {model_id}",
        "",
        f"`{record['encoder']}`{f' ({base})' if base else ''} after domain-adaptive pre-training: continued "
        f"masked-language-model training on biomedical titles and abstracts of the AIONER training corpora, "
        f"made with `pretrain_mlm.py` of aioner-hf. It is an encoder, meant to be fine-tuned as an AIONER tagger "
        f"(`python train.py --encoder <this folder or id>`).",
        "",
        "## Exactly what text it saw",
        "",
        f"Titles and abstracts/passages of the **train split** of {len([c for c in d['corpora'] if not c['skipped']])} "
        f"corpora, nothing else. No dev or test file was read for text. Every document whose id appears in a test "
        f"split of {'any registered corpus' if o.get('exclude_tests_of') is None else ', '.join(o['exclude_tests_of'])} was left out ({d['test_ids']} test ids from "
        f"{', '.join(f'`{t}`' for t in d['test_files_read'])}"
        + (f"; not available here, so not checked: {', '.join(d['test_files_missing'])}" if d["test_files_missing"] else "")
        + "). Documents with identical text in several corpora were used once. A share of the documents "
          "(by a hash of corpus and id) was held out to measure the MLM loss and was never trained on. "
          "`pretraining_documents.tsv` lists every document id, trained on or held out.",
        "",
        *rows,
        "",
        f"In all: {d['documents']} documents trained on ({d['heldout_documents']} held out), {d['tokens']} sub-words, "
        f"packed (sentences in document order, never cut unless longer than a sequence; documents separated by the "
        f"separator token) into {d['sequences']} sequences of at most {o['seq_length']} sub-words.",
        "",
        "## Training",
        "",
        f"- {record['steps']} optimizer steps of batch {o['batch_size']}×{o['grad_accum']} "
        f"({record['train_tokens']} sub-words processed, {record['epochs_seen']} passes over the text), "
        f"{record['train_seconds']} s ({record['train_tokens_per_s']} sub-words/s) on {record['machine']}",
        f"- {masking}, probability {o['mlm_probability']} (transformers' DataCollatorForLanguageModeling)",
        f"- AdamW, learning rate {o['learning_rate']} (linear warm-up over {o['warmup_ratio']:.0%} of the run, then "
        f"linear decay{' over the ' + str(o['max_seconds']) + ' s budget' if o['max_seconds'] else ''}), "
        f"weight decay {o['weight_decay']}, gradient clipping {o['max_grad_norm']}, seed {o['seed']}"
        + (f"; the first {o['head_warmup_steps']} steps trained only the new head (encoder at learning rate 0)"
           if o.get("head_warmup_steps") else ""),
        f"- {head}",
        f"- training loss (mean of the first logged window → last): {fmt(first.get('loss'))} (step "
        f"{first.get('step', '—')}) → {fmt(last.get('loss'))} (step {last.get('step', '—')})",
        f"- held-out MLM loss ({d['heldout_sequences_scored']} sequences, fixed masks): {fmt(before)} before → "
        f"{fmt(after)} after",
        f"- command: `{o['command']}`",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        f"encoder = AutoModel.from_pretrained(\"{model_id}\")",
        "```",
        "",
        f"```\npython train.py --recipe single --corpora BioRED --encoder {model_id} --output_dir runs/biored\n```",
        "",
        "The corpora's licenses apply to what the model may have memorised of them (see the aioner-hf "
        "corpus registry, `dataset_scripts/corpora.py`).",
        "",
    ])


def push(out: Path, repo_id: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id)
    print(f"pushed {out} to https://huggingface.co/{repo_id}")


def machine() -> str:
    from aioner.training import describe_machine

    return describe_machine()


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ----- command line -----
def parse_args(argv=None) -> MLMArgs:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", help="Hub id, folder or embedded:NAME (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--corpora", nargs="+", help="corpora whose TRAIN split gives the text "
                                                 "(default: the AIO training corpora, BioRED included)")
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--sample", type=float, help="per corpus: a fraction (<1) or a count of training documents")
    ap.add_argument("--heldout_share", type=float, default=0.02,
                    help="share of the documents kept apart to measure the MLM loss (never trained on)")
    ap.add_argument("--exclude_tests_of", nargs="+", metavar="CORPUS",
                    help="leave out documents whose id is in these corpora's test sets (default: every registered "
                         "corpus with a test set)")
    ap.add_argument("--epochs", type=float, help="passes over the text (default 1, or unbounded under "
                                                 "--max_steps/--max_seconds)")
    ap.add_argument("--max_steps", type=int, default=0, help="stop after N optimizer steps (0: no limit)")
    ap.add_argument("--max_seconds", type=float, default=0,
                    help="wall-clock budget of the training loop in seconds (0: none); the learning rate decays over it")
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--grad_accum", type=int, default=1)
    ap.add_argument("--learning_rate", type=float, default=1e-4)
    ap.add_argument("--weight_decay", type=float, default=0.01)
    ap.add_argument("--warmup_ratio", type=float, default=0.06)
    ap.add_argument("--head_warmup_steps", type=int, default=0,
                    help="first N optimizer steps train only the weights the model lacked (a new MLM head), "
                         "the pre-trained encoder at learning rate 0")
    ap.add_argument("--whole_word_mask", action="store_true", help="mask whole words (all their sub-words)")
    ap.add_argument("--mlm_probability", type=float, default=0.15)
    ap.add_argument("--seq_length", type=int, default=128)
    ap.add_argument("--mixed_precision", choices=["no", "bf16", "fp16"])
    ap.add_argument("--log_steps", type=int, default=10)
    ap.add_argument("--eval_steps", type=int, default=0, help="held-out loss every N steps (0: before and after only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    ap.add_argument("--push_to_hub", action="store_true")
    ap.add_argument("--hub_model_id", help="Hub repository for --push_to_hub (default: the output folder name)")
    ns = ap.parse_args(argv)
    if not ns.max_steps and not ns.max_seconds and ns.epochs is None:
        ns.epochs = 1.0
    command = "python pretrain_mlm.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    return MLMArgs(**{k: v for k, v in vars(ns).items()}, command=command)


def main(argv=None) -> int:
    args = parse_args(argv)
    record = train_mlm(args)
    print(json.dumps({k: record[k] for k in ("steps", "train_seconds", "train_tokens_per_s", "heldout_loss_before",
                                              "heldout_loss_after")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
