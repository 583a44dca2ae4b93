"""Robustness campaign, full size (issue 7): the by-hand run behind ``tests/test_robustness.py``.

    python -m benchmarks.robustness [--fuzz_cases 100000] [--mixed_files 20000] [--unicode_examples 5000]
                                   [--tag_docs 2000] [--skip fuzz mixed unicode rss tagging training]
                                   [--out results/robustness.json] [--update]

0. mixed: files (JSONL, PubTator, BioC XML/JSON) of good records with 1-5 bad records mixed in
   (truncated JSON, a missing or non-string text, bytes that are not UTF-8, a lone surrogate, an
   abstract or annotation without its title, garbage lines, a passage without or with a bad offset,
   overlapping passages, missing keys): every good record must come out exactly once, in order,
   with exact offsets in the written output, and every bad one must be listed as skipped
   (``good_records_lost``, goal 0; ``bad_records_reported``);

1. fuzz: four targets (PubTator, BioC XML/JSON and CoNLL readers with their writers' round trip,
   and aioner-tag's input handling: format detection, reading, writing the tagged output back),
   >= 100,000 generated cases in all, with hypothesis (no shrinking: every failing case is
   counted, and its message kept). An "unhandled exception" is any exception but the documented
   one (CorpusFormatError / InputError naming the file), or a broken invariant;
2. unicode: the property test (every entity equals the input slice at its offsets and every
   non-space character is in one; BioC offsets are code points as ``bioc.validate`` checks them);
3. rss: peak RSS (wait4 on the process) of ``aioner-tag`` tagging one 200,000-character document
   with a checkpoint on the embedded MiniLM encoder, and of the same command on a 100-character
   document (the fixed cost: Python, torch, transformers, spaCy, the model);
4. tagging: SIGKILL during ``aioner-tag`` on ~2,000 PubTator documents (the tiny random model with a
   head that tags every word, so completeness is checkable), three times mid-run and once while the
   output is assembled, junk planted in the part file after each kill (a torn line, a record of
   another run, a non-record), then a run to the end: documents lost and duplicated, leftovers;
5. training: SIGKILL during ``train.py`` (tiny random encoder, --save_steps), twice, each time
   resumed with ``--resume_from_checkpoint latest``, then run to the end.

The targets, generators and oracles of 0-2 are ``benchmarks.fuzz`` and the subprocess harness of 3-4
``aioner.testing``: the tests run the same code at CI size. Writes ``results/robustness.json``
(with command, machine, date, seconds).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from aioner import testing
from benchmarks import fuzz as targets
from benchmarks.common import REPO, command, machine, now, write_result
from dataset_scripts.pubtator import read_pubtator

# Bugs the fuzzers (and the review they prompted) found, all fixed; kept here so the result file
# lists them next to the counts that show they stay fixed.
FAILURES_FOUND = [
    "PubTator (fuzz): an offset of more than 4,300 digits let int()'s ValueError escape; offsets in "
    "non-ASCII digits ('٣') were silently accepted -> ASCII digits, at most 18, else CorpusFormatError",
    "PubTator/CoNLL (fuzz): a byte order mark at the start of a later line (doubled BOM, concatenated files) "
    "ended up invisibly in the document id / word, and the written file no longer read back -> dropped",
    "PubTator (fuzz): CR CR LF line endings left a '\\r' at the end of the title/abstract that the writer refuses: "
    "aioner-tag crashed after tagging -> every trailing '\\r' is part of the line ending",
    "PubTator writer (fuzz): any '\\r' inside a title/abstract was refused although the reader keeps it as text: "
    "aioner-tag crashed writing such files -> written (only a trailing one is refused)",
    "PubTator (fuzz): lone-CR line endings made the whole file one title whose id held '\\r...': unwritable, "
    "aioner-tag crashed -> clear error 'lines end in a lone carriage return'",
    "PubTator writer (review): document ids holding '|', a tab or a line break were written into unreadable "
    "files -> CorpusFormatError",
    "BioC JSON (fuzz): values of the wrong type (string/float/null/NaN offsets, numeric text, infons that are "
    "lists or numbers, string location offsets) let TypeError/AttributeError escape read_bioc -> checked per "
    "document, CorpusFormatError naming file and document",
    "BioC JSON (fuzz): lone surrogates ('\\ud800' escapes) were accepted and crashed the tokenizer and the "
    "writers later -> CorpusFormatError",
    'BioC (fuzz): empty XML infons (<infon key="type"/>) and non-string JSON infons gave mentions whose type '
    "was None or a dict (writers crashed; type '' did not round-trip) -> '' / CorpusFormatError",
    "BioC (probe): a document without <id> was read with the id 'None' -> error naming it by position (#n)",
    "BioC (review): overlapping sentences of a passage without text were silently shifted -> CorpusFormatError",
    "Documents (probe): a negative passage offset was reported as an overlap -> 'negative offset'",
    "CoNLL (fuzz): an empty word ('<TAB>B-Gene') made an empty mention (start == end) silently -> "
    "CorpusFormatError naming file and line",
    "aioner-tag (fuzz): a .xml file holding BioC JSON was read as JSON but written as XML, crashing on control "
    "characters -> the content decides the BioC flavour of input and output",
    "aioner-tag (fuzz): JSONL with '\\ud800' escapes crashed the tokenizer/writer -> InputError naming file, line "
    "and document; an 'id' of null became 'None' -> the line number",
    "aioner-tag (review): a JSONL file with a UTF-8 BOM was refused; .txt offsets were computed on text with "
    "CRLF translated to LF, shifting every offset after the first line relative to the file",
    "engine (probe/property test): a str with lone surrogates crashed spaCy and the tokenizer -> tokenized as "
    "'?', offsets unchanged",
    "resume (review, kill test): part records of another --chunk_docs, an edited input or another model were "
    "reused for other documents: entities silently paired with the wrong documents -> keyed by documents "
    "and settings",
    "resume (review, kill test): a part line torn by SIGKILL glued to the next record: that chunk was lost and "
    "assembling crashed with KeyError -> new line after a torn one",
    "aioner-tag (review): two inputs with one output name (a.txt, a.jsonl) -> the second silently skipped "
    "as 'finished' -> error",
    "aioner-tag (review): killed between the rename and the clean-up left .part files forever -> removed",
    "aioner-tag (review): a write_output error crashed the whole run -> reported per file, parts kept",
    "tokenizer warning (size test): a 5,000-sub-word word printed transformers' 'will result in indexing "
    "errors', which is not true here -> silenced",
    "BioC (fuzz, first full run): a passage offset of 2**70 let OverflowError escape Document.text, and one of "
    "10**12 would have asked for a terabyte of padding spaces -> offsets above 10**8 are a CorpusFormatError",
    "PubTator (fuzz, first full run): the lone-CR error did not name a document whose id is empty ('|t|...')",
    "safe loading: a pickle-only checkpoint failed with 'no file named model.safetensors' -> "
    "PickleWeightsError explaining the refusal; allow_pickle=True / --allow_pickle opt in",
]

FUZZ_WEIGHTS = {"pubtator": 0.3, "bioc": 0.3, "conll": 0.15, "tagger_input": 0.25}


def fuzz(total: int, seed: int) -> dict:
    from hypothesis import given
    from hypothesis import seed as hseed

    out = {"cases": 0, "by_target": {}, "unhandled": 0, "unhandled_examples": [], "seconds": 0.0}
    block = 5000  # hypothesis keeps a tree of what it tried: run in blocks to keep it small
    for target, weight in FUZZ_WEIGHTS.items():
        strategy, check = targets.FUZZ_TARGETS[target]
        n_target, done, unhandled, start = round(total * weight), 0, 0, time.time()
        b = 0
        while done < n_target:
            n = min(block, n_target - done)
            count = [0]

            def case(c):
                nonlocal unhandled
                count[0] += 1
                try:
                    check(c)
                except Exception as exc:  # counted, kept, and the run goes on
                    unhandled += 1
                    if len(out["unhandled_examples"]) < 20:
                        out["unhandled_examples"].append(
                            f"{target}: {type(exc).__name__}: {str(exc)[:300]} <- {repr(c)[:200]}"
                        )

            settings = targets.fuzz_settings(n, shrink=False, seed=seed)
            settings(hseed(seed * 1000 + b)(given(strategy())(case)))()
            done += count[0]
            b += 1
            if count[0] == 0:
                break
        seconds = time.time() - start
        out["by_target"][target] = {"cases": done, "unhandled": unhandled, "seconds": round(seconds, 1)}
        out["cases"] += done
        out["unhandled"] += unhandled
        out["seconds"] += seconds
        print(f"fuzz {target}: {done} cases, {unhandled} unhandled, {seconds:.0f} s", flush=True)
    out["seconds"] = round(out["seconds"], 1)
    return out


def mixed_files(total: int, seed: int) -> dict:
    """Files of good records with bad ones mixed in (issue 19): every good record must come out exactly
    once with exact offsets, every bad one listed as skipped (``benchmarks.fuzz``'s mixed_files target)."""
    from hypothesis import given
    from hypothesis import seed as hseed

    out = {
        "files": 0,
        "good_records": 0,
        "good_records_lost": 0,
        "good_records_duplicated": 0,
        "bad_records_mixed_in": 0,
        "bad_records_reported": 0,
        "failures": 0,
        "failure_examples": [],
    }
    start, block, b = time.time(), 2000, 0
    while out["files"] < total:
        n, count = min(block, total - out["files"]), [0]

        def case(c):
            count[0] += 1
            try:
                got = targets.mixed_file_counts(c)
            except Exception as exc:  # counted, kept, and the run goes on
                out["failures"] += 1
                if len(out["failure_examples"]) < 10:
                    out["failure_examples"].append(f"{type(exc).__name__}: {str(exc)[:300]} <- {repr(c)[:200]}")
                return
            for key, field in (
                ("good", "good_records"),
                ("lost", "good_records_lost"),
                ("duplicated", "good_records_duplicated"),
                ("bad", "bad_records_mixed_in"),
                ("reported", "bad_records_reported"),
            ):
                out[field] += got[key]

        settings = targets.fuzz_settings(n, shrink=False, seed=seed)
        settings(hseed(seed * 1000 + b)(given(targets.mixed_file_cases())(case)))()
        out["files"] += count[0]
        b += 1
        if count[0] == 0:
            break
    out["seconds"] = round(time.time() - start, 1)
    print(f"mixed files: {out}", flush=True)
    return out


def unicode_property(examples: int) -> dict:
    import torch
    from hypothesis import given

    from pipeline_aioner import AIONERTagger

    torch.set_num_threads(1)
    engine = AIONERTagger(*testing.gene_model())
    work = Path(tempfile.mkdtemp(prefix="aioner-unicode-"))
    count, failures, start = [0], [], time.time()

    @targets.fuzz_settings(examples, shrink=False, seed=0)
    @given(title=targets.UNICODE_TEXTS, abstract=targets.UNICODE_TEXTS)
    def prop(title, abstract):
        count[0] += 1
        try:
            targets.check_unicode(engine, title, abstract, work)
        except Exception as exc:
            if len(failures) < 10:
                failures.append(f"{type(exc).__name__}: {str(exc)[:300]} <- {title!r} {abstract!r}"[:600])
            else:
                failures.append("")

    prop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"unicode: {count[0]} examples, {len(failures)} failures", flush=True)
    return {
        "examples": count[0],
        "failures": len(failures),
        "failure_examples": [f for f in failures if f],
        "seconds": round(time.time() - start, 1),
    }


