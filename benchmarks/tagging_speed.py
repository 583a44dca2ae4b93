"""Tagging speed, side by side in one run: our engine vs the stock pipeline vs the machine's roofline.

    python benchmarks/tagging_speed.py                       # BioRED test -> results/tagging_speed_cpu.json
    python benchmarks/tagging_speed.py --docs all-tests --out results/tagging_speed_cpu_all_tests.json

* ours: ``pipeline_aioner.AIONERTagger`` end to end (sentence/word splitting, sub-words, task
  tags, length-sorted batches with a token budget, encoder, CRF Viterbi + marginals, offsets)
  on the embedded MiniLM with the CRF head and with the softmax head;
* stock: ``transformers.pipeline("token-classification")`` over a plain ``BertForTokenClassification``
  with the same encoder weights, whole documents, aggregation "simple", at batch sizes 1, 8, 32
  (its best is the comparison). It truncates a text at 512 sub-words; on the all-tests set
  (full texts among them) it also runs with ``stride=128``, which covers every sub-word as we do;
* roofline: this machine's dense fp32 matmul FLOP/s (measured here, now) ÷ the encoder's FLOPs per
  token (linear layers 24·h² per layer + attention 4·n·h per layer, n = mean window length).
Weights are untrained (speed does not depend on them). Tokens are the non-padding sub-words the
encoder actually processed.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aioner.checkpoint import new_tagger, resolve_encoder  # noqa: E402
from aioner.evaluation import corpus_documents  # noqa: E402
from aioner.training import describe_machine  # noqa: E402
from pipeline_aioner import AIONERTagger  # noqa: E402

TEST_SETS = ["BioRED", "GNormPlus", "NLM-Gene", "NCBI-Disease", "BC5CDR-Chemical", "NLM-Chem", "Linnaeus",
             "Species-800", "tmVar3", "BioID"]


def matmul_flops(n=2048, reps=10, trials=3) -> float:
    """Dense fp32 matmul FLOP/s: the median of ``trials`` timings of ``reps`` n x n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    rates = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        rates.append(2 * n ** 3 * reps / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def run_ours(decoder, texts, passages, chunk_docs):
    model, tokenizer = new_tagger(decoder=decoder)
    model.eval()
    tagger = AIONERTagger(model, tokenizer)
    crf_seconds = [0.0]
    decode = model.decode_emissions

    def timed_decode(*a, **k):
        t = time.perf_counter()
        out = decode(*a, **k)
        crf_seconds[0] += time.perf_counter() - t
        return out

    model.decode_emissions = timed_decode
    tagger.tag(texts[:5], "ALL", passages[:5])  # warm-up
    crf_seconds[0] = 0.0
    start = time.perf_counter()
    ents = []
    for k in range(0, len(texts), chunk_docs):  # as aioner-tag does (--chunk_docs)
        ents += tagger.tag(texts[k : k + chunk_docs], "ALL", passages[k : k + chunk_docs])
    seconds = time.perf_counter() - start
    wins = tagger.windows_of(texts, "ALL", passages)
    tokens = sum(len(w.input_ids) for w in wins)
    mean_len = tokens / len(wins)
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "docs_per_s": len(texts) / seconds,
            "crf_seconds": crf_seconds[0], "decode_share": crf_seconds[0] / seconds, "windows": len(wins),
            "mean_window_length": mean_len, "entities": sum(map(len, ents))}, model


def run_stock(texts, batch_size, stride=None):
    """The stock pipeline; ``stride``: long texts in overlapping chunks instead of truncated at 512."""
    from transformers import AutoTokenizer, BertForTokenClassification, pipeline

    path = resolve_encoder(None)
    model = BertForTokenClassification.from_pretrained(path, num_labels=19).eval()
    tok = AutoTokenizer.from_pretrained(path)
    kwargs = {"stride": stride} if stride else {}
    pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", **kwargs)
    pipe(texts[:2], batch_size=batch_size)
    start = time.perf_counter()
    pipe(texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    lengths = [len(ids) for ids in tok(texts, verbose=False)["input_ids"]]
    limit = tok.model_max_length
    processed = sum(lengths) if stride else sum(min(n, limit) for n in lengths)
    return {"batch_size": batch_size, "stride": stride, "seconds": seconds,
            "tokens_per_s": processed / seconds, "tokens_processed": processed,
            "texts_truncated": 0 if stride else sum(n > limit for n in lengths),
            "docs_per_s": len(texts) / seconds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", choices=["biored", "all-tests"], default="biored")
    ap.add_argument("--out", default="results/tagging_speed_cpu.json")
    ap.add_argument("--chunk_docs", type=int, default=256, help="documents per tag() call, as aioner-tag")
    ap.add_argument("--heads", nargs="+", default=["crf", "softmax"], choices=["crf", "softmax"])
    ap.add_argument("--stock", nargs="+", default=None,
                    help="stock runs as BATCH or BATCH:STRIDE (default: 1 8 32 on BioRED; 1 and 1:128 on all tests)")
    ap.add_argument("--limit", type=int, help="only the first N documents (a smoke run)")
    args = ap.parse_args()
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
    flops_before = matmul_flops()
    ours = {}
    for head in args.heads:
        ours[head], model = run_ours(head, texts, passages, args.chunk_docs)
        print(head, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in ours[head].items()}), flush=True)
    crf = ours[args.heads[0]]
    stock = []
    for run in stock_runs:
        batch, _, stride = run.partition(":")
        stock.append(run_stock(texts, int(batch), int(stride) if stride else None))
        print("stock", json.dumps(stock[-1]), flush=True)
    flops = (flops_before + matmul_flops()) / 2
    cfg = model.encoder.config
    h, layers, n = cfg.hidden_size, cfg.num_hidden_layers, crf["mean_window_length"]
    flops_per_token = layers * (24 * h * h + 4 * n * h)
    roofline = flops / flops_per_token
    best_stock = max(stock, key=lambda s: s["docs_per_s"])
    full_stock = [s for s in stock if s["texts_truncated"] == 0]
    best_full_stock = max(full_stock, key=lambda s: s["docs_per_s"]) if full_stock else None
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": describe_machine() + ", fp32",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "documents": len(texts), "test_sets": names, "encoder": "embedded:all-MiniLM-L6-v2",
        "tokens_per_s": round(crf["tokens_per_s"], 1),
        "docs_per_s": round(crf["docs_per_s"], 2),
        "speedup_vs_stock_pipeline": round(crf["docs_per_s"] / best_stock["docs_per_s"], 3),
        "speedup_vs_stock_pipeline_untruncated": (round(crf["docs_per_s"] / best_full_stock["docs_per_s"], 3)
                                                  if best_full_stock else None),
        "fraction_of_roofline": round(crf["tokens_per_s"] / roofline, 3),
        "crf_share": round(crf["decode_share"], 4),
        "decoder": args.heads[0], "chunk_docs": args.chunk_docs,
        **{f"ours_{head}": ours[head] for head in args.heads}, "stock_pipeline": stock,
        "matmul_flops_per_s": flops, "encoder_flops_per_token": flops_per_token,
        "roofline_tokens_per_s": round(roofline, 1),
        "notes": ("speedup compares documents/s with the best stock run (ours also wraps every sentence in task "
                  "tags and never truncates; the stock pipeline truncates texts at 512 sub-words unless given a "
                  "stride, so its truncating runs do less work on long texts); crf_share is the CRF decode "
                  "(Viterbi + marginals for scores) over all tagging time; stock tokens_per_s counts the "
                  "sub-words it processed"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=1))


if __name__ == "__main__":
    main()
