"""Tagging speed, side by side in one run: our engine vs the stock pipeline vs the machine's roofline.

    python -m benchmarks.tagging_speed                       # BioRED test -> results/tagging_speed_cpu.json
    python -m benchmarks.tagging_speed --docs all-tests --out results/tagging_speed_cpu_all_tests.json

* ours: ``pipeline_aioner.AIONERTagger`` end to end (sentence/word splitting, sub-words, task
  tags, length-sorted batches with a token budget, encoder, CRF Viterbi + marginals, offsets)
  on the embedded MiniLM with the CRF head and with the softmax head;
* stock: ``transformers.pipeline("token-classification")`` over a plain ``BertForTokenClassification``
  with the same encoder weights, whole documents, aggregation "simple", at batch sizes 1, 8, 32
  (its best is the comparison). It truncates a text at 512 sub-words; on the all-tests set
  (full texts among them) it also runs with ``stride=128``, which covers every sub-word as we do;
* layouts: both systems run as one process with every torch thread and, with ``--processes N``
  (default: the core count), as N one-thread processes on contiguous shards of the documents (what
  ``torchrun --nproc_per_node N -m aioner.tagging`` does with its chunks); the headline compares the
  best layout of each (measured on 2 cores: no faster for ours, faster for the stock pipeline,
  whose per-document Python runs on one thread);
* ``--cli``: the real command on the test files, model loading and file I/O included, in one process
  and under torchrun with N processes (their outputs must be byte-identical);
* precision (``--precision``, default fp32 as aioner-tag's): ours, the stock pipeline (under the same
  autocast) and the roofline all run in it;
* roofline: this machine's dense matmul FLOP/s in that dtype with all threads (measured here, now) ÷ the
  encoder's FLOPs per token (linear layers 24·h² per layer + attention 4·n·h per layer, n = mean
  window length).
Weights are untrained (speed does not depend on them). Tokens are the non-padding sub-words the
encoder actually processed.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from aioner.checkpoint import new_tagger, resolve_encoder, save_checkpoint
from aioner.encoders import DEFAULT_ENCODER
from aioner.prediction import corpus_documents
from benchmarks.common import command, machine, now, write_result
from dataset_scripts.corpora import AIO_TRAINING_CORPORA
from pipeline_aioner import AIONERTagger

# Each AIONER test file once: BC5CDR-Disease's test file is BC5CDR-Chemical's.
TEST_SETS = [name for name in AIO_TRAINING_CORPORA if name != "BC5CDR-Disease"]


def matmul_flops(n=2048, reps=10, trials=3, dtype=None) -> float:
    """Dense matmul FLOP/s in ``dtype`` (fp32 for None): the median of ``trials`` timings of ``reps`` n x n
    products. A roofline must be measured in the dtype of the run it judges."""
    a, b = torch.randn(n, n, dtype=dtype or torch.float32), torch.randn(n, n, dtype=dtype or torch.float32)
    torch.mm(a, b)
    rates = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        rates.append(2 * n**3 * reps / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def tag_in_chunks(tagger, texts, passages, chunk_docs):
    """Each text's entities, tagged ``chunk_docs`` documents per call as aioner-tag does."""
    return [
        doc
        for k in range(0, len(texts), chunk_docs)
        for doc in tagger.tag(texts[k : k + chunk_docs], "ALL", passages[k : k + chunk_docs])
    ]


def autocast(dtype):
    """The stock pipeline in the precision ours runs in: bf16 autocast, as ours (or nothing for fp32)."""
    return torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)