def peak_rss(work: Path) -> dict:
    from aioner.checkpoint import new_tagger, save_checkpoint

    ckpt = save_checkpoint(*new_tagger(), work / "minilm")  # the embedded MiniLM, untrained head
    result = {}
    for name, text in (("small", testing.long_text(100)), ("200k", testing.long_text(200_000))):
        inp, out = work / f"rss-{name}" / "doc.txt", work / f"rss-{name}-out"
        inp.parent.mkdir(parents=True)
        inp.write_text(text, encoding="utf-8")
        start = time.time()
        cmd = testing.TAG + [str(inp), "--model", str(ckpt), "--output_dir", str(out)]
        rc, stdout, stderr, rss = testing.run_measured(cmd, timeout=3000, cwd=REPO)
        rec = json.loads((out / "doc.jsonl").read_text(encoding="utf-8")) if rc == 0 else None
        ok = (
            rec is not None
            and rec["text"] == text
            and all(text[e["start"] : e["end"]] == e["text"] for e in rec["entities"])
        )
        result[name] = {
            "characters": len(text),
            "exit": rc,
            "peak_rss_mb": round(rss, 1),
            "seconds": round(time.time() - start, 1),
            "text_kept_and_offsets_exact": ok,
            "entities": None if rec is None else len(rec["entities"]),
        }
        if rc != 0:
            result[name]["stderr"] = stderr[-1500:]
        print(f"rss {name}: {rss:.0f} MiB, exit {rc}", flush=True)
    return result


