"""Reproduce the AIONER paper's experiments (Tables 2-4, Figures 3-4) and GERBERA's, on any encoder.

    python -m benchmarks.reproduce table2 --scale cpu          # BioRED: baseline vs AIONER, per type, Wilcoxon
    python -m benchmarks.reproduce table3 --scale cpu --reuse  # each external corpus: its own model vs the AIO model
    python -m benchmarks.reproduce fig3 --scale full           # 10/50/100 BioRED abstracts, with / without externals
    python -m benchmarks.reproduce fig4 --dry_run              # AnatEM: baseline, AIONER-Pretrained, AIONER-Merged
    python -m benchmarks.reproduce gerbera --scale cpu         # NCBI-Disease, JNLPBA: alone vs + CoNLL-2003
    python -m benchmarks.reproduce crf_vs_softmax --scale cpu  # F1 and tagging time of both output layers
    python -m benchmarks.reproduce context --scale cpu         # sentence windows vs packed sentences vs margins (issue 18)
    python -m benchmarks.reproduce head --scale cpu            # dense vs BiLSTM head, three seeds each (issue 18)
    python -m benchmarks.reproduce cross_encoder --scale cpu   # MiniLM + mpnet (two tokenizers) vs mpnet (issue 18)
    python -m benchmarks.reproduce best_model --scale cpu      # issue 18's levers one at a time, then combined

Every model is one ``python train.py ...`` run in its own folder ``<runs_dir>/<scale>/<name>``.
train.py's own test scoring is switched off (``--eval_test`` with no corpus): this script scores
each model itself: ``aioner.prediction.predict_corpus`` tags the test set with the corpus' task,
``aioner.evaluation.score_predictions`` scores it, and the predictions are kept (cached in
``<run>/repro_eval/``; tagged again once the tagging code changes) for the paired Wilcoxon test.
An interrupted run is resumed (``--resume_from_checkpoint latest``); a finished one is retrained
never: it is reused with ``--reuse``, and always when it belongs to another experiment (table3
reuses table2's AIO model).
Results: ``<results_dir>/<experiment>_<scale>.json`` and a Markdown table beside it (also printed).
Relative ``--runs_dir`` / ``--results_dir`` are taken from the repository root.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aioner.atomic_files import write_text
from aioner.encoders import DEFAULT_ENCODER
from aioner_scheme import DEFAULT_ENTITY_TYPES
from benchmarks.common import (
    REPO,
    command,
    f1_fields,
    machine,
    now,
    pct,
    root_path,
    run_python,
    shown,
    training_seconds,
    write_result,
)

# ----- scales: everything that changes between a GPU reproduction and a CPU one -----
# sample: per corpus, a fraction (< 1) or a count of training documents (train.py --sample). It is
# applied alike to every system compared (table2, table3, crf_vs_softmax), to the external corpora of
# fig3 and to the AIO part of fig4's merged model; never to GERBERA's target (stage 1 of the gerbera
# recipe ignores --sample) nor to fig4's AnatEM (the merged recipe ignores it for the new corpus), so
# that the systems compared there see the same target data.
SCALES = {
    # The paper's setting (section 2.3): all data, up to 20 epochs, patience 5. Meant for a GPU.
    "full": {
        "sample": None,
        "epochs": 20,
        "patience": 5,
        "batch_size": 32,
        "max_steps": 0,
        "general_sample": None,
        "aio_corpora": None,
        "fig3_sizes": [10, 50, 100],
        "fig3_equal_steps": False,
        "bio_red_whole": False,
        "bf16": False,
        "single_epochs": None,
        "single_patience": None,
        "best_sample": None,
        "best_epochs": 20,
        "best_patience": 5,
        "best_combined_epochs": None,
    },
    # A 2-core CPU (see benchmarks/README.md for the hours): all of BioRED (table2's target, so its
    # baseline is the paper's) but 10% of each other training set, 3 epochs.
    # In bf16 since issue 17: bf16 training measured within the fp32 seed spread at 1.38x the tokens/s
    # (results/bf16_training_cpu.json); table2_cpu.json predates it (fp32).
    # single_epochs: the single-corpus models of table3 see 10% of a corpus (12 optimizer steps an epoch
    # for GNormPlus): at 3 epochs they have not converged (NCBI-Disease dev F1 0 -> 6.7 -> 36.5), so they
    # get more epochs, with early stopping; the multi-corpus models take hundreds of steps an epoch.
    "cpu": {
        "sample": 0.1,
        "epochs": 3,
        "patience": 5,
        "batch_size": 32,
        "max_steps": 0,
        "bio_red_whole": True,
        "general_sample": 0.25,
        "aio_corpora": None,
        "fig3_sizes": [10, 50, 100],
        "fig3_equal_steps": True,
        "bf16": True,
        "single_epochs": 10,
        "single_patience": 3,
        "best_sample": None,
        "best_epochs": 4,
        "best_patience": 2,
        "best_combined_epochs": 1,
    },
    # A 2-core CPU with every training document (issue 17), at the cpu scale's 3 epochs, in bf16: on this
    # CPU bf16 training measured 1.38x fp32's tokens/s at equal F1 (results/bf16_training_cpu.json).
    "cpu_full": {
        "sample": None,
        "epochs": 3,
        "patience": 5,
        "batch_size": 32,
        "max_steps": 0,
        "bio_red_whole": False,
        "general_sample": None,
        "aio_corpora": None,
        "fig3_sizes": [10, 50, 100],
        "fig3_equal_steps": True,
        "bf16": True,
        "single_epochs": None,
        "single_patience": None,
        "best_sample": None,
        "best_epochs": 4,
        "best_patience": 2,
        "best_combined_epochs": 1,
    },
    # The test suite: two optimizer steps on a few documents of two corpora (a tiny encoder).
    "smoke": {
        "sample": 4,
        "epochs": 1,
        "patience": 1,
        "batch_size": 8,
        "max_steps": 2,
        "general_sample": 20,
        "aio_corpora": ["BioRED", "NCBI-Disease"],
        "fig3_sizes": [2],
        "fig3_equal_steps": False,
        "bio_red_whole": False,
        "bf16": False,
        "single_epochs": None,
        "single_patience": None,
        "best_sample": 4,
        "best_epochs": 1,
        "best_patience": 1,
        "best_combined_epochs": None,
    },
}
# aio_corpora None: BioRED + every external corpus (dataset_scripts.corpora.AIO_TRAINING_CORPORA).
# best_*: best_model's all-data runs (issue 18, lever 3): --sample (None: every training document),
# epochs and patience (early stopping on dev F1). best_combined_epochs: the combination's epochs (None:
# best_epochs). On a 2-core CPU one epoch of it (mpnet + BiLSTM, 2,632 steps) takes ~2 h in bf16 on an AMX
# Xeon, so it finishes inside one 3-hour session: a 4-epoch run was lost with its machine's runs/ at
# step ~2,000, and runs/ does not always come back to the next session.

# ----- expected time: measured rates of the embedded MiniLM on the 2-core CPU (shared/STACK_NOTES.md) -----
TRAIN_TOKENS_PER_S = 1100  # training step, fp32 (1,143 measured)
TAG_TOKENS_PER_S = 6000  # inference, fp32 (5,943 measured): dev scoring each epoch, test tagging
TOKENS_PER_SENTENCE = 40
# Sub-words (task tags included) of each split, measured once on shared/corpora with the MiniLM
# tokenizer: (training documents, train tokens, dev tokens, test tokens). Sentence corpora (IOB,
# CoNLL) count sentences as documents, as --sample does. None: the file is not held locally.
CORPUS_TOKENS = {
    "BioRED": (450, 204996, 21644, 46323),
    "GNormPlus": (380, 140363, 19617, 95875),
    "NLM-Gene": (410, 205460, 19254, 49516),
    "NCBI-Disease": (611, 206040, 26981, 35369),
    "BC5CDR-Disease": (892, 308527, 35070, 180888),
    "BC5CDR-Chemical": (892, 308518, 35070, 180888),
    "NLM-Chem": (None, None, None, 436665),
    "Linnaeus": (73, 526691, 40758, 158484),
    "Species-800": (558, 211589, 31982, 56777),
    "tmVar3": (316, 136766, 11223, 71028),
    "BioID": (8737, 959987, 106264, 465665),
    "CoNLL-2003": (14041, 308207, 75947, 71736),
    "JNLPBA": (None, None, 74714, 164432),
    "JNLPBA-devel": (1565, 67243, 7471, 164432),  # devel less 10%
    "AnatEM": (5861, 217470, 87156, 142901),
    "AnEM": (2526, 92052, 10617, None),
}

# ----- what every report shares (the papers' own numbers are in paper_experiments.py) -----
TYPES = list(DEFAULT_ENTITY_TYPES)  # also the column order of the papers' per-type numbers
ENCODER_NOTE = (
    "The paper's numbers are PubMedBERT-CRF's; our encoder differs (see 'encoder'), the CPU scales train "
    "for fewer epochs (3; the paper up to 20) and the cpu scale on 10% of each external corpus: compare "
    "differences between systems, not levels."
)

ENCODER_DEFAULT = DEFAULT_ENCODER


# ----- runs -----
@dataclass(frozen=True)
class Run:
    name: str  # folder under <runs_dir>/<scale>/
    options: tuple  # train.py options, before the scale's and --output_dir
    owner: str  # the experiment that trains it; others only reuse it
    train_tokens: float = 0  # per epoch, for the time estimate
    dev_tokens: float = 0  # scored after each epoch
    epochs: int | None = None  # None: the scale's
    patience: int | None = None
    batch_size: int | None = None  # None: the scale's


def share(corpus: str, sample) -> float:
    """Training tokens of ``corpus`` under --sample (a fraction or a document count)."""
    docs, tokens, _, _ = CORPUS_TOKENS.get(corpus, (None, None, None, None))
    if not tokens:
        return 0
    if sample is None or sample == "all":
        return tokens
    return tokens * (sample if sample < 1 else min(1.0, sample / docs))


def dev(corpus: str) -> float:
    return CORPUS_TOKENS.get(corpus, (0, 0, 0, 0))[2] or 0


def fmt(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class Context:
    """One invocation: options, scale, folders, and the scores gathered so far."""

    def __init__(self, args):
        self.args, self.scale, self.experiment = args, SCALES[args.scale], args.experiment
        self.runs_root = root_path(args.runs_dir) / args.scale
        self.results_dir = root_path(args.results_dir)
        self.train_info: dict[str, dict] = {}
        self.scores: dict[tuple[str, str], dict] = {}
        self.pending: dict[str, str] = {}  # --report_finished: run name -> how far it got

    @property
    def bf16(self) -> bool:
        """The scale's bf16 training, where it is native: a GPU that computes bf16 (train.py trains there when one
        is present), or a CPU with AVX512-BF16 or AMX (emulated, bf16 trains many times slower than fp32)."""
        from pipeline_aioner import native_bf16

        return bool(self.scale.get("bf16")) and native_bf16()

    @property
    def aio_corpora(self) -> list[str]:
        from dataset_scripts.corpora import AIO_TRAINING_CORPORA

        return self.scale["aio_corpora"] or list(AIO_TRAINING_CORPORA)

    def folder(self, run: Run) -> Path:
        return self.runs_root / run.name

    def run(
        self, recipe, corpus=None, sample=None, extra=(), tag="", owner=None, train_tokens=None, dev_tokens=None
    ) -> Run:
        """A train.py run; named from what distinguishes it (recipe, corpus, sample, tag)."""
        options = ["--recipe", recipe] + (["--corpora", corpus] if corpus else [])
        options += (["--sample", fmt(sample)] if sample is not None else []) + list(extra)
        name = "-".join(p for p in (recipe, corpus, None if sample is None else f"s{fmt(sample)}", tag) if p)
        if train_tokens is None:
            train_tokens, dev_tokens = share(corpus, sample), dev(corpus)
        return Run(name, tuple(options), owner or self.experiment, train_tokens, dev_tokens)

    # The models several experiments share: table2's baseline and AIO model.
    def baseline(self, corpus="BioRED", decoder="crf", owner=None) -> Run:
        extra, tag = (["--decoder", "softmax"], "softmax") if decoder == "softmax" else ((), "")
        owner = owner or ("table2" if corpus == "BioRED" and decoder == "crf" else self.experiment)
        whole = corpus == "BioRED" and self.scale.get("bio_red_whole")
        run = self.run("single", corpus, None if whole else self.scale["sample"], extra, tag, owner)
        if not whole and self.scale.get("single_epochs"):  # a sampled corpus alone: few steps an epoch
            run = replace(run, epochs=self.scale["single_epochs"], patience=self.scale["single_patience"])
        return run

    def aioner(self, decoder="crf", bio_red=None, extra=(), tag="", owner=None) -> Run:
        """The AIO model; ``bio_red``: a BioRED document count that overrides the scale's sample (fig3)."""
        corpora, sample = self.aio_corpora, self.scale["sample"]
        owner = owner or ("table2" if decoder == "crf" and not extra and bio_red is None else self.experiment)
        if bio_red is None and self.scale.get("bio_red_whole"):
            bio_red = "all"
        options = list(extra) + (["--corpora", *corpora] if self.scale["aio_corpora"] else [])
        if bio_red is not None:
            options += ["--corpus_sample", f"BioRED={bio_red}"]
            tag = "-".join(p for p in (f"BioRED{bio_red}", tag) if p)
        if decoder == "softmax":
            options, tag = options + ["--decoder", "softmax"], "-".join(p for p in (tag, "softmax") if p)
        tokens = sum(share(c, bio_red if c == "BioRED" and bio_red is not None else sample) for c in corpora)
        return self.run("aioner", None, sample, options, tag, owner, tokens, sum(dev(c) for c in corpora))

    def mtl(self, corpora=None, whole=(), extra=(), tag="", owner=None) -> Run:
        """The MTL baseline (one output layer per corpus, no task tags) over ``corpora`` (default: the AIO
        model's), each at the scale's sample but ``whole`` (and BioRED where the scale keeps it whole)."""
        sample = self.scale["sample"]
        corpora = list(corpora or self.aio_corpora)
        whole = [c for c in corpora if c in whole or (c == "BioRED" and self.scale.get("bio_red_whole"))]
        options = ["--corpora", *corpora] if corpora != self.aio_corpora or self.scale["aio_corpora"] else []
        options += ["--corpus_sample", *(f"{c}=all" for c in whole)] if whole and sample is not None else []
        tokens = sum(share(c, None if c in whole else sample) for c in corpora)
        return self.run("mtl", None, sample, options + list(extra), tag, owner, tokens, sum(dev(c) for c in corpora))

    # ----- commands -----
    def command(self, run: Run) -> list[str]:
        s, a = self.scale, self.args
        cmd = [
            "train.py",
            *run.options,
            "--epochs",
            str(run.epochs or s["epochs"]),
            "--patience",
            str(run.patience or s["patience"]),
            "--batch_size",
            str(run.batch_size or s["batch_size"]),
        ]
        cmd += ["--max_steps", str(s["max_steps"])] if s["max_steps"] else []
        # A run that names its own encoder (cross_encoder's second one) keeps it.
        cmd += ["--encoder", a.encoder] if a.encoder and "--encoder" not in run.options else []
        cmd += ["--bf16"] if self.bf16 else []
        # Saved state every 200 steps: a long run interrupted mid-epoch loses at most 200 steps.
        cmd += ["--save_steps", "200"] if not s["max_steps"] else []
        # --eval_test with no corpus: no test scoring in train.py, this script scores (and keeps predictions).
        return cmd + ["--eval_test", "--output_dir", shown(self.folder(run))]

    def status(self, run: Run) -> str:
        """'done' (results.json), 'partial' (an interrupted run to resume) or 'new'."""
        folder = self.folder(run)
        return "done" if (folder / "results.json").exists() else "partial" if folder.exists() else "new"

    def progress_of(self, run: Run) -> str:
        """How far an unfinished run got: its last saved state, for a report that leaves it out."""
        from aioner.training import latest_progress, state_dir

        p = latest_progress(self.folder(run))
        if not p:
            return "not started" if self.status(run) == "new" else "started, no saved state"
        state = state_dir(self.folder(run), p["global_step"])
        return f"interrupted: {p['epoch']} epoch(s) done, saved at step {p['global_step']} ({shown(state)})"

    def reusable(self, run: Run) -> bool:
        return self.args.reuse or run.owner != self.experiment

    def train(self, run: Run) -> None:
        folder, status = self.folder(run), self.status(run)
        if status == "done":
            if not self.reusable(run):
                raise SystemExit(
                    f"{shown(folder)} already holds a finished run: pass --reuse to use it, "
                    "or remove the folder to train it again"
                )
            info = json.loads((folder / "results.json").read_text())
            self.train_info[run.name] = {
                "command": info.get("command"),
                "train_seconds": training_seconds(info),
                "reused": True,
                **progress(info),
            }
            print(f"[reproduce] reusing {shown(folder)}")
            return
        cmd = self.command(run) + (["--resume_from_checkpoint", "latest"] if status == "partial" else [])
        print(f"[reproduce] {'resuming' if status == 'partial' else 'training'}: python {shlex.join(cmd)}", flush=True)
        start = time.time()
        run_python(cmd)
        info = json.loads((folder / "results.json").read_text())
        self.train_info[run.name] = {
            "command": "python " + shlex.join(cmd),
            "train_seconds": training_seconds(info),
            "wall_seconds": round(time.time() - start, 1),
            "reused": False,
            **progress(info),
        }

    # ----- scoring -----
    def evaluate(self, run: Run, corpus: str) -> dict:
        """The run's model on the corpus' test set with the corpus' own task (``tag_test_set``); cached
        until the tagging code changes."""
        key = (run.name, corpus)
        if key not in self.scores:
            folder, precision = self.folder(run), self.args.tag_precision
            self.scores[key] = read_cache(folder, corpus, precision=precision) or tag_test_set(
                folder, corpus, precision
            )
        return self.scores[key]

    def system(self, run: Run, corpus: str) -> dict:
        """One system's entry in a results file: F1 (%), overall and per type, and its run."""
        r = self.evaluate(run, corpus)
        return {
            **f1_fields(r),
            "task": r["task"],
            "tagging_seconds": r["tagging_seconds"],
            "tagging_precision": r.get("precision", "fp32"),
            "run": shown(self.folder(run)),
            **self.train_info.get(run.name, {}),
        }

    def wilcoxon(self, a: Run, b: Run, corpus: str) -> dict:
        """Two-sided Wilcoxon signed-rank on per-document strict F1, ``a`` against ``b``."""
        from aioner.significance import wilcoxon_test

        texts, _, gold = gold_documents(corpus)
        ids = [str(i) for i in range(len(texts))]
        pred_a, pred_b = ([tuple(e) for e in self.evaluate(r, corpus)["predictions"]] for r in (a, b))
        return {"a": a.name, "b": b.name, **wilcoxon_test(gold, pred_a, pred_b, documents=ids)}


