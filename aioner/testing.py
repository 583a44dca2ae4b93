"""Test doubles and harnesses shared by the tests and the benchmarks (``benchmarks.robustness``); the
library does not use them.

* tiny random models: ``tiny_bert_config`` (the 2-layer, 32-wide BERT they all share),
  ``tiny_tagger`` (an AIONER model on it), ``char_tokenizer`` (a tokenizer unlike the embedded one), ``gene_model`` (the same with a head that calls every
  word an entity, so completeness is checkable), ``save_tiny_encoder`` (a random BERT saved like a
  Hub encoder);
* ``train_args``: a ``train.py`` command line from keyword options;
* ``aioner-tag`` as a subprocess: peak RSS (``run_measured``), kill -9 and resume
  (``kill_and_resume``), every document exactly once (``check_exactly_once``), every non-space
  character covered (``check_covered``); ``long_text`` for the size tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dataset_scripts.pubtator import read_pubtator

CHECKOUT = Path(__file__).resolve().parents[1]  # the subprocesses run here, so they import this checkout
TAG = [sys.executable, "-m", "aioner.tagging"]
# On a small shared machine torch's thread pool waits on busy cores: one thread is several times
# faster for the tiny models here (the CLI runs get the same through OMP_NUM_THREADS).
ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


# ----- tiny random models -----
def tiny_bert_config(**extra):
    """The 2-layer, 32-wide BERT of every tiny model here; ``extra``: more BertConfig settings (vocab_size)."""
    from transformers import BertConfig

    return BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **extra)


def every_task_trained(scheme) -> dict[str, dict]:
    """A ``trained_tasks`` record naming every task of ``scheme`` (one sentence each), as a ``train.py``
    checkpoint records the tasks it trained: a tiny model carrying it is tagged without a warning."""
    return {task: {"sentences": 1, "mentions": {}} for task in scheme.tasks}


def tiny_tagger(decoder="crf", tasks=None, seed=0, tokenizer: str | None = None, trained=True):
    """An AIONER model on a 2-layer, 32-wide random BERT, with the embedded tokenizer (or the one
    saved in the folder ``tokenizer``, e.g. ``char_tokenizer()``) plus task tags.

    ``trained``: its config records every task as trained (one sentence each), as a ``train.py``
    checkpoint does, so taggers accept every task without warning; False: no record, like a
    checkpoint saved before the record existed."""
    import torch

    from aioner.checkpoint import resolve_encoder, tokenizer_with_tags
    from aioner_scheme import AIOScheme
    from modeling_aioner import AIONERConfig, AIONERForTokenClassification

    torch.manual_seed(seed)
    scheme = AIOScheme(tasks)
    tokenizer = tokenizer_with_tags(tokenizer or resolve_encoder(None), scheme)
    encoder = tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=512)
    config = AIONERConfig(encoder_config=encoder.to_dict(), tasks=scheme.to_pairs(), decoder=decoder)
    if trained:
        config.trained_tasks = every_task_trained(scheme)
    return AIONERForTokenClassification(config).eval(), tokenizer


def char_tokenizer() -> str:
    """A folder holding a WordPiece tokenizer whose vocabulary is single characters: it cuts every word
    into characters, unlike the embedded encoder's (an ensemble member with another tokenizer)."""
    from transformers import BertTokenizerFast

    folder = Path(tempfile.mkdtemp(prefix="aioner-char-tokenizer-"))
    chars = [chr(c) for c in range(33, 127)] + list("αβγδκµ°±×–—‘’“”")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join(special + chars + ["##" + c for c in chars]) + "\n", encoding="utf-8")
    BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    return str(folder)


def gene_model(labels=("B-Gene",)):
    """The tiny random BERT with a head that calls every word ``labels[0]`` (B-Gene): every word comes out as
    an entity. Several labels (B-Gene, B-Disease): each task that has one of them tags every word with it."""
    import torch

    model, tokenizer = tiny_tagger()
    with torch.no_grad():
        model.classifier.bias.fill_(-100.0)
        for label in labels:
            model.classifier.bias[model.config.label2id[label]] = 100.0
    return model, tokenizer


def save_tiny_encoder(path) -> str:
    """A 2-layer, 32-wide random BERT saved like a Hub encoder (a folder), with the embedded tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from aioner.checkpoint import resolve_encoder

    torch.manual_seed(0)
    BertModel(tiny_bert_config()).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_encoder(None)).save_pretrained(path)
    return str(path)


# ----- train.py as a subprocess -----
def train_args(recipe: str, corpora: list[str], output_dir, **options) -> list[str]:
    """``train.py``'s arguments: ``--recipe``, ``--corpora``, then each option as ``--name value`` in the
    order given (``True``: a bare flag such as ``--eval_test``), ``--output_dir`` last; all as strings."""
    args = ["--recipe", recipe, "--corpora", *corpora]
    for name, value in options.items():
        args += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    return args + ["--output_dir", str(output_dir)]


# ----- aioner-tag as a subprocess: size extremes, kill -9, resume -----
def corpus_path(*parts) -> Path | None:
    """A file of the local corpora folder (``dataset_scripts.corpora.local_corpora_dir``), None if absent."""
    from dataset_scripts.corpora import local_corpora_dir

    root = local_corpora_dir()
    path = root.joinpath(*parts) if root is not None else None
    return path if path is not None and path.exists() else None


# Runs argv[2:] and writes its peak RSS (KiB) to argv[1]. Why a go-between: Linux sets a process's
# ru_maxrss at exec to the RSS it had before, and a child forked from a large process (pytest after
# a few hundred tests: about 2 GiB) starts with its parent's pages, so the command's own peak is lost
# under its parent's. This small process forks the command instead.
_PEAK_RSS = """
import os, resource, signal, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
if rc < 0:  # killed by a signal: die by the same one
    signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