def documents_source(n: int, dest: Path) -> list[str]:
    """n documents (titles and abstracts, annotations dropped: the tagger replaces them) from BC5CDR,
    NCBI-disease and BioRED (train+dev)."""
    from dataset_scripts.documents import Document
    from dataset_scripts.pubtator import write_pubtator

    docs = []
    for name in ("BC5CDR_TrainDev", "NCBIdisease_TrainDev", "BioRED_TrainDev"):
        path = testing.corpus_path("pubtator", f"{name}.PubTator")
        if path is None:
            raise FileNotFoundError(f"{name}.PubTator is not in the local corpora folder")
        for d in read_pubtator(path, strict=False):
            docs.append(Document(d.id, d.passages, []))
            if len(docs) == n:
                break
        if len(docs) == n:
            break
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_pubtator(docs, dest)
    return [d.id for d in docs]


def _complete(out: Path, src: Path) -> bool:
    if not out.exists():
        return True
    return [d.id for d in read_pubtator(out)] == [d.id for d in read_pubtator(src)]


def tagging_kill(n_docs: int, work: Path) -> dict:
    from aioner.checkpoint import save_checkpoint

    ckpt = save_checkpoint(*testing.gene_model(), work / "gene")
    src = work / "tag-in" / "docs.pubtator"
    ids = documents_source(n_docs, src)
    out_dir, chunk_docs, start = work / "tag-out", 50, time.time()
    # Three kills mid-run (junk planted after each), then one while the output is assembled, then the end.
    res = testing.kill_and_resume(src, ckpt, out_dir, chunk_docs=[chunk_docs] * 4, wait_lines=6, timeout=3000)
    if res["final_exit"] == 0:  # finished: tag it again from scratch to kill during assembly
        first = testing.check_exactly_once(src, out_dir / "docs.pubtator", ids)
    else:
        first = None
    assembly_dir = work / "tag-out-assembly"
    n_chunks = -(-n_docs // chunk_docs)
    part, out = assembly_dir / "docs.pubtator.part0", assembly_dir / "docs.pubtator"
    cmd = testing.TAG + [
        str(src),
        "--model",
        str(ckpt),
        "--output_dir",
        str(assembly_dir),
        "--task",
        "Gene",
        "--chunk_docs",
        str(chunk_docs),
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=testing.ONE_THREAD_ENV
    )
    deadline = time.time() + 3000
    while time.time() < deadline and proc.poll() is None:
        if part.exists() and part.read_text(errors="replace").count('"chunk"') >= n_chunks:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assembly = {
        "killed_with_all_chunks_done": part.exists() and part.read_text(errors="replace").count('"chunk"') >= n_chunks,
        "output_present_after_kill": out.exists(),
        "output_complete_or_absent": _complete(out, src),
    }
    final = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3000, env=testing.ONE_THREAD_ENV)
    assembly["rerun_exit"] = final.returncode
    assembly["rerun_log"] = final.stdout.strip().splitlines()[-1] if final.stdout.strip() else final.stderr[-500:]
    assembly.update(testing.check_exactly_once(src, out, ids))
    assembly["leftover_files"] = sorted(p.name for p in assembly_dir.iterdir() if p.name != "docs.pubtator")
    print(f"tagging kill: {res}, {first}, assembly {assembly}", flush=True)
    return {
        "documents": n_docs,
        "chunk_docs": chunk_docs,
        "mid_run": {**res, **(first or {})},
        "during_assembly": assembly,
        "seconds": round(time.time() - start, 1),
    }


