"""Training tokens/s of our loop's step against the bare encoder's forward+backward, side by side.

    python -m benchmarks.train_throughput [--encoder ID] [--steps 20] [--bf16] [--out results/train_throughput_cpu.json]

Both run on the same batches (real BioRED training sentences, length-grouped as the
trainer does): the bare encoder's forward + backward of a scalar of its output, and our
full step (encoder, Dense+ReLU, CRF loss, backward, AdamW step, LR schedule).
Tokens are the non-padding sub-words of each batch. Goal: ours ≥ 80% of the bare encoder.
"""

import argparse
import json
import time

import torch

from aioner.checkpoint import new_tagger, resolve_encoder
from aioner.encoders import DEFAULT_ENCODER
from aioner.features import LengthGroupedBatches, collate, encode_rows
from aioner.recipes import single
from aioner_scheme import window_budget
from benchmarks.common import command, machine, now, write_result


def timed(step, batches, dtype):
    step(batches[0])  # warm-up
    tokens, start = 0, time.perf_counter()
    for b in batches[1:]:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            step(b)
        tokens += int(b["attention_mask"].sum())
    return tokens / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.train_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--encoder")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--out", default="results/train_throughput_cpu.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    data = single("BioRED")
    model, tokenizer = new_tagger(args.encoder)
    budget = window_budget(tokenizer, 256, model.encoder.config)
    feats = encode_rows(data.train, data.train_labels, tokenizer, data.scheme, budget)
    order = list(LengthGroupedBatches([len(f.input_ids) for f in feats], args.batch_size, seed=0))
    batches = [collate([feats[i] for i in b], tokenizer.pad_token_id) for b in order[: args.steps + 1]]
    dtype = torch.bfloat16 if args.bf16 else None

    from transformers import AutoModel

    bare = AutoModel.from_pretrained(resolve_encoder(args.encoder))
    bare.resize_token_embeddings(len(tokenizer))
    bare.train()

    def bare_step(b):
        out = bare(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        out.float().mean().backward()
        bare.zero_grad(set_to_none=True)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def our_step(b):
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    # Interleave two rounds so drift in machine load hits both alike.
    bare_a, ours_a = timed(bare_step, batches, dtype), timed(our_step, batches, dtype)
    bare_b, ours_b = timed(bare_step, batches, dtype), timed(our_step, batches, dtype)
    bare_tps, our_tps = (bare_a + bare_b) / 2, (ours_a + ours_b) / 2
    result = {
        "command": command("train_throughput"),
        "machine": machine(),
        "date": now(),
        "encoder": args.encoder or DEFAULT_ENCODER,
        "dtype": "bf16" if args.bf16 else "fp32",
        "batches": args.steps,
        "batch_size": args.batch_size,
        "bare_encoder_fwd_bwd_tokens_per_s": round(bare_tps, 1),
        "training_step_tokens_per_s": round(our_tps, 1),
        "ratio": round(our_tps / bare_tps, 3),
        "rounds": {"bare": [round(bare_a, 1), round(bare_b, 1)], "ours": [round(ours_a, 1), round(ours_b, 1)]},
    }
    write_result(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
