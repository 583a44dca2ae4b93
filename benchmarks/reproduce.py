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
``<run>/repro_eval/``) for the paired Wilcoxon test. An interrupted run is resumed
(``--resume_from_checkpoint latest``); a finished one is retrained never: it is reused with
``--reuse``, and always when it belongs to another experiment (table3 reuses table2's AIO model).
Results: ``<results_dir>/<experiment>_<scale>.json`` and a Markdown table beside it (also printed).
Relative ``--runs_dir`` / ``--results_dir`` are taken from the repository root.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aioner.encoders import DEFAULT_ENCODER
from aioner_scheme import DEFAULT_ENTITY_TYPES
from benchmarks.common import command, f1_fields, machine, now, pct, root_path, run_python, shown, write_result

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
    },
}
# aio_corpora None: BioRED + every external corpus (dataset_scripts.corpora.AIO_TRAINING_CORPORA).
# best_*: best_model's all-data runs (issue 18, lever 3): --sample (None: every training document),
# epochs and patience (early stopping on dev F1).

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

# ----- the papers' numbers (strict F1, %) -----
TYPES = list(DEFAULT_ENTITY_TYPES)  # also the column order of the papers' per-type numbers below
PAPER_ENCODER = "PubMedBERT-CRF"
ENCODER_NOTE = (
    "The paper's numbers are PubMedBERT-CRF's; our encoder differs (see 'encoder') and the cpu "
    "scale trains on less data for fewer epochs: compare differences between systems, not levels."
)
PAPER_TABLE2 = {  # AIONER Table 2, BioRED test set
    "baseline": {"overall_f1": 89.34, "per_type_f1": dict(zip(TYPES, [92.35, 83.47, 88.55, 96.98, 87.34, 90.53]))},
    "aioner": {"overall_f1": 91.26, "per_type_f1": dict(zip(TYPES, [92.40, 88.07, 90.98, 97.50, 88.51, 90.53]))},
    "wilcoxon": "p < 0.05 (two-sided Wilcoxon signed-rank, AIONER vs baseline)",
}
# AIONER Table 3 (baseline, AIONER). The row names are lost in our copy of the text; the order is
# Table 1's, which the printed averages confirm (87.51 and 88.37 are the means of these ten rows).
PAPER_TABLE3 = {
    "GNormPlus": (92.09, 92.51),
    "NLM-Gene": (85.09, 85.98),
    "NCBI-Disease": (87.56, 89.59),
    "BC5CDR-Disease": (87.13, 87.89),
    "BC5CDR-Chemical": (93.42, 92.84),
    "NLM-Chem": (82.40, 82.51),
    "Linnaeus": (90.36, 90.63),
    "Species-800": (78.32, 79.67),
    "tmVar3": (89.66, 90.98),
    "BioID": (89.07, 91.13),
}
PAPER_TABLE4 = {  # PubMedBERT rows; seconds to tag the BioRED test set (100 abstracts), V100 GPU / 24-core Xeon
    "crf": {"baseline_f1": 89.34, "aioner_f1": 91.26, "gpu_seconds": 27, "cpu_seconds": 116},
    "softmax": {"baseline_f1": 88.98, "aioner_f1": 91.00, "gpu_seconds": 17, "cpu_seconds": 110},
}
PAPER_FIG3 = {
    "aioner_10_abstracts": 86.91,
    "baseline_all_500_abstracts": 89.34,
    "note": "the other points of Figure 3 are only drawn; AIONER beats the baseline at every size",
}
PAPER_FIG4 = {
    "note": "Figure 4's values are not in the text. The paper used AnEM, DMCB_Plant and BEAR; "
    "AIONER-Pretrained significantly beats the baseline and MTL on AnEM. AnEM has no test "
    "split here, so AnatEM (anatomy, also unseen by the AIO model) stands in."
}
PAPER_GERBERA = {
    "note": "GERBERA abstract: better than the baselines on 6 of 8 entity types, +0.9 F1 on average "
    "over the best baseline, +4.7 F1 on JNLPBA-RNA. Its baselines were multi-task models "
    "with other BioNER sets; ours is the target set alone."
}

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

    @property
    def bf16(self) -> bool:
        """The scale's bf16 training, on a CPU that computes bf16 natively (emulated, it is many times slower)."""
        from pipeline_aioner import native_bf16_cpu

        return bool(self.scale.get("bf16")) and native_bf16_cpu()

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
                "train_seconds": info.get("seconds"),
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
            "train_seconds": info.get("seconds"),
            "wall_seconds": round(time.time() - start, 1),
            "reused": False,
            **progress(info),
        }

    # ----- scoring -----
    def evaluate(self, run: Run, corpus: str) -> dict:
        """The run's model on the corpus' test set with the corpus' own task: score_predictions' result
        and the predictions (``predictions``: [document, start, end, type] lists); cached."""
        key = (run.name, corpus)
        if key in self.scores:
            return self.scores[key]
        cache = self.folder(run) / "repro_eval" / f"{corpus}.json"
        if cache.exists():
            self.scores[key] = json.loads(cache.read_text())
            return self.scores[key]
        from aioner.evaluation import score_predictions
        from aioner.prediction import predict_corpus

        print(f"[reproduce] tagging {corpus} test with {shown(self.folder(run))}", flush=True)
        prediction = predict_corpus(tagger_for(self.folder(run)), corpus)
        result = score_predictions(prediction)
        result["predictions"] = [list(e) for e in prediction.entities()]
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(result))
        self.scores[key] = result
        return result

    def system(self, run: Run, corpus: str) -> dict:
        """One system's entry in a results file: F1 (%), overall and per type, and its run."""
        r = self.evaluate(run, corpus)
        return {
            **f1_fields(r),
            "task": r["task"],
            "tagging_seconds": r["tagging_seconds"],
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


def tagger_for(folder: Path):
    import torch

    from aioner.checkpoint import load_checkpoint
    from pipeline_aioner import AIONERTagger

    model, tokenizer = load_checkpoint(str(folder), "cuda" if torch.cuda.is_available() else None)
    return AIONERTagger(model, tokenizer, autocast_dtype=None)  # scores in fp32, as every earlier result


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
@dataclass
class Plan:
    runs: list[Run]
    evals: list[tuple[Run, str]]  # (model, test corpus), tagged with the corpus' own task
    report: Callable[[], tuple[dict, str]]
    notes: list[str] = field(default_factory=list)  # printed up front (dry run too)
    extra_seconds: float = 0  # other expected work (tagging-time measurements)


def table2(ctx: Context) -> Plan:
    base, aio = ctx.baseline(), ctx.aioner()

    def report():
        from aioner.scoring import format_table

        ours = {"baseline": ctx.system(base, "BioRED"), "aioner": ctx.system(aio, "BioRED")}
        test = ctx.wilcoxon(aio, base, "BioRED")
        payload = {
            **ours,
            "delta_overall_f1": round(ours["aioner"]["overall_f1"] - ours["baseline"]["overall_f1"], 2),
            "wilcoxon": test,
            "paper": {"encoder": PAPER_ENCODER, **PAPER_TABLE2},
            "note": "F1 in %, strict, BioRED test (100 abstracts, task ALL). " + ENCODER_NOTE,
        }
        rows = {
            f"ours: BioRED only ({base.name})": ctx.evaluate(base, "BioRED")["strict"],
            f"ours: AIONER ({aio.name})": ctx.evaluate(aio, "BioRED")["strict"],
            "paper: BioRED only (PubMedBERT-CRF)": as_score(PAPER_TABLE2["baseline"]),
            "paper: AIONER (PubMedBERT-CRF)": as_score(PAPER_TABLE2["aioner"]),
        }
        md = (
            f"Strict F1 (%) on the BioRED test set\n\n{format_table(rows, TYPES)}\n\n"
            f"Wilcoxon (AIONER vs BioRED only, per-document F1): p = {test['p_value']:.3g} "
            f"over {test['documents']} documents ({test['differing_documents']} differ)."
        )
        return payload, md

    return Plan([base, aio], [(base, "BioRED"), (aio, "BioRED")], report, missing_aio_note(ctx))


def missing_aio_note(ctx: Context) -> list[str]:
    missing = unavailable_training(ctx.aio_corpora, download=not ctx.args.dry_run)
    return [f"{c}: training file unavailable, so the AIO model trains without it ({why})" for c, why in missing.items()]


def table3(ctx: Context) -> Plan:
    """Each external corpus: its single-corpus model, the MTL baseline and the AIO model (its task tag).

    Protocol ``clean`` (the headline): the MTL and AIO models train without any test document of any
    corpus scored here. ``leaky``: they train as table2's model does (only BioRED's test documents
    removed), so part of some test sets (tmVar3, BC5CDR, NLM-Gene: their abstracts are in BioRED's
    training split) is seen with labels; the single-corpus models are the same in both.
    """
    externals = [c for c in ctx.aio_corpora if c != "BioRED"]
    missing = unavailable_training(externals, download=not ctx.args.dry_run)
    clean = ["--exclude_tests_of", "BioRED", *externals]
    multi = {}  # (protocol, system) -> run
    for protocol in ctx.args.protocols:
        extra, tag = (clean, "clean") if protocol == "clean" else ((), "")
        multi[protocol, "aioner"] = ctx.aioner(extra=extra, tag=tag)  # leaky: table2's model
        multi[protocol, "mtl"] = ctx.mtl(extra=extra, tag=tag)
    leaks = test_documents_in_training(externals, ctx.aio_corpora)
    bases = {c: ctx.baseline(c) for c in externals if c not in missing}
    headline = ctx.args.protocols[0]

    def scored(protocol, c):
        """The multi-corpus systems of one protocol on corpus ``c``; MTL has no layer for a corpus it lacks."""
        out = {"aioner": ctx.system(multi[protocol, "aioner"], c)}
        out["mtl"] = ctx.system(multi[protocol, "mtl"], c) if c not in missing else None
        for k in ("aioner", "mtl"):
            if out[k] and c in bases:
                out[k]["delta_vs_single"] = round(out[k]["overall_f1"] - ctx.system(bases[c], c)["overall_f1"], 2)
                out[k]["wilcoxon_vs_single"] = ctx.wilcoxon(multi[protocol, k], bases[c], c)
        return out

    def report():
        rows = {}
        for c in externals:
            row = {
                "single": ctx.system(bases[c], c) if c in bases else None,
                "paper": dict(zip(("single", "aioner"), PAPER_TABLE3.get(c, ()))),
                "test_documents_in_leaky_training": leaks.get(c, 0),
            }
            for protocol in ctx.args.protocols:
                row[protocol] = scored(protocol, c)
            if c in missing:
                row["skipped"] = f"training file unavailable ({missing[c]}): no single-corpus or MTL model"
            rows[c] = row
        counts = {}
        for protocol in ctx.args.protocols:
            compared = [r for r in rows.values() if r["single"]]
            counts[protocol] = {
                "compared": len(compared),
                "aio_at_least_single": sum(
                    r[protocol]["aioner"]["overall_f1"] >= r["single"]["overall_f1"] for r in compared
                ),
                "mtl_at_least_single": sum(
                    r[protocol]["mtl"]["overall_f1"] >= r["single"]["overall_f1"] for r in compared
                ),
                "mean_f1": {
                    k: round(sum(v) / len(v), 2)
                    for k, v in {
                        "single": [r["single"]["overall_f1"] for r in compared],
                        "mtl": [r[protocol]["mtl"]["overall_f1"] for r in compared],
                        "aioner": [r[protocol]["aioner"]["overall_f1"] for r in compared],
                    }.items()
                },
            }
        payload = {
            "corpora": rows,
            "counts": counts,
            "headline_protocol": headline,
            "runs": {f"{p}/{k}": shown(ctx.folder(r)) for (p, k), r in multi.items()},
            "paper": {
                "encoder": PAPER_ENCODER,
                "aio_at_least_single": 9,
                "mtl_at_least_single": 7,
                "compared": 10,
                "average": {"single": 87.51, "aioner": 88.37},
            },
            "note": "F1 in %, strict, each corpus' test set. The AIO model tags with the corpus' task tag, "
            "the MTL model with the corpus' own output layer. clean: no test document of any "
            "corpus scored here in the MTL/AIO training data; leaky: only BioRED's removed "
            "(test_documents_in_leaky_training counts the others' test documents in the training "
            "files, before sampling). NLM-Chem's training file is not held here: no single or MTL "
            "model for it, and the AIO model trains without it. " + ENCODER_NOTE,
        }
        return payload, table3_markdown(rows, counts, ctx.args.protocols, leaks)

    notes = [f"{c}: no single-corpus or MTL model, training file unavailable ({why})" for c, why in missing.items()]
    runs = [*bases.values()] + [multi[p, k] for p in ctx.args.protocols for k in ("aioner", "mtl")]
    evals = [(b, c) for c, b in bases.items()]
    evals += [
        (multi[p, k], c)
        for p in ctx.args.protocols
        for k in ("aioner", "mtl")
        for c in externals
        if not (k == "mtl" and c in missing)
    ]
    return Plan(runs, evals, report, notes)


def table3_markdown(rows: dict, counts: dict, protocols: list[str], leaks: dict) -> str:
    head = ["corpus", "task", "single"] + [f"{k} ({p})" for p in protocols for k in ("MTL", "AIONER")]
    head += ["p MTL/AIONER vs single (" + protocols[0] + ")", "paper single", "paper AIONER"]
    md = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]

    def f1(s):
        return "–" if not s else str(s["overall_f1"])

    for c, r in rows.items():
        cells = [c + (" †" if leaks.get(c) else ""), r[protocols[0]]["aioner"]["task"], f1(r["single"])]
        cells += [f1(r[p][k]) for p in protocols for k in ("mtl", "aioner")]
        ps = [
            r[protocols[0]][k].get("wilcoxon_vs_single", {}).get("p_value") if r[protocols[0]][k] else None
            for k in ("mtl", "aioner")
        ]
        cells.append(" / ".join("–" if p is None else f"{p:.3g}" for p in ps))
        cells += [str(r["paper"].get("single", "–")), str(r["paper"].get("aioner", "–"))]
        md.append("| " + " | ".join(cells) + " |")
    lines = ["\n".join(md), ""]
    for p, n in counts.items():
        m = n["mean_f1"]
        lines.append(
            f"{p}: AIONER ≥ single on {n['aio_at_least_single']} of {n['compared']} corpora, MTL ≥ single on "
            f"{n['mtl_at_least_single']} of {n['compared']} (paper: 9 and 7 of 10); mean F1 single "
            f"{m['single']}, MTL {m['mtl']}, AIONER {m['aioner']}."
        )
    counted = ", ".join(f"{c} {k}" for c, k in leaks.items() if k)
    if counted:
        lines.append(f"\n† test documents of the corpus in the leaky protocol's training files: {counted}.")
    lines.append(
        "\nNLM-Chem: its training file is not held here (the downloader is the way to get it); only "
        "the AIO model, trained without it, is scored on its test set."
    )
    return "\n".join(lines)