# What a cached prediction depends on besides the model: words and sentences, windows, the model's
# forward pass and decoding. A prediction cached by other versions of these is tagged again.
TAGGING_CODE = ("aioner_text.py", "aioner_scheme.py", "modeling_aioner.py", "pipeline_aioner.py")


@functools.cache
def tagging_code() -> str:
    """A digest of TAGGING_CODE as this checkout has it."""
    digest = hashlib.sha256()
    for name in TAGGING_CODE:
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_path(folder: Path, corpus: str) -> Path:
    """Where ``tag_test_set`` keeps the result of the model in ``folder`` on the corpus' test set."""
    return folder / "repro_eval" / f"{corpus}.json"


def read_cache(folder: Path, corpus: str, any_code: bool = False, precision: str = "fp32") -> dict | None:
    """``tag_test_set``'s cached result for the model in ``folder``: only if today's tagging code made it
    (unless ``any_code``) in ``precision`` (results cached before precision was recorded are fp32)."""
    cache = cache_path(folder, corpus)
    if not cache.exists():
        return None
    result = json.loads(cache.read_text())
    if result.get("precision", "fp32") != precision:
        return None
    return result if any_code or result.get("tagging_code") == tagging_code() else None


def tag_test_set(folder: Path, corpus: str, precision: str = "fp32") -> dict:
    """Tag the corpus' test set, with the corpus' own task, by the model in ``folder`` in ``precision``, and
    cache it there: score_predictions' result, the predictions ([document, start, end, type] lists), the
    tagging code and the precision."""
    from aioner.evaluation import score_predictions
    from aioner.prediction import predict_corpus

    cache = cache_path(folder, corpus)
    stale = " (cached by other tagging code)" if cache.exists() else ""
    print(f"[reproduce] tagging {corpus} test with {shown(folder)} in {precision}{stale}", flush=True)
    prediction = predict_corpus(tagger_for(folder, precision), corpus)
    result = score_predictions(prediction)
    result["predictions"] = [list(e) for e in prediction.entities()]
    result["tagging_code"], result["precision"] = tagging_code(), precision
    cache.parent.mkdir(exist_ok=True)
    write_text(cache, json.dumps(result))  # a run stopped mid-write leaves the old cache or none
    return result