"""


def run_measured(cmd, timeout=600, **kwargs) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, peak RSS in MiB) of a command; the peak is the command's own,
    not its caller's (see ``_PEAK_RSS``)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_kib"
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        with open(out, "wb") as fout, open(err, "wb") as ferr:
            proc = subprocess.Popen(
                [sys.executable, "-c", _PEAK_RSS, str(peak), *map(str, cmd)],
                stdout=fout,
                stderr=ferr,
                start_new_session=True,  # a timeout kills the command along with the go-between
                **{"env": ONE_THREAD_ENV, **kwargs},
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        rss_kib = int(peak.read_text()) if peak.exists() else 0
        return (
            proc.returncode,
            out.read_bytes().decode("utf-8", "replace"),
            err.read_bytes().decode("utf-8", "replace"),
            rss_kib / 1024,
        )


def long_text(n: int) -> str:
    """About n characters of real abstracts (BioRED test, repeated), else synthetic sentences."""
    path = corpus_path("pubtator", "BioRED_Test.PubTator")
    if path is not None:
        base = "\n".join(d.text for d in read_pubtator(path))
    else:  # no corpora
        base = " ".join(f"Mutations in BRCA{i % 9} cause cancer (p = 0.0{i % 7}) in mice." for i in range(2000))
    return (base * (n // len(base) + 1))[:n]


def check_covered(text: str, ents, where: str) -> None:
    """Entities are exact slices and cover every non-space character: no word dropped or truncated."""
    covered = []
    for s, e, t in ents:
        assert text[s:e] == t, f"{where}: entity {s}-{e} {t[:40]!r} is not the text there"
        covered += range(s, e)
    want = [i for i, c in enumerate(text) if not c.isspace()]
    assert covered == want, f"{where}: {len(want) - len(set(covered))} characters not covered"


def kill_and_resume(
    src: Path,
    checkpoint,
    out_dir: Path,
    chunk_docs: list[int],
    wait_lines: int = 2,
    junk: bool = True,
    timeout: float = 600,
) -> dict:
    """Run aioner-tag on ``src`` once per entry of ``chunk_docs``, killing (SIGKILL) every run but the last
    once its part file has grown by ``wait_lines`` chunks; between runs, optionally plant junk in the
    part file (a torn line, a record of another chunking, a non-record). Returns what happened."""
    out = out_dir / (src.stem + ".pubtator")
    part = out_dir / (out.name + ".part0")
    kills, killed_at, log = 0, [], []
    for i, chunk in enumerate(chunk_docs):
        cmd = TAG + [
            str(src),
            "--model",
            str(checkpoint),
            "--output_dir",
            str(out_dir),
            "--task",
            "Gene",
            "--chunk_docs",
            str(chunk),
        ]
        last = i == len(chunk_docs) - 1
        if last:
            res = subprocess.run(cmd, cwd=CHECKOUT, capture_output=True, text=True, timeout=timeout, env=ONE_THREAD_ENV)
            log.append(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-500:])
            final_rc = res.returncode
            break
        before = part.read_text(errors="replace").count("\n") if part.exists() else 0
        proc = subprocess.Popen(
            cmd, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD_ENV
        )
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not out.exists():
            if part.exists() and part.read_text(errors="replace").count("\n") >= before + wait_lines:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        killed_at.append(part.read_text(errors="replace").count("\n") if part.exists() else 0)
        if junk and part.exists():
            with open(part, "a", encoding="utf-8") as f:
                f.write(json.dumps({"chunk": 0, "key": "from another run", "docs": 1, "entities": [[]]}) + "\n")
                f.write("[1, 2]\n")
                f.write('{"chunk": 1, "key": "torn by a kill", "entities": [[{"start": 0, "e')  # no newline
    result = {"kills": kills, "part_lines_at_kills": killed_at, "final_exit": final_rc, "final_log": log[-1]}
    tmp_left = sorted(p.name for p in out_dir.iterdir() if p.name.endswith(".tmp") or ".part" in p.name)
    result["leftover_files"] = tmp_left
    return result


def check_exactly_once(src: Path, out: Path, ids: list[str]) -> dict:
    """Counts of lost and duplicated documents; every mention checked against the text (strict reader),
    every non-space character of every document covered (the gene head tags every word)."""
    got = [d.id for d in read_pubtator(out)]
    lost = sum(max(0, ids.count(i) - got.count(i)) for i in set(ids))
    duplicated = sum(max(0, got.count(i) - ids.count(i)) for i in set(got))
    for d, g in zip(read_pubtator(out), read_pubtator(src)):
        assert [p.text for p in d.passages] == [p.text for p in g.passages], d.id
        check_covered(d.text, [(m.start, m.end, m.text) for m in d.mentions], f"document {d.id}")
    return {
        "documents": len(ids),
        "output_documents": len(got),
        "resume_lost": lost,
        "resume_duplicated": duplicated,
        "same_order": got == ids,
    }