def test_documents_in_training(corpora, training) -> dict[str, int]:
    """Per corpus: its test documents (PubTator ids) present in the training files of ``training``
    other than BioRED's test exclusion (which merged_dataset applies by default)."""
    from dataset_scripts.corpora import CorpusUnavailableError, fetch, get_corpus
    from dataset_scripts.pubtator import read_pubtator

    def ids(name, split):
        c = get_corpus(name)
        if c.format != "pubtator" or split not in c.splits:
            return set()
        try:
            return {d.id for d in read_pubtator(fetch(c.splits[split], allow_download=False), strict=False)}
        except CorpusUnavailableError:
            return set()

    train_ids = set().union(*(ids(t, "train") for t in training)) - ids("BioRED", "test")
    return {c: len(ids(c, "test") & train_ids) for c in corpora}


def fig3(ctx: Context) -> Plan:
    sizes = ctx.scale["fig3_sizes"]
    pairs = [(n, fig3_baseline(ctx, n), ctx.aioner(bio_red=n)) for n in sizes]

    def report():
        rows, md = (
            [],
            [
                "| BioRED abstracts | BioRED only | + externals (AIONER) | Δ | p (Wilcoxon) |",
                "|---:|---:|---:|---:|---:|",
            ],
        )
        for n, base, aio in pairs:
            b, a, w = ctx.system(base, "BioRED"), ctx.system(aio, "BioRED"), ctx.wilcoxon(aio, base, "BioRED")
            rows.append(
                {
                    "bio_red_abstracts": n,
                    "baseline": b,
                    "aioner": a,
                    "wilcoxon": w,
                    "delta": round(a["overall_f1"] - b["overall_f1"], 2),
                }
            )
            md.append(f"| {n} | {b['overall_f1']} | {a['overall_f1']} | {rows[-1]['delta']} | {w['p_value']:.3g} |")
        png = ctx.results_dir / f"fig3_{ctx.args.scale}.png"
        line_chart(
            png,
            [r["bio_red_abstracts"] for r in rows],
            {
                "BioRED only": [r["baseline"]["overall_f1"] for r in rows],
                "+ externals (AIONER)": [r["aioner"]["overall_f1"] for r in rows],
            },
            "BioRED training abstracts",
            f"BioRED test, strict F1 (%), {ctx.args.scale} scale",
        )
        md.append(f"\n![Figure 3]({png.name})")
        return (
            {
                "points": rows,
                "figure": shown(png),
                "paper": {"encoder": PAPER_ENCODER, **PAPER_FIG3},
                "note": "F1 in %, strict, BioRED test. External corpora at the scale's sample. " + ENCODER_NOTE,
            },
            "\n".join(md) + "\n\nPaper (PubMedBERT-CRF): AIONER with 10 abstracts 86.91; baseline with all 500: 89.34.",
        )

    return Plan([r for _, b, a in pairs for r in (b, a)], [(r, "BioRED") for _, b, a in pairs for r in (b, a)], report)