def tagger_for(folder: Path, precision: str = "fp32"):
    """The model in ``folder`` as a tagger; fp32 by default, as every earlier result."""
    import torch

    from aioner.checkpoint import load_checkpoint
    from pipeline_aioner import PRECISIONS, AIONERTagger

    model, tokenizer = load_checkpoint(str(folder), "cuda" if torch.cuda.is_available() else None)
    return AIONERTagger(model, tokenizer, autocast_dtype=PRECISIONS[precision])


@functools.cache
def gold_documents(corpus: str):
    from aioner.prediction import corpus_documents

    return corpus_documents(corpus)


def progress(results: dict) -> dict:
    """Dev F1 and measured training speed from train.py's results.json."""
    history = results.get("history") or []
    speeds = [h["train_tokens_per_s"] for h in history if h.get("train_tokens_per_s")]
    return {
        "best_dev_f1": pct(results["best_dev_f1"]) if results.get("best_dev_f1") is not None else None,
        "epochs_run": len(history),
        "train_tokens_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
    }


def unavailable_training(corpora, download: bool) -> dict[str, str]:
    """Corpora whose training file cannot be had (not local, not cached, no download): name -> why."""
    from dataset_scripts.corpora import CorpusUnavailableError, downloads_allowed, fetch, get_corpus

    out = {}
    for name in corpora:
        try:
            fetch(get_corpus(name).splits["train"], allow_download=download and downloads_allowed())
        except CorpusUnavailableError as err:
            out[name] = str(err)
    return out