def run_ours(decoder, texts, passages, chunk_docs, compile=False, dtype=None):
    torch.manual_seed(0)  # the same untrained weights as the multi-process workers
    model, tokenizer = new_tagger(decoder=decoder)
    model.eval()
    tagger = AIONERTagger(model, tokenizer, autocast_dtype=dtype, compile=compile)
    crf_seconds = [0.0]
    decode = model.decode_emissions

    def timed_decode(*a, **k):
        t = time.perf_counter()
        out = decode(*a, **k)
        crf_seconds[0] += time.perf_counter() - t
        return out

    model.decode_emissions = timed_decode
    warm = time.perf_counter()
    tagger.tag(texts[:5], "ALL", passages[:5])  # warm-up
    if compile:  # compilation, and recompilation for the shapes dynamic ones do not cover: one full pass
        tag_in_chunks(tagger, texts, passages, chunk_docs)
    warm = time.perf_counter() - warm
    crf_seconds[0] = 0.0
    start = time.perf_counter()
    ents = tag_in_chunks(tagger, texts, passages, chunk_docs)
    seconds = time.perf_counter() - start
    wins = tagger.windows_of(texts, "ALL", passages)
    tokens = sum(len(w.input_ids) for w in wins)
    mean_len = tokens / len(wins)
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "docs_per_s": len(texts) / seconds,
        "crf_seconds": crf_seconds[0],
        "decode_share": crf_seconds[0] / seconds,
        "windows": len(wins),
        "mean_window_length": mean_len,
        "entities": sum(map(len, ents)),
        "compiled": compile,
        "warmup_seconds": warm,
    }, model


def shards(texts, n):
    """``n`` contiguous slices of ``texts`` with about equal characters each."""
    total, bounds, acc = sum(map(len, texts)), [0], 0
    for i, text in enumerate(texts):
        acc += len(text)
        if len(bounds) < n and acc >= total * len(bounds) / n:
            bounds.append(i + 1)
    bounds += [len(texts)] * (n + 1 - len(bounds))
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _worker(kind, args, barrier, queue):
    """One process of a multi-process run: one torch thread, warm up, wait for all, tag a shard."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if kind == "ours":
        decoder, texts, passages, chunk_docs, dtype = args
        model, tokenizer = new_tagger(decoder=decoder)
        model.eval()
        tagger = AIONERTagger(model, tokenizer, autocast_dtype=dtype)
        tagger.tag(texts[:5], "ALL", passages[:5])  # warm-up
        barrier.wait()
        start = time.monotonic()
        n = sum(map(len, tag_in_chunks(tagger, texts, passages, chunk_docs)))
    else:
        texts, batch_size, stride, dtype = args
        pipe, _ = stock_pipeline(stride)
        with autocast(dtype):
            pipe(texts[:2], batch_size=batch_size)
            barrier.wait()
            start = time.monotonic()
            n = sum(map(len, pipe(texts, batch_size=batch_size)))
    queue.put((start, time.monotonic(), n))


def run_processes(
    kind, texts, passages, processes, decoder="crf", chunk_docs=256, batch_size=1, stride=None, dtype=None
):
    """Wall seconds for ``processes`` one-thread processes each tagging a contiguous shard of the
    documents (what ``torchrun --nproc_per_node N -m aioner.tagging`` does with its chunks), from the
    moment all are warm until the last one is done. CLOCK_MONOTONIC is system-wide on Linux."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    jobs = []
    for part in shards(texts, processes):
        args = (
            (decoder, texts[part], passages[part], chunk_docs, dtype)
            if kind == "ours"
            else (texts[part], batch_size, stride, dtype)
        )
        jobs.append(ctx.Process(target=_worker, args=(kind, args, barrier, queue)))
    for job in jobs:
        job.start()
    done = [queue.get() for _ in jobs]
    for job in jobs:
        job.join()
    seconds = max(end for _, end, _ in done) - min(start for start, _, _ in done)
    return {
        "processes": processes,
        "threads_per_process": 1,
        "seconds": seconds,
        "docs_per_s": len(texts) / seconds,
        "entities": sum(n for *_, n in done),
        "busiest_process_seconds": max(end - start for start, end, _ in done),
    }


def test_files(names):
    from dataset_scripts.corpora import fetch, get_corpus

    return sorted({str(fetch(get_corpus(name).splits["test"])) for name in names})