def training_kill(work: Path) -> dict:
    from aioner.training import latest_progress

    encoder = testing.save_tiny_encoder(work / "tiny-encoder")
    out = work / "train-out"
    options = dict(sample=60, epochs=2, batch_size=8, save_steps=4, encoder=encoder, eval_test=True)
    base = [sys.executable, str(REPO / "train.py"), *testing.train_args("single", ["BioRED"], out, **options)]
    env = {**testing.ONE_THREAD_ENV, "PYTHONUNBUFFERED": "1"}
    kills, resumed, start = [], [], time.time()

    def saved_step():
        return latest_progress(out).get("global_step")

    for k in range(2):
        cmd = base + (["--resume_from_checkpoint", "latest"] if k else [])
        before = saved_step() or 0
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 3000
        while time.time() < deadline and proc.poll() is None and (saved_step() or 0) <= before:
            time.sleep(0.2)
        finished_early = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        resumed += re.findall(r"resumed from .*", text)
        kills.append(
            {
                "saved_step_at_kill": saved_step(),
                "finished_before_kill": finished_early,
                "exit": proc.returncode,
                "log_tail": None if not finished_early else text[-1500:],
            }
        )
    last = saved_step()
    final = subprocess.run(
        base + ["--resume_from_checkpoint", "latest"], cwd=REPO, capture_output=True, text=True, timeout=3000, env=env
    )
    resumed += re.findall(r"resumed from .*", final.stdout)
    progress = latest_progress(out) or None
    result = {
        "kills": kills,
        "resumed": resumed,
        "state_before_final_run": last,
        "final_exit": final.returncode,
        "final_step": progress and progress["global_step"],
        "final_epoch": progress and progress["epoch"],
        "model_saved": (out / "model.safetensors").exists(),
        "seconds": round(time.time() - start, 1),
    }
    result["resumed_from_last_saved_state"] = bool(
        final.returncode == 0
        and last is not None
        and f"step {last}" in final.stdout
        and progress
        and progress["global_step"] > last
        and progress["epoch"] == 2
    )
    if final.returncode != 0:
        result["stderr"] = final.stderr[-2000:]
    print(f"training kill: {result}", flush=True)
    return result