# ----- experiments: each returns a Plan (the runs, the test sets to tag, and how to report) -----
# The papers' experiments are in paper_experiments.py, issue 18's levers in levers.py (see experiments()).
@dataclass
class Plan:
    runs: list[Run]
    evals: list[tuple[Run, str]]  # (model, test corpus), tagged with the corpus' own task
    report: Callable[[], tuple[dict, str]]
    notes: list[str] = field(default_factory=list)  # printed up front (dry run too)
    extra_seconds: float = 0  # other expected work (tagging-time measurements)
    reports_unfinished: bool = False  # its report marks unfinished runs (ctx.pending) instead of needing them


def time_tagging(tagger, corpus: str, repeats: int) -> float:
    """Seconds ``tagger`` takes to tag a test set (best of ``repeats``, after a short warm-up): less noise
    from other jobs."""
    from dataset_scripts.corpora import get_corpus

    texts, passages, _ = gold_documents(corpus)
    task = get_corpus(corpus).task
    tagger.tag(texts[:5], task, passages[:5])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tagger.tag(texts, task, passages)
        best = min(best, time.perf_counter() - start)
    return round(best, 2)


# ----- figures (matplotlib, headless) -----
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_chart(path: Path, xs: list, series: dict[str, list], xlabel: str, ylabel: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, ys in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, xticks=xs)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bar_chart(path: Path, values: dict[str, float], ylabel: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    bars = ax.bar(list(values), list(values.values()), color="#4c72b0")
    ax.bar_label(bars, fmt="%.1f")
    ax.set(ylabel=ylabel)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def grouped_bar_chart(
    path: Path, groups: list[str], series: dict[str, list], ylabel: str, colours: dict, hatched=()
) -> None:
    """One cluster of bars per group, one bar per series (a None value: no bar). Series named in ``hatched``
    are drawn hatched and paler: a second protocol beside the first, in the same colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups)), 4.2))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        pale = name in hatched
        ax.bar(  # a NaN height draws no bar
            [g + offset for g in range(len(values))],
            [math.nan if v is None else v for v in values],
            width,
            label=name,
            color=colours[name],
            alpha=0.5 if pale else 1.0,
            hatch="///" if pale else None,
            edgecolor="white" if pale else None,
        )
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, ylim=(0, 100))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def as_score(paper: dict) -> dict:
    """A paper row (F1 in %) shaped like score_entities' output, for format_table."""
    return {
        "overall": {"f1": paper["overall_f1"] / 100},
        "per_type": {t: {"f1": f / 100} for t, f in paper["per_type_f1"].items()},
    }


def experiments() -> dict[str, Callable[[Context], Plan]]:
    """Experiment name -> the function that plans it. Their modules import this one, so they are loaded
    here, when first asked for, not when this module is."""
    from benchmarks import levers
    from benchmarks import paper_experiments as paper

    papers = (paper.table2, paper.table3, paper.fig3, paper.fig4, paper.gerbera, paper.crf_vs_softmax)
    return {f.__name__: f for f in (*papers, levers.context, levers.head, levers.cross_encoder, levers.best_model)}


# Results files named after the paper's table where the experiment's name says what it compares.
RESULT_NAMES = {"crf_vs_softmax": "table4"}


# ----- time estimate, main -----
def run_seconds(ctx: Context, run: Run) -> float:
    """Upper bound for one run: every epoch runs (early stopping only shortens it), dev scored after each."""
    s = ctx.scale
    epochs = run.epochs or s["epochs"]
    tokens = epochs * run.train_tokens
    if s["max_steps"]:
        tokens, epochs = min(tokens, s["max_steps"] * s["batch_size"] * TOKENS_PER_SENTENCE), 1
    return tokens / TRAIN_TOKENS_PER_S + epochs * run.dev_tokens / TAG_TOKENS_PER_S


def expected_seconds(ctx: Context, plan: Plan) -> float:
    """The runs still to train, the test sets still to tag, and any other work of the plan."""
    total = plan.extra_seconds
    total += sum(run_seconds(ctx, r) for r in plan.runs if not (ctx.status(r) == "done" and ctx.reusable(r)))
    for run, corpus in plan.evals:
        if read_cache(ctx.folder(run), corpus, precision=ctx.args.tag_precision) is None:
            total += (CORPUS_TOKENS.get(corpus, (0, 0, 0, 0))[3] or 0) / TAG_TOKENS_PER_S
    return total


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 60 else "1 min"


def parse_args(argv=None) -> argparse.Namespace:
    from benchmarks.levers import CROSS_ENCODER  # levers.py imports this module: read here, not at load

    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("experiment", choices=experiments())
    ap.add_argument("--scale", choices=SCALES, default="cpu")
    ap.add_argument("--encoder", help="passed to train.py (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--runs_dir", default="runs/repro", help="model folders go to <runs_dir>/<scale>/<run>")
    ap.add_argument("--results_dir", default="results")
    ap.add_argument("--reuse", action="store_true", help="use finished runs (results.json) instead of refusing")
    ap.add_argument(
        "--protocols",
        nargs="+",
        choices=["clean", "leaky"],
        default=["clean", "leaky"],
        help="table3: train the MTL and AIO models without the scored corpora's test documents "
        "(clean, the headline) and/or as table2's model (leaky); the first one is the headline",
    )
    ap.add_argument(
        "--cross_encoder",
        default=CROSS_ENCODER,
        help="cross_encoder and best_model: the second encoder, with its own tokenizer (default: %(default)s)",
    )
    ap.add_argument(
        "--tag_precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="test-set tagging under bf16 autocast or not (default fp32, as every earlier result): bf16 tags a "
        "base-size encoder several times faster on a CPU with AMX and moved F1 by -0.15 to +0.28 (README, "
        "precision); each score and cached prediction records it",
    )
    ap.add_argument("--dry_run", action="store_true", help="print the train.py commands and the expected time only")
    ap.add_argument(
        "--report_finished",
        action="store_true",
        help="best_model and table3: train nothing, report the finished runs (--reuse) and list the others as "
        "pending, so what has finished is on record while a long run is still training",
    )
    args = ap.parse_args(argv)
    for name in ("encoder", "cross_encoder"):  # train.py runs in the repository root
        if getattr(args, name) and Path(getattr(args, name)).exists():
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    return args


def update_model_cards(ctx: Context, plan: Plan) -> None:
    """Each trained model's card gets the test scores measured here (model-index and table)."""
    from aioner.model_card import add_results

    for run in plan.runs:
        card = ctx.folder(run) / "README.md"
        results = [
            {k: v for k, v in r.items() if k != "predictions"}
            for (name, _), r in ctx.scores.items()
            if name == run.name
        ]
        if results and card.exists():
            add_results(card, results)


def main(argv=None) -> int:
    args = parse_args(argv)
    ctx = Context(args)
    plan = experiments()[args.experiment](ctx)
    expected = expected_seconds(ctx, plan)
    print(
        f"# {args.experiment} --scale {args.scale}: {len(plan.runs)} runs, {len(plan.evals)} test taggings; "
        f"expected ≤ {hours(expected)} on a 2-core CPU with the embedded MiniLM in fp32 "
        f"({TRAIN_TOKENS_PER_S} training / {TAG_TOKENS_PER_S} tagging tokens/s; a base-size encoder is ~5x slower)"
    )
    for note in plan.notes:
        print(f"# note: {note}")
    if args.dry_run:
        for run in plan.runs:
            state = {
                "done": "finished: reused" if ctx.reusable(run) else "finished: needs --reuse",
                "partial": "interrupted: resumed",
                "new": f"≤ {hours(run_seconds(ctx, run))}",
            }
            print("python " + shlex.join(ctx.command(run)) + "  # " + state[ctx.status(run)])
        return 0
    if args.report_finished:
        if not plan.reports_unfinished:
            raise SystemExit(f"--report_finished: {args.experiment}'s report needs every run")
        args.reuse = True
        ctx.pending = {r.name: ctx.progress_of(r) for r in plan.runs if ctx.status(r) != "done"}
        for name, state in ctx.pending.items():
            # The experiment's report decides: leave it out, or carry its row over from the last results file.
            print(f"# not finished on this machine: {name} ({state})")
    start = time.time()
    for run in plan.runs:
        if run.name not in ctx.pending:
            ctx.train(run)
    for run, corpus in plan.evals:
        if run.name not in ctx.pending:
            ctx.evaluate(run, corpus)
    payload, markdown = plan.report()
    update_model_cards(ctx, plan)
    seconds = {
        "runs": {name: info.get("train_seconds") for name, info in ctx.train_info.items()},
        "total": round(time.time() - start, 1),
        "expected": round(expected),
    }
    result = {
        "experiment": args.experiment,
        "scale": args.scale,
        "scale_settings": ctx.scale,
        "bf16_training": ctx.bf16,  # the scale's bf16 applies only where the CPU has native bf16
        "encoder": args.encoder or ENCODER_DEFAULT,
        "command": command("reproduce", argv),
        "commands": {name: info["command"] for name, info in ctx.train_info.items()},
        **payload,
        "machine": machine(),
        "date": now(),
        "seconds": seconds,
        "notes": plan.notes,
    }
    if ctx.pending:  # what this report lacks, and where it stands
        result["pending"] = {name: {"run": shown(ctx.runs_root / name), "state": s} for name, s in ctx.pending.items()}
    out = ctx.results_dir / f"{RESULT_NAMES.get(args.experiment, args.experiment)}_{args.scale}.json"
    write_result(out, result)
    header = (
        f"# {args.experiment} ({args.scale} scale, encoder {result['encoder']})\n\n"
        f"{result['command']} — {result['date']}, {result['machine']}, {seconds['total']} s\n\n"
    )
    write_text(out.with_suffix(".md"), header + markdown + "\n")
    print("\n" + header + markdown + f"\n\nwritten: {shown(out)} and {shown(out.with_suffix('.md'))}")
    return 0


if __name__ == "__main__":
    # Run with -m, this file is __main__, a second copy of the module beside the benchmarks.reproduce that
    # the experiments import: main runs from that one, so there is one Context, Plan and Run class.
    from benchmarks.reproduce import main as package_main

    sys.exit(package_main())