def run_cli(files, processes, model_dir, out_dir, chunk_docs):
    """Wall seconds of the real command, model loading and file reading/writing included:
    ``aioner-tag`` in one process, or under ``torchrun --nproc_per_node N`` (one thread each)."""
    import shutil
    import subprocess

    shutil.rmtree(out_dir, ignore_errors=True)
    args = [
        "-m",
        "aioner.tagging",
        *files,
        "--model",
        model_dir,
        "--output_dir",
        out_dir,
        "--chunk_docs",
        str(chunk_docs),
    ]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), *args]
        env["OMP_NUM_THREADS"] = "1"
    start = time.perf_counter()
    res = subprocess.run([sys.executable, *args], check=True, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = [line for line in res.stdout.splitlines() if line.startswith("tagged ")]
    if processes > 1 and not (len(summary) == 1 and f"by {processes} processes" in summary[0]):
        # N lone processes would each tag everything: not the layout being measured.
        raise RuntimeError(f"torchrun did not start {processes} cooperating ranks: {summary}")
    outputs = {p.name: p.read_bytes() for p in sorted(Path(out_dir).iterdir())}
    return {
        "processes": processes,
        "seconds": seconds,
        "command": " ".join(["python", *args]),
        "summary": summary[-1] if summary else None,
        "outputs": outputs,
    }


def stock_pipeline(stride):
    from transformers import AutoTokenizer, BertForTokenClassification, pipeline

    path = resolve_encoder(None)
    model = BertForTokenClassification.from_pretrained(path, num_labels=19).eval()
    tok = AutoTokenizer.from_pretrained(path)
    kwargs = {"stride": stride} if stride else {}
    return pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", **kwargs), tok


def run_stock(texts, batch_size, stride=None, dtype=None):
    """The stock pipeline; ``stride``: long texts in overlapping chunks instead of truncated at 512."""
    pipe, tok = stock_pipeline(stride)
    with autocast(dtype):
        pipe(texts[:2], batch_size=batch_size)
        start = time.perf_counter()
        pipe(texts, batch_size=batch_size)
        seconds = time.perf_counter() - start
    lengths = [len(ids) for ids in tok(texts, verbose=False)["input_ids"]]
    limit = tok.model_max_length
    processed = sum(lengths) if stride else sum(min(n, limit) for n in lengths)
    return {
        "batch_size": batch_size,
        "stride": stride,
        "seconds": seconds,
        "tokens_per_s": processed / seconds,
        "tokens_processed": processed,
        "texts_truncated": 0 if stride else sum(n > limit for n in lengths),
        "docs_per_s": len(texts) / seconds,
    }


def main():
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.tagging_speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--docs", choices=["biored", "all-tests"], default="biored")
    ap.add_argument("--out", default="results/tagging_speed_cpu.json")
    ap.add_argument("--chunk_docs", type=int, default=256, help="documents per tag() call, as aioner-tag")
    ap.add_argument("--heads", nargs="+", default=["crf", "softmax"], choices=["crf", "softmax"])
    ap.add_argument(
        "--stock",
        nargs="+",
        default=None,
        help="stock runs as BATCH or BATCH:STRIDE (default: 1 8 32 on BioRED; 1 and 1:128 on all tests)",
    )
    ap.add_argument("--limit", type=int, help="only the first N documents (a smoke run)")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also ours under torch.compile (aioner-tag --compile), after an untimed compiling pass",
    )
    ap.add_argument(
        "--cli",
        action="store_true",
        help="also time the aioner-tag command on the test files: one process and N under torchrun",
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="also run ours and the best stock run as N one-thread processes on shards (1: skip)",
    )
    ap.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        default="fp32",
        help="of ours, the stock pipeline (autocast) and the roofline alike (aioner-tag's --precision; "
        "its default is fp32)",
    )
    args = ap.parse_args()
    from pipeline_aioner import PRECISIONS, default_autocast_dtype

    dtype = default_autocast_dtype(torch.device("cpu")) if args.precision == "auto" else PRECISIONS[args.precision]
    precision = "bf16" if dtype is not None else "fp32"
    stock_runs = args.stock or (["1", "8", "32"] if args.docs == "biored" else ["1", "1:128"])
    torch.manual_seed(0)
    names = ["BioRED"] if args.docs == "biored" else TEST_SETS
    texts, passages = [], []
    for name in names:
        t, p, _ = corpus_documents(name)
        texts += t
        passages += p
    if args.limit:
        texts, passages = texts[: args.limit], passages[: args.limit]
    flops_before = matmul_flops(dtype=dtype)
    ours = {}
    for head in args.heads:
        ours[head], model = run_ours(head, texts, passages, args.chunk_docs, dtype=dtype)
        print(
            head, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in ours[head].items()}), flush=True
        )
    crf = ours[args.heads[0]]
    compiled = None
    if args.compile:
        compiled, _ = run_ours(args.heads[0], texts, passages, args.chunk_docs, compile=True, dtype=dtype)
        print("compiled", json.dumps(compiled), flush=True)
    stock = []
    for run in stock_runs:
        batch, _, stride = run.partition(":")
        stock.append(run_stock(texts, int(batch), int(stride) if stride else None, dtype=dtype))
        print("stock", json.dumps(stock[-1]), flush=True)
    layouts = {"ours": [], "stock": []}
    threads = torch.get_num_threads()
    if args.processes > 1:
        run = run_processes(
            "ours", texts, passages, args.processes, decoder=args.heads[0], chunk_docs=args.chunk_docs, dtype=dtype
        )
        layouts["ours"].append({**run, "tokens_per_s": crf["tokens"] / run["seconds"]})
        print("ours", json.dumps(layouts["ours"][-1]), flush=True)
        best = max(stock, key=lambda s: s["docs_per_s"])
        run = run_processes(
            "stock", texts, passages, args.processes, batch_size=best["batch_size"], stride=best["stride"], dtype=dtype
        )
        layouts["stock"].append(
            {
                **run,
                "batch_size": best["batch_size"],
                "stride": best["stride"],
                "tokens_per_s": best["tokens_processed"] / run["seconds"],
                "texts_truncated": best["texts_truncated"],
            }
        )
        print("stock", json.dumps(layouts["stock"][-1]), flush=True)
    cli = None
    if args.cli and not args.limit:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            save_checkpoint(*new_tagger(decoder=args.heads[0]), f"{tmp}/model")
            files = test_files(names)
            runs = [
                run_cli(files, n, f"{tmp}/model", f"{tmp}/out{n}", args.chunk_docs) for n in sorted({1, args.processes})
            ]
        cli = {
            "files": [Path(f).name for f in files],
            "documents": len(texts),
            "outputs_identical": all(r["outputs"] == runs[0]["outputs"] for r in runs),
            "runs": [
                {**{k: v for k, v in r.items() if k != "outputs"}, "docs_per_s": len(texts) / r["seconds"]}
                for r in runs
            ],
        }
        print("cli", json.dumps(cli), flush=True)
    flops_after = matmul_flops(dtype=dtype)
    # Both are kept: on a shared machine one can come out ~17% low (a disturbed measurement), which
    # would inflate fraction_of_roofline; a reader can then see the disagreement.
    flops = (flops_before + flops_after) / 2
    torch.set_num_threads(1)
    flops_one_thread = matmul_flops(dtype=dtype)
    torch.set_num_threads(threads)
    cfg = model.encoder.config
    h, layers, n = cfg.hidden_size, cfg.num_hidden_layers, crf["mean_window_length"]
    flops_per_token = layers * (24 * h * h + 4 * n * h)
    roofline = flops / flops_per_token
    one_process = f"1 process x {threads} threads"
    ours_layouts = [
        {
            "layout": one_process,
            "docs_per_s": crf["docs_per_s"],
            "tokens_per_s": crf["tokens_per_s"],
            "decode_share": crf["decode_share"],
        }
    ]
    if compiled:
        ours_layouts.append(
            {
                "layout": one_process + ", compiled",
                "docs_per_s": compiled["docs_per_s"],
                "tokens_per_s": compiled["tokens_per_s"],
                "decode_share": compiled["decode_share"],
                "warmup_seconds": compiled["warmup_seconds"],
            }
        )
    ours_layouts += [{"layout": f"{r['processes']} processes x 1 thread", **r} for r in layouts["ours"]]
    best_ours = max(ours_layouts, key=lambda r: r["docs_per_s"])
    # The stock alternative as a user gets it: one pipeline, its best batch size. Sharded over
    # processes (which the stock pipeline does not do by itself) it is reported beside.
    best_stock = max(stock, key=lambda s: s["docs_per_s"])
    full_stock = [s for s in stock if s["texts_truncated"] == 0]
    best_full_stock = max(full_stock, key=lambda s: s["docs_per_s"]) if full_stock else None
    best_sharded = max(layouts["stock"], key=lambda s: s["docs_per_s"]) if layouts["stock"] else None
    result = {
        "command": command("tagging_speed"),
        "machine": machine() + f", {precision}",
        "precision": precision,
        "date": now(),
        "documents": len(texts),
        "test_sets": names,
        "encoder": DEFAULT_ENCODER,
        "tokens_per_s": round(best_ours["tokens_per_s"], 1),
        "docs_per_s": round(best_ours["docs_per_s"], 2),
        "layout": best_ours["layout"],
        "speedup_vs_stock_pipeline": round(best_ours["docs_per_s"] / best_stock["docs_per_s"], 3),
        "speedup_vs_stock_pipeline_untruncated": (
            round(best_ours["docs_per_s"] / best_full_stock["docs_per_s"], 3) if best_full_stock else None
        ),
        "speedup_vs_stock_sharded": (
            round(best_ours["docs_per_s"] / best_sharded["docs_per_s"], 3) if best_sharded else None
        ),
        "fraction_of_roofline": round(best_ours["tokens_per_s"] / roofline, 3),
        "default_settings": {
            "layout": one_process + " (aioner-tag without --compile)",
            "docs_per_s": round(crf["docs_per_s"], 2),
            "tokens_per_s": round(crf["tokens_per_s"], 1),
            "speedup_vs_stock_pipeline": round(crf["docs_per_s"] / best_stock["docs_per_s"], 3),
            "fraction_of_roofline": round(crf["tokens_per_s"] / roofline, 3),
            "crf_share": round(crf["decode_share"], 4),
        },
        "ours_layouts": ours_layouts,
        "stock_layouts": layouts["stock"],
        "cli": cli,
        "crf_share": round(best_ours.get("decode_share", crf["decode_share"]), 4),
        "decoder": args.heads[0],
        "chunk_docs": args.chunk_docs,
        **{f"ours_{head}": ours[head] for head in args.heads},
        f"ours_{args.heads[0]}_compiled": compiled,
        "stock_pipeline": stock,
        "matmul_flops_per_s": flops,
        "matmul_flops_per_s_before_after": [flops_before, flops_after],
        "matmul_flops_per_s_one_thread": flops_one_thread,
        "encoder_flops_per_token": flops_per_token,
        "roofline_tokens_per_s": round(roofline, 1),
        "notes": (
            "headline figures are the best layout of ours (one process with every thread, compiled "
            "or not, or one one-thread process per core on contiguous shards, as torchrun --nproc_per_node N "
            "-m aioner.tagging) against the stock pipeline in one process at its best batch size; "
            "speedup_vs_stock_sharded compares with the stock pipeline sharded the same way over processes; "
            "default_settings: aioner-tag's defaults; compiled runs exclude their one-off compilation "
            "(warmup_seconds); the roofline is the machine's all-thread matmul FLOP/s in every layout. "
            "speedup compares documents/s with the best stock run (ours also wraps every sentence in task "
            "tags and never truncates; the stock pipeline truncates texts at 512 sub-words unless given a "
            "stride, so its truncating runs do less work on long texts); crf_share is the CRF decode "
            "(Viterbi + marginals for scores) over all tagging time; stock tokens_per_s counts the "
            "sub-words it processed"
        ),
    }
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=1))


if __name__ == "__main__":
    main()