def fig3_baseline(ctx: Context, n: int) -> Run:
    """BioRED alone, capped at ``n`` abstracts. At a scale with few epochs (``fig3_equal_steps``), as
    many epochs as give the optimizer steps of the scale's epochs over all of BioRED, all of them run
    (the best dev epoch is kept): 3 epochs of 10 abstracts are ~12 steps (dev F1 0.02, untrained), and
    with patience 5 (20 steps) the run stopped on the all-O plateau small data goes through first
    (dev F1 5.3 at epoch 5, then 0). The paper trained every model to convergence (20 epochs, patience 5)."""
    docs, epochs = CORPUS_TOKENS["BioRED"][0], ctx.scale["epochs"]
    equal = max(epochs, math.ceil(epochs * docs / n))
    if not ctx.scale["fig3_equal_steps"] or equal == epochs:
        return ctx.run("single", "BioRED", n)
    return replace(ctx.run("single", "BioRED", n, tag=f"e{equal}"), epochs=equal, patience=equal)


FIG4_CORPUS = "AnatEM"  # AnEM, the paper's, has no test split here (only its training file is held)
FIG4_SYSTEMS = {
    "baseline": "baseline",
    "mtl": "MTL",
    "aioner_merged": "AIONER-Merged",
    "aioner_pretrained": "AIONER-Pretrained",
}