def _total(tag: dict, key: str):
    values = [tag.get(k, {}).get(key) for k in ("mid_run", "during_assembly")]
    return None if None in values else sum(values)


def main():
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.robustness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--fuzz_cases", type=int, default=100_000)
    ap.add_argument("--unicode_examples", type=int, default=5000)
    ap.add_argument("--tag_docs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mixed_files", type=int, default=20_000, help="files of good records with bad ones mixed in")
    ap.add_argument("--skip", nargs="*", default=[], choices=["fuzz", "mixed", "unicode", "rss", "tagging", "training"])
    ap.add_argument("--out", default=str(REPO / "results" / "robustness.json"))
    ap.add_argument("--update", action="store_true", help="keep the parts not run from an existing --out file")
    args = ap.parse_args()
    start = time.time()
    work = Path(tempfile.mkdtemp(prefix="aioner-robustness-"))
    previous = json.loads(Path(args.out).read_text()) if args.update and Path(args.out).exists() else {}
    result = {
        **previous,
        "command": command("robustness"),
        "machine": machine() + "; subprocesses with OMP_NUM_THREADS=1",
        "date": now(),
        "failures_found": FAILURES_FOUND,
    }
    parts = {
        "fuzz": lambda: fuzz(args.fuzz_cases, args.seed),
        "mixed": lambda: mixed_files(args.mixed_files, args.seed),
        "unicode": lambda: unicode_property(args.unicode_examples),
        "rss": lambda: peak_rss(work),
        "tagging": lambda: tagging_kill(args.tag_docs, work),
        "training": lambda: training_kill(work),
    }
    for name, run in parts.items():
        if name in args.skip:
            continue
        began, when = time.time(), now()
        try:
            result[name] = run()
        except Exception:  # a part that breaks is recorded, and the others still run
            result[name] = {"error": traceback.format_exc()[-3000:]}
            print(result[name]["error"], file=sys.stderr, flush=True)
        # Each part says which run measured it: with --update, the parts kept are older than the top-level keys.
        result[name]["ran"] = {"command": result["command"], "date": when, "seconds": round(time.time() - began, 1)}
    fz, uni = result.get("fuzz", {}), result.get("unicode", {})
    tag = result.get("tagging", {})
    result.update(
        {
            "fuzz_cases": fz.get("cases"),
            "unhandled_exceptions": fz.get("unhandled"),
            "fuzz_seconds": fz.get("seconds"),
            "unicode_examples": uni.get("examples"),
            "unicode_failures": uni.get("failures"),
            "peak_rss_mb_200k": result.get("rss", {}).get("200k", {}).get("peak_rss_mb"),
            "peak_rss_mb_small_doc": result.get("rss", {}).get("small", {}).get("peak_rss_mb"),
            # over both scenarios (killed mid-run three times; killed while the output was assembled)
            "resume_lost": _total(tag, "resume_lost"),
            "resume_duplicated": _total(tag, "resume_duplicated"),
            "training_resumed": result.get("training", {}).get("resumed_from_last_saved_state"),
            "mixed_files": result.get("mixed", {}).get("files"),
            "good_records_lost": result.get("mixed", {}).get("good_records_lost"),
            "bad_records_reported": result.get("mixed", {}).get("bad_records_reported"),
            "seconds": round(time.time() - start, 1),
        }
    )
    if previous:
        result["parts_run"] = [n for n in parts if n not in args.skip]
        # The runs whose parts were kept: their command, date, machine and seconds would be overwritten above.
        earlier = {k: previous.get(k) for k in ("command", "machine", "date", "seconds", "parts_run") if k in previous}
        result["previous_runs"] = previous.get("previous_runs", []) + [earlier]
    write_result(args.out, result)
    shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "fuzz_cases",
                    "unhandled_exceptions",
                    "fuzz_seconds",
                    "unicode_examples",
                    "peak_rss_mb_200k",
                    "resume_lost",
                    "resume_duplicated",
                    "training_resumed",
                    "mixed_files",
                    "good_records_lost",
                    "bad_records_reported",
                    "seconds",
                )
            }
        )
    )


if __name__ == "__main__":
    main()
