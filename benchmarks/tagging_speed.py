"""Tagging speed, side by side in one run: our engine vs the stock pipeline vs the machine's roofline.

    python benchmarks/tagging_speed.py [--docs biored|all-tests] [--out results/tagging_speed_cpu.json]

* ours: ``pipeline_aioner.AIONERTagger`` end to end (sentence/word splitting, sub-words, task
  tags, length-sorted batches with a token budget, encoder, CRF Viterbi + marginals, offsets)
  on the embedded MiniLM with the CRF head and with the softmax head;
* stock: ``transformers.pipeline("token-classification")`` over a plain ``BertForTokenClassification``
  with the same encoder weights, whole documents, aggregation "simple", at batch sizes 1, 8, 32
  (its best is the comparison);
* roofline: this machine's dense fp32 matmul FLOP/s (measured here, now) ÷ the encoder's FLOPs per
  token (linear layers 24·h² per layer + attention 4·n·h per layer, n = mean window length).
Weights are untrained (speed does not depend on them). Tokens are the non-padding sub-words the
encoder actually processed.
"""

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aioner.checkpoint import new_tagger, resolve_encoder  # noqa: E402
from aioner.evaluation import corpus_documents  # noqa: E402
from pipeline_aioner import AIONERTagger  # noqa: E402

TEST_SETS = ["BioRED", "GNormPlus", "NLM-Gene", "NCBI-Disease", "BC5CDR-Chemical", "NLM-Chem", "Linnaeus",
             "Species-800", "tmVar3", "BioID"]


def matmul_flops(n=2048, reps=10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def run_ours(decoder, texts, passages):
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
    ents = tagger.tag(texts, "ALL", passages)
    seconds = time.perf_counter() - start
    wins = [w for i, t in enumerate(texts) for w in tagger.windows(t, "ALL", i, passages[i])]
    tokens = sum(len(w.input_ids) for w in wins)
    mean_len = tokens / len(wins)
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "docs_per_s": len(texts) / seconds,
            "crf_seconds": crf_seconds[0], "decode_share": crf_seconds[0] / seconds, "windows": len(wins),
            "mean_window_length": mean_len, "entities": sum(map(len, ents))}, model


def run_stock(texts, batch_size):
    from transformers import AutoTokenizer, BertForTokenClassification, pipeline

    path = resolve_encoder(None)
    model = BertForTokenClassification.from_pretrained(path, num_labels=19).eval()
    tok = AutoTokenizer.from_pretrained(path)
    pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple")
    pipe(texts[:2], batch_size=batch_size)
    start = time.perf_counter()
    pipe(texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    tokens = sum(len(tok(t)["input_ids"]) for t in texts)
    return {"batch_size": batch_size, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "docs_per_s": len(texts) / seconds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", choices=["biored", "all-tests"], default="biored")
    ap.add_argument("--out", default="results/tagging_speed_cpu.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    names = ["BioRED"] if args.docs == "biored" else TEST_SETS
    texts, passages = [], []
    for name in names:
        t, p, _ = corpus_documents(name)
        texts += t
        passages += p
    flops_before = matmul_flops()
    crf, model = run_ours("crf", texts, passages)
    softmax, _ = run_ours("softmax", texts, passages)
    stock = [run_stock(texts, bs) for bs in (1, 8, 32)]
    flops = (flops_before + matmul_flops()) / 2
    cfg = model.encoder.config
    h, layers, n = cfg.hidden_size, cfg.num_hidden_layers, crf["mean_window_length"]
    flops_per_token = layers * (24 * h * h + 4 * n * h)
    roofline = flops / flops_per_token
    best_stock = max(stock, key=lambda s: s["docs_per_s"])
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, fp32",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "documents": len(texts), "test_sets": names, "encoder": "embedded:all-MiniLM-L6-v2",
        "tokens_per_s": round(crf["tokens_per_s"], 1),
        "docs_per_s": round(crf["docs_per_s"], 2),
        "speedup_vs_stock_pipeline": round(crf["docs_per_s"] / best_stock["docs_per_s"], 3),
        "fraction_of_roofline": round(crf["tokens_per_s"] / roofline, 3),
        "crf_share": round(crf["decode_share"], 4),
        "ours_crf": crf, "ours_softmax": softmax, "stock_pipeline": stock,
        "matmul_flops_per_s": flops, "encoder_flops_per_token": flops_per_token,
        "roofline_tokens_per_s": round(roofline, 1),
        "notes": ("speedup compares documents/s (ours also wraps every sentence in task tags and never truncates); "
                  "crf_share is the CRF decode (Viterbi + marginals for scores) over all tagging time"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, (dict, list))}, indent=1))


if __name__ == "__main__":
    main()