def fig4(ctx: Context) -> Plan:
    c, aio = FIG4_CORPUS, ctx.aioner()
    base = ctx.run("single", c)
    pre = ctx.run("finetune", c, extra=["--init_from", shown(ctx.folder(aio))])
    merged_tokens = sum(share(x, ctx.scale["sample"]) for x in ctx.aio_corpora) + share(c, None)
    merged = ctx.run("merged", c, ctx.scale["sample"], train_tokens=merged_tokens, dev_tokens=dev(c))
    # MTL: the AIO corpora and the new one, each with its own output layer; the new corpus whole, as in merged.
    mtl = ctx.mtl([*ctx.aio_corpora, c], whole=[c], extra=["--exclude_tests_of", c], tag=c)
    systems = {"baseline": base, "mtl": mtl, "aioner_merged": merged, "aioner_pretrained": pre}

    def report():
        out = {k: ctx.system(r, c) for k, r in systems.items()}
        for k in systems:
            if k != "baseline":
                out[k]["wilcoxon_vs_baseline"] = ctx.wilcoxon(systems[k], base, c)
        out["aioner_pretrained"]["wilcoxon_vs_mtl"] = ctx.wilcoxon(pre, mtl, c)
        md = ["| system | F1 | P | R | p vs baseline (Wilcoxon) |", "|---|---:|---:|---:|---:|"]
        for k, s in out.items():
            p = s.get("wilcoxon_vs_baseline", {}).get("p_value")
            p = "–" if p is None else f"{p:.3g}"
            md.append(f"| {FIG4_SYSTEMS[k]} | {s['overall_f1']} | {s['precision']} | {s['recall']} | {p} |")
        png = ctx.results_dir / f"fig4_{ctx.args.scale}.png"
        bar_chart(
            png,
            {FIG4_SYSTEMS[k]: s["overall_f1"] for k, s in out.items()},
            f"{c} test, strict F1 (%), {ctx.args.scale} scale",
        )
        return (
            {
                "corpus": c,
                **out,
                "figure": shown(png),
                "paper": {"encoder": PAPER_ENCODER, **PAPER_FIG4},
                "note": f"F1 in %, strict, {c} test. Every system trains on all of {c}'s training set "
                "(the merged and MTL runs sample only their AIO part). AnEM is not scored: its test "
                "split is not held here. NLM-Chem's training file is missing: the AIO part lacks it. " + ENCODER_NOTE,
            },
            f"Strict F1 (%) on the {c} test set\n\n" + "\n".join(md) + f"\n\n![Figure 4]({png.name})",
        )

    return Plan([aio, base, pre, merged, mtl], [(r, c) for r in systems.values()], report)


def gerbera_targets() -> list[str]:
    from dataset_scripts.corpora import CORPORA

    # JNLPBA's training file is not held here; its devel set is the low-resource training set. A
    # "JNLPBA-devel" corpus entry (benchmarks/README.md) gives train.py exactly that; use it when it exists.
    return ["NCBI-Disease", "JNLPBA-devel" if "JNLPBA-devel" in CORPORA else "JNLPBA"]


GERBERA_SYSTEMS = {
    "target_alone": "target alone",
    "mtl": "MTL with the other biomedical corpora",
    "gerbera": "GERBERA (+ CoNLL-2003, then the target)",
}


def gerbera(ctx: Context) -> Plan:
    from aioner.scoring import format_table

    targets = gerbera_targets()
    missing = unavailable_training(targets, download=not ctx.args.dry_run)
    gs = ctx.scale["general_sample"]
    systems = {}
    for t in targets:
        if t in missing:
            continue
        extra = ["--general", "CoNLL-2003"] + (["--general_sample", fmt(gs)] if gs is not None else [])
        tokens = share(t, None) * 2 + share("CoNLL-2003", gs)  # stage 1 (target + general), stage 2 (target)
        # GERBERA's baseline: multi-task with other BioNER sets (the AIO corpora at the scale's sample), the
        # target whole, and the target's test documents removed from every corpus (BioRED holds some).
        others = [c for c in ctx.aio_corpora if c != t]
        systems[t] = {
            "target_alone": ctx.run("single", t),
            "mtl": ctx.mtl([t, *others], whole=[t], extra=["--exclude_tests_of", t], tag=t),
            "gerbera": ctx.run("gerbera", t, extra=extra, train_tokens=tokens, dev_tokens=2 * dev(t)),
        }

    def report():
        out, md = {}, []
        for t, runs in systems.items():
            row = {k: ctx.system(r, t) for k, r in runs.items()}
            for k in ("mtl", "gerbera"):
                row[k]["delta_vs_target_alone"] = round(row[k]["overall_f1"] - row["target_alone"]["overall_f1"], 2)
                row[k]["wilcoxon_vs_target_alone"] = ctx.wilcoxon(runs[k], runs["target_alone"], t)
            row["gerbera"]["wilcoxon_vs_mtl"] = ctx.wilcoxon(runs["gerbera"], runs["mtl"], t)
            if "RNA" in row["target_alone"]["per_type_f1"]:  # GERBERA's low-resource case (+4.7 F1 in the paper)
                row["rna_f1"] = {k: row[k]["per_type_f1"].get("RNA") for k in runs}
            out[t] = row
            table = format_table({GERBERA_SYSTEMS[k]: ctx.evaluate(r, t)["strict"] for k, r in runs.items()})
            ps = ", ".join(
                f"{k} vs target alone p = {row[k]['wilcoxon_vs_target_alone']['p_value']:.3g}"
                for k in ("mtl", "gerbera")
            )
            md.append(f"**{t}** (strict F1 %; {ps})\n\n{table}")
            if "rna_f1" in row:
                md.append(
                    "RNA alone (GERBERA's low-resource type): "
                    + ", ".join(f"{GERBERA_SYSTEMS[k]} {v}" for k, v in row["rna_f1"].items())
                )
        for t, why in missing.items():
            out[t] = {"skipped": why}
            md.append(f"**{t}**: skipped, training file unavailable.")
        return (
            {
                "targets": out,
                "general": "CoNLL-2003",
                "paper": PAPER_GERBERA,
                "note": "F1 in %, strict, each target's test set; the target's whole training set in every "
                "system. There is no OntoNotes copy here: the general-domain set is CoNLL-2003 alone. "
                "MTL: the target and the AIO corpora (at the scale's sample; NLM-Chem's training file "
                "is missing), one output layer each. " + ENCODER_NOTE,
            },
            "\n\n".join(md),
        )

    notes = [f"{t}: skipped, training file unavailable ({why})" for t, why in missing.items()]
    runs = [r for rs in systems.values() for r in rs.values()]
    return Plan(runs, [(r, t) for t, rs in systems.items() for r in rs.values()], report, notes)


def crf_vs_softmax(ctx: Context) -> Plan:
    systems = {
        (kind, dec): (ctx.baseline(decoder=dec) if kind == "baseline" else ctx.aioner(decoder=dec))
        for kind in ("baseline", "aioner")
        for dec in ("crf", "softmax")
    }
    repeats = 2

    def report():
        out = {}
        for (kind, dec), run in systems.items():
            s = ctx.system(run, "BioRED")
            s["tagging_seconds_measured"] = time_tagging(tagger_for(ctx.folder(run)), "BioRED", repeats)
            if dec == "softmax":
                s["wilcoxon_vs_crf"] = ctx.wilcoxon(run, systems[(kind, "crf")], "BioRED")
            out.setdefault(kind, {})[dec] = s
        md = [
            "| training data | output layer | F1 | tagging s (BioRED test) | paper F1 | paper GPU / CPU s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for kind, decs in out.items():
            for dec, s in decs.items():
                p = PAPER_TABLE4[dec]
                md.append(
                    f"| {kind} | {dec} | {s['overall_f1']} | {s['tagging_seconds_measured']} | "
                    f"{p[kind + '_f1']} | {p['gpu_seconds']} / {p['cpu_seconds']} |"
                )
        return (
            {
                **out,
                "paper": {"encoder": "PubMedBERT (AIONER Table 4)", **PAPER_TABLE4},
                "timing": f"best of {repeats} passes over the BioRED test set (100 abstracts) after a warm-up, "
                f"in this process ({machine()})",
                "note": "F1 in %, strict, BioRED test. " + ENCODER_NOTE,
            },
            "\n".join(md),
        )

    runs = list(systems.values())
    tag_s = len(runs) * (repeats + 0.2) * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S
    return Plan(runs, [(r, "BioRED") for r in runs], report, extra_seconds=tag_s)


# Issue 18, lever 1: what a window holds besides the words it labels (train.py --context).
CONTEXT_MARGIN = 64  # sub-words per side: about one neighbouring sentence of an abstract


# The runs of issue 18's levers, named in one place: best_model reuses the ones the lever experiments trained.
def bio_red_sample(ctx: Context):
    """BioRED's --sample in Table 2's baseline recipe at this scale (None: all of it)."""
    return None if ctx.scale.get("bio_red_whole") else ctx.scale["sample"]


def margin_run(ctx: Context) -> Run:
    """Table 2's baseline recipe with context margins (lever 1)."""
    extra = ["--context", "margin", "--context_margin", str(CONTEXT_MARGIN)]
    return ctx.run("single", "BioRED", bio_red_sample(ctx), extra, f"margin{CONTEXT_MARGIN}", "context")


def head_run(ctx: Context, kind: str, seed: int) -> Run:
    """Table 2's baseline recipe with the dense or BiLSTM head and a seed (lever 2; dense seed 0 is table2's)."""
    if kind == "dense" and seed == 0:
        return ctx.baseline()
    extra = (["--head", "bilstm"] if kind == "bilstm" else []) + (["--seed", str(seed)] if seed else [])
    tag = "-".join(p for p in ("bilstm" if kind == "bilstm" else "", f"seed{seed}" if seed else "") if p)
    return ctx.run("single", "BioRED", bio_red_sample(ctx), extra, tag, "head")


def second_encoder_run(ctx: Context) -> Run:
    """Table 2's baseline recipe with the second encoder (lever 4; mpnet unless --cross_encoder says)."""
    run = ctx.run(
        "single", "BioRED", bio_red_sample(ctx), ["--encoder", ctx.args.cross_encoder], "mpnet", "cross_encoder"
    )
    return replace(run, train_tokens=run.train_tokens * 6.5)  # ~6.5x MiniLM's cost per sub-word


def context(ctx: Context) -> Plan:
    """Table 2's baseline recipe (BioRED alone) with sentence windows, packed sentences and margins."""
    sample = bio_red_sample(ctx)
    systems = {
        "sentence": ctx.baseline(),
        # Packing turns BioRED's 4,862 training sentences into ~1,010 windows (window_length 256, measured):
        # at the scale's 32 windows a batch it would take ~5x fewer optimizer steps. 7 packed windows hold
        # about the sub-words of 32 sentence windows, so both take the same number of steps an epoch.
        "pack": replace(
            ctx.run("single", "BioRED", sample, ["--context", "pack"], "pack", "context"),
            batch_size=max(1, round(ctx.scale["batch_size"] * 7 / 32)),
        ),
        "margin": margin_run(ctx),
    }
    repeats = 2

    def report():
        out, md = (
            {},
            ["| windows | F1 | tagging docs/s (BioRED test) | Wilcoxon p vs sentence |", "|---|---:|---:|---:|"],
        )
        docs = len(gold_documents("BioRED")[0])
        for name, run in systems.items():
            s = ctx.system(run, "BioRED")
            s["tagging_seconds_measured"] = time_tagging(tagger_for(ctx.folder(run)), "BioRED", repeats)
            s["tagging_docs_per_s"] = round(docs / s["tagging_seconds_measured"], 2)
            if name != "sentence":
                s["wilcoxon_vs_sentence"] = ctx.wilcoxon(run, systems["sentence"], "BioRED")
            out[name] = s
            p = s.get("wilcoxon_vs_sentence", {}).get("p_value")
            md.append(
                f"| {name} | {s['overall_f1']} | {s['tagging_docs_per_s']} | {'' if p is None else round(p, 4)} |"
            )
        return (
            {
                "systems": out,
                "context_margin": CONTEXT_MARGIN,
                "timing": f"best of {repeats} passes over the BioRED test set ({docs} abstracts) after a warm-up, "
                f"in fp32, one after another in this process ({machine()})",
                "note": "F1 in %, strict, BioRED test; each model trained with train.py's BioRED-alone recipe at "
                "this scale, differing only in --context.",
            },
            "\n".join(md),
        )

    runs = list(systems.values())
    tag_s = len(runs) * (repeats + 0.2) * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S
    return Plan(runs, [(r, "BioRED") for r in runs], report, extra_seconds=tag_s)


# Issue 18, lever 2: the BiLSTM head measured +1.96 F1 on one seed (results/seed3.json); three seeds each.
HEAD_SEEDS = (0, 1, 2)


def head(ctx: Context) -> Plan:
    """Table 2's baseline recipe with the dense head (Dense+ReLU) and the BiLSTM head, three seeds each."""
    systems = {(kind, seed): head_run(ctx, kind, seed) for kind in ("dense", "bilstm") for seed in HEAD_SEEDS}

    def report():
        import statistics

        out, md = (
            {},
            ["| head | " + " | ".join(f"seed {s}" for s in HEAD_SEEDS) + " | mean ± sd |", "|---|---:|---:|---:|---:|"],
        )
        for kind in ("dense", "bilstm"):
            runs = {seed: ctx.system(systems[(kind, seed)], "BioRED") for seed in HEAD_SEEDS}
            f1 = [r["overall_f1"] for r in runs.values()]
            out[kind] = {
                "seeds": runs,
                "mean_f1": round(statistics.mean(f1), 2),
                "sd_f1": round(statistics.stdev(f1), 2) if len(f1) > 1 else 0.0,
            }
            md.append(f"| {kind} | " + " | ".join(map(str, f1)) + f" | {out[kind]['mean_f1']} ± {out[kind]['sd_f1']} |")
        for seed in HEAD_SEEDS:  # paired by seed: same data order and initial encoder
            out["bilstm"]["seeds"][seed]["wilcoxon_vs_dense"] = ctx.wilcoxon(
                systems[("bilstm", seed)], systems[("dense", seed)], "BioRED"
            )
        delta = round(out["bilstm"]["mean_f1"] - out["dense"]["mean_f1"], 2)
        md.append(f"\nBiLSTM − dense, mean over seeds: {delta:+} F1")
        return (
            {
                **out,
                "delta_mean_f1": delta,
                "note": "F1 in %, strict, BioRED test; train.py's BioRED-alone recipe at this scale with "
                "--head dense (Dense+ReLU, the paper's) or bilstm, seeds 0-2; Wilcoxon per seed, BiLSTM vs dense.",
            },
            "\n".join(md),
        )

    runs = list(systems.values())
    return Plan(runs, [(r, "BioRED") for r in runs], report)


# Issue 18, lever 5: members with different tokenizers, their word-level scores averaged (aioner.ensemble).
CROSS_ENCODER = "embedded:all-mpnet-base-v2"
CROSS_ENCODER_WEIGHTS = (0.5, 0.65, 0.8)  # mpnet's share, chosen on BioRED dev (MiniLM gets the rest)


def cross_encoder(ctx: Context) -> Plan:
    """Table 2's baseline recipe with MiniLM and with mpnet, then both as one ensemble."""
    minilm, mpnet = ctx.baseline(), second_encoder_run(ctx)
    repeats = 1

    def report():
        from aioner.ensemble import EnsembleTagger
        from aioner.evaluation import score_predictions
        from aioner.prediction import predict_corpus
        from aioner.significance import wilcoxon_test

        members, dev_f1, best = dev_weighted_ensemble(ctx, minilm, mpnet)
        texts, _, gold = gold_documents("BioRED")
        ids = [str(i) for i in range(len(texts))]
        systems = {"minilm": ctx.system(minilm, "BioRED"), "mpnet": ctx.system(mpnet, "BioRED")}
        mpnet_pred = [tuple(e) for e in ctx.evaluate(mpnet, "BioRED")["predictions"]]
        taggers = {"mpnet": tagger_for(ctx.folder(mpnet))}
        for name, w in (("ensemble_uniform", 0.5), ("ensemble_dev_weighted", best)):
            taggers[name] = EnsembleTagger(members, weights=[1 - w, w])
            prediction = predict_corpus(taggers[name], "BioRED")
            systems[name] = {
                **f1_fields(score_predictions(prediction)),
                "weights": {"all-MiniLM-L6-v2": round(1 - w, 2), "all-mpnet-base-v2": w},
                "wilcoxon_vs_mpnet": wilcoxon_test(gold, prediction.entities(), mpnet_pred, documents=ids),
            }
        for name, tagger in taggers.items():  # side by side, in this process, after all the scoring
            systems[name]["tagging_seconds_measured"] = time_tagging(tagger, "BioRED", repeats)
            systems[name]["tagging_docs_per_s"] = round(len(texts) / systems[name]["tagging_seconds_measured"], 2)
        md = ["| system | F1 | tagging docs/s (BioRED test) | Wilcoxon p vs mpnet |", "|---|---:|---:|---:|"]
        for name, sys_ in systems.items():
            p = sys_.get("wilcoxon_vs_mpnet", {}).get("p_value")
            md.append(
                f"| {name} | {sys_['overall_f1']} | {sys_.get('tagging_docs_per_s', '–')} | "
                f"{'–' if p is None else round(p, 4)} |"
            )
        md.append(f"\nmpnet's weight chosen on BioRED dev (strict F1 %): {dev_f1}")
        return (
            {
                "systems": systems,
                "dev_f1_by_mpnet_weight": dev_f1,
                "chosen_mpnet_weight": best,
                "timing": f"best of {repeats} pass(es) over the BioRED test set ({len(texts)} abstracts) after a "
                f"warm-up, fp32, one after another in this process ({machine()})",
                "note": "F1 in %, strict, BioRED test; both members trained with train.py's BioRED-alone recipe "
                "at this scale. The ensemble plans one set of windows over the words and averages each "
                "member's scores at each word's first sub-word (aioner.ensemble.EnsembleTagger).",
            },
            "\n".join(md),
        )

    tag_s = 3 * 10 * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S  # mpnet tags ~7x slower than MiniLM
    return Plan([minilm, mpnet], [(minilm, "BioRED"), (mpnet, "BioRED")], report, extra_seconds=tag_s)


# Issue 18: the levers one at a time against Table 2's baseline, then the ones that gained, combined.
BEST_GOAL_F1 = 88.65  # the paper's Bioformer-CRF baseline on BioRED test


def chosen_levers(ctx: Context) -> dict:
    """The context and head settings for the combined model, from the lever experiments' results files at
    this scale. A setting joins only if its gain is beyond noise: context, a higher F1 than sentence windows
    with Wilcoxon p < 0.05 (one seed; margins cost ~3x tagging time); head, a mean gain over the seeds larger
    than either head's standard deviation."""
    choice = {
        "context": "sentence",
        "head": "dense",
        "rule": " ".join(chosen_levers.__doc__.split("this scale. ")[1].split()),
    }
    evidence = choice["evidence"] = {}
    path = ctx.results_dir / f"context_{ctx.args.scale}.json"
    if path.exists():
        systems = json.loads(path.read_text())["systems"]
        f1 = {k: v["overall_f1"] for k, v in systems.items()}
        p = {k: v["wilcoxon_vs_sentence"]["p_value"] for k, v in systems.items() if "wilcoxon_vs_sentence" in v}
        gained = [k for k in p if f1[k] > f1["sentence"] and p[k] < 0.05]
        choice["context"] = max(gained, key=f1.get) if gained else "sentence"
        evidence["context"] = {"file": shown(path), "f1": f1, "p_vs_sentence": p}
    path = ctx.results_dir / f"head_{ctx.args.scale}.json"
    if path.exists():
        r = json.loads(path.read_text())
        noise = max(r["dense"]["sd_f1"], r["bilstm"]["sd_f1"])
        choice["head"] = "bilstm" if r["delta_mean_f1"] > noise else "dense"
        evidence["head"] = {"file": shown(path), "delta_mean_f1": r["delta_mean_f1"], "largest_sd": noise}
    return choice


def best_model(ctx: Context) -> Plan:
    """Issue 18's levers one at a time (context margins, BiLSTM head, all the data, the second encoder, the
    cross-encoder ensemble), then combined: BioRED test per type, the external test sets with their task tags,
    training seconds and tagging docs/s. The all-data models train without any scored test document."""
    s = ctx.scale
    externals = [c for c in ctx.aio_corpora if c != "BioRED"]
    clean = ["--exclude_tests_of", "BioRED", *externals]
    choice = chosen_levers(ctx)
    combined = ["--encoder", ctx.args.cross_encoder]
    if choice["context"] != "sentence":
        combined += ["--context", choice["context"]]
        combined += ["--context_margin", str(CONTEXT_MARGIN)] if choice["context"] == "margin" else []
    combined += ["--head", "bilstm"] if choice["head"] == "bilstm" else []
    tag = "-".join(["clean", "mpnet", *([f"{choice['context']}"] if choice["context"] != "sentence" else [])])
    tag += "-bilstm" if choice["head"] == "bilstm" else ""
    baseline = ctx.baseline()
    corpora = ["--corpora", *ctx.aio_corpora] if s["aio_corpora"] else []
    tokens = sum(share(c, s["best_sample"]) for c in ctx.aio_corpora)
    dev_tokens = sum(dev(c) for c in ctx.aio_corpora)
    longer = {"epochs": s["best_epochs"], "patience": s["best_patience"]}
    all_data = ctx.run("aioner", None, s["best_sample"], [*corpora, *clean], "clean", None, tokens, dev_tokens)
    best = ctx.run("aioner", None, s["best_sample"], [*corpora, *clean, *combined], tag, None, tokens * 6.5, dev_tokens)
    all_data, best = replace(all_data, **longer), replace(best, **longer)
    single = {  # BioRED alone: scored on BioRED only
        "baseline": baseline,
        "context_margin": margin_run(ctx),
        "head_bilstm": head_run(ctx, "bilstm", 0),
        "encoder_mpnet": second_encoder_run(ctx),
    }
    multi = {"all_data": all_data, "combined": best}  # the AIO recipe: every test set, with its task tag
    scored = {**single, **multi}
    repeats = 1

    def report():
        from aioner.ensemble import EnsembleTagger
        from aioner.evaluation import score_predictions
        from aioner.prediction import predict_corpus
        from aioner.significance import wilcoxon_test

        texts, _, gold = gold_documents("BioRED")
        ids = [str(i) for i in range(len(texts))]
        base_pred = [tuple(e) for e in ctx.evaluate(baseline, "BioRED")["predictions"]]
        rows, taggers = {}, {}
        for name, run in scored.items():
            rows[name] = {
                "bio_red": ctx.system(run, "BioRED"),
                "externals": {c: ctx.system(run, c)["overall_f1"] for c in externals} if name in multi else None,
                "train_seconds": ctx.train_info.get(run.name, {}).get("train_seconds"),
                "run": shown(ctx.folder(run)),
            }
            if name != "baseline":
                rows[name]["wilcoxon_vs_baseline"] = ctx.wilcoxon(run, baseline, "BioRED")
            taggers[name] = tagger_for(ctx.folder(run))
        members, dev_f1, w = dev_weighted_ensemble(ctx, baseline, single["encoder_mpnet"])
        taggers["ensemble"] = EnsembleTagger(members, weights=[1 - w, w])
        prediction = predict_corpus(taggers["ensemble"], "BioRED")
        rows["ensemble"] = {
            "bio_red": f1_fields(score_predictions(prediction)),
            "externals": None,
            "train_seconds": sum(rows[k]["train_seconds"] or 0 for k in ("baseline", "encoder_mpnet")),
            "members": [rows["baseline"]["run"], rows["encoder_mpnet"]["run"]],
            "weights": [round(1 - w, 2), w],
            "dev_f1_by_second_weight": dev_f1,
            "wilcoxon_vs_baseline": wilcoxon_test(gold, prediction.entities(), base_pred, documents=ids),
        }
        for name, tagger in taggers.items():  # side by side, in this process, after all the scoring
            rows[name]["tagging_docs_per_s"] = round(len(texts) / time_tagging(tagger, "BioRED", repeats), 2)
        for row in rows.values():
            row["delta_vs_baseline"] = round(
                row["bio_red"]["overall_f1"] - rows["baseline"]["bio_red"]["overall_f1"], 2
            )
        top = max(rows, key=lambda k: rows[k]["bio_red"]["overall_f1"])
        md = [
            "| lever | BioRED F1 | Δ | " + " | ".join(TYPES) + " | " + " | ".join(externals) + " | train s | docs/s |",
            "|---|" + "---:|" * (4 + len(TYPES) + len(externals)),
        ]
        for name, r in rows.items():
            per_type = [str(r["bio_red"]["per_type_f1"].get(t, "–")) for t in TYPES]
            ext = [str(r["externals"][c]) if r["externals"] else "–" for c in externals]
            md.append(
                f"| {name} | {r['bio_red']['overall_f1']} | {r['delta_vs_baseline']:+} | "
                + " | ".join(per_type + ext)
                + f" | {r['train_seconds'] or '–'} | {r['tagging_docs_per_s']} |"
            )
        md.append(f"\nBest: {top} ({rows[top]['bio_red']['overall_f1']}); goal {BEST_GOAL_F1}.")
        return (
            {
                "levers": rows,
                "combination": {"options": combined, **choice},
                "best": top,
                "goal_f1": BEST_GOAL_F1,
                "goal_reached": rows[top]["bio_red"]["overall_f1"] >= BEST_GOAL_F1,
                "timing": f"best of {repeats} pass(es) over the BioRED test set ({len(texts)} abstracts) after a "
                f"warm-up, fp32, one after another in this process ({machine()})",
                "note": "F1 in %, strict. BioRED-alone levers (baseline, context_margin, head_bilstm, "
                "encoder_mpnet, ensemble) are Table 2's baseline recipe with one change and are scored on "
                "BioRED test only; all_data (every training document of every AIO corpus) and combined (all "
                "data with the second encoder and the context/head settings that gained in their own "
                "experiments) train without any test document of any corpus scored here (clean) and tag "
                "each external test set with its corpus' task tag. " + ENCODER_NOTE,
            },
            "\n".join(md),
        )

    runs = list(scored.values())
    evals = [(r, "BioRED") for r in runs] + [(r, c) for r in multi.values() for c in externals]
    tag_s = 3 * 10 * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S
    notes = [f"combined: {' '.join(combined)} (chosen: {choice})"]
    return Plan(runs, evals, report, notes, extra_seconds=tag_s)


def dev_weighted_ensemble(ctx: Context, minilm: Run, mpnet: Run):
    """(members, BioRED dev F1 by the second encoder's weight, the weight chosen): one dev pass per weight."""
    from aioner.ensemble import EnsembleTagger, load_members
    from aioner.evaluation import score_predictions
    from aioner.prediction import predict_corpus

    members = load_members([str(ctx.folder(minilm)), str(ctx.folder(mpnet))])
    dev_f1 = {}
    for w in CROSS_ENCODER_WEIGHTS:  # dev is 50 abstracts
        tagger = EnsembleTagger(members, weights=[1 - w, w])
        dev_f1[w] = pct(score_predictions(predict_corpus(tagger, "BioRED", "dev"))["strict"]["overall"]["f1"])
    return members, dev_f1, max(CROSS_ENCODER_WEIGHTS, key=lambda w: (dev_f1[w], -abs(w - 0.5)))


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


def as_score(paper: dict) -> dict:
    """A paper row (F1 in %) shaped like score_entities' output, for format_table."""
    return {
        "overall": {"f1": paper["overall_f1"] / 100},
        "per_type": {t: {"f1": f / 100} for t, f in paper["per_type_f1"].items()},
    }


EXPERIMENTS = {
    f.__name__: f
    for f in (table2, table3, fig3, fig4, gerbera, crf_vs_softmax, context, head, cross_encoder, best_model)
}
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
        if not (ctx.folder(run) / "repro_eval" / f"{corpus}.json").exists():
            total += (CORPUS_TOKENS.get(corpus, (0, 0, 0, 0))[3] or 0) / TAG_TOKENS_PER_S
    return total


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 60 else "1 min"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("experiment", choices=EXPERIMENTS)
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
    ap.add_argument("--dry_run", action="store_true", help="print the train.py commands and the expected time only")
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
    plan = EXPERIMENTS[args.experiment](ctx)
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
    start = time.time()
    for run in plan.runs:
        ctx.train(run)
    for run, corpus in plan.evals:
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
    out = ctx.results_dir / f"{RESULT_NAMES.get(args.experiment, args.experiment)}_{args.scale}.json"
    write_result(out, result)
    header = (
        f"# {args.experiment} ({args.scale} scale, encoder {result['encoder']})\n\n"
        f"{result['command']} — {result['date']}, {result['machine']}, {seconds['total']} s\n\n"
    )
    out.with_suffix(".md").write_text(header + markdown + "\n")
    print("\n" + header + markdown + f"\n\nwritten: {shown(out)} and {shown(out.with_suffix('.md'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
