"""Soak run at shard scale (issue 19): one ``aioner-tag`` process over one large JSONL input with bad records
mixed in, killed once midway (SIGKILL) and resumed; memory and throughput sampled as it goes.

    python -m benchmarks.soak [--model CKPT] [--records 200000] [--bad_every 1000] [--kill_at 120000]
                              [--out results/soak.json]

Records are real sentences drawn (seeded) from the corpora's training texts (BioRED, BC5CDR,
NCBI-Disease, GNormPlus, NLM-Gene, Linnaeus, Species-800, tmVar3: train or train+dev files), one
or two per record; every ``--bad_every``-th record is bad (truncated JSON, no text, bytes that are
not UTF-8, not an object, in turn). The tagging process is sampled every second: RSS
(``/proc/<pid>/status``) and records finished (the part file's chunk records), and the samples
closest past 10k, 50k, 100k and 200k records are kept with the throughput since the previous mark.
After the run: every good record exactly once and in order, every bad one in the errors file.

Default model: the embedded MiniLM with an untrained head (tagging costs the same as with a trained
one; the output is not the point here).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, machine, now, write_result

MARKS = (10_000, 50_000, 100_000, 200_000)
SOURCES = (
    "BioRED_Train.PubTator",
    "BC5CDR_TrainDev.PubTator",
    "NCBI_TrainDev.PubTator",
    "GNormPlus_Train.PubTator",
    "NLM-Gene_Train.PubTator",
    "Linnaeus_Train.PubTator",
    "Species-800_Train.PubTator",
    "tmVar3_Train.PubTator",
)
BAD_KINDS = ("truncated", "no_text", "not_utf8", "not_object")


def sentences(corpora: Path) -> list[str]:
    """Every sentence of the training texts held here (sentences as the tagger cuts them)."""
    from aioner_text import segment
    from dataset_scripts.pubtator import read_pubtator

    out = []
    for name in SOURCES:
        path = corpora / "pubtator" / name
        if not path.exists():
            continue
        for doc in read_pubtator(path, strict=False):
            text = doc.text
            out += [text[s[0][0] : s[-1][1]] for s in segment(text) if len(s) >= 4]
    return out


def bad_record(kind: str, i: int) -> bytes:
    good = json.dumps({"id": f"r{i}", "text": "A record that will not be read."})
    return {
        "truncated": good[:30].encode(),
        "no_text": json.dumps({"id": f"r{i}"}).encode(),
        "not_utf8": b'{"id": "r%d", "text": "caf\xe9"}' % i,
        "not_object": b'["r%d"]' % i,
    }[kind]


def write_input(path: Path, pool: list[str], records: int, bad_every: int, seed: int) -> tuple[list[str], int]:
    """The input file; the ids of its good records, and how many bad ones it holds."""
    rng, good, bad = random.Random(seed), [], 0
    with open(path, "wb") as f:
        for i in range(records):
            if bad_every and i % bad_every == bad_every // 2:
                f.write(bad_record(BAD_KINDS[bad % len(BAD_KINDS)], i) + b"\n")
                bad += 1
                continue
            text = " ".join(rng.choice(pool) for _ in range(rng.choice((1, 1, 2))))
            f.write(json.dumps({"id": f"r{i}", "text": text}, ensure_ascii=False).encode() + b"\n")
            good.append(f"r{i}")
    return good, bad


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Progress:
    """Records finished so far, from the part files (read incrementally; torn lines ignored)."""

    def __init__(self, out_dir: Path, name: str):
        self.out_dir, self.name, self.done, self.pos = out_dir, name, {}, {}

    def __call__(self) -> int:
        for part in self.out_dir.glob(self.name + ".part*"):
            with open(part, "rb") as f:
                f.seek(self.pos.get(part, 0))
                for line in f:
                    if not line.endswith(b"\n"):
                        break
                    self.pos[part] = self.pos.get(part, 0) + len(line)
                    try:
                        rec = json.loads(line)
                        self.done[rec["chunk"]] = rec["docs"]
                    except (ValueError, KeyError):
                        pass
        return sum(self.done.values())


def run_once(cmd: list[str], progress: Progress, samples: list, kill_at: int | None, t0: float) -> dict:
    """One tagging process, sampled every second; SIGKILLed once ``kill_at`` records are done."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        killed, start = False, time.time()
        while proc.poll() is None:
            time.sleep(1.0)
            done, rss = progress(), rss_mib(proc.pid)
            if rss is not None:
                samples.append(
                    {"t": round(time.time() - t0, 1), "records": done, "rss_mib": round(rss, 1), "pid": proc.pid}
                )
            if kill_at is not None and done >= kill_at and not killed:
                proc.send_signal(signal.SIGKILL)
                killed = True
        _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
        log.seek(0)
        tail = log.read().decode("utf-8", "replace")[-2000:]
    return {
        "exit": proc.returncode,
        "killed": killed,
        "seconds": round(time.time() - start, 1),
        "records_done_at_end": progress(),
        "log_tail": tail,
    }


def marks(samples: list, total: int) -> list[dict]:
    """The first sample at or past each mark, with the throughput since the previous mark. Records
    count the good ones (the tagged output), so the last mark is reached at ``total``, not 200,000."""
    out, prev = [], None
    for mark in MARKS:
        hit = next((s for s in samples if s["records"] >= min(mark, total)), None)
        if hit is None:
            continue
        row = {"records": mark, "sample": hit, "rss_mib": hit["rss_mib"]}
        if prev is not None:
            row["docs_per_s_since_previous_mark"] = round(
                (hit["records"] - prev["records"]) / max(1e-9, hit["t"] - prev["t"]), 1
            )
        out.append(row)
        prev = hit
    return out


def check_output(out_file: Path, errors_file: Path, good: list[str], bad: int) -> dict:
    with open(out_file, encoding="utf-8") as f:
        ids = [json.loads(line)["id"] for line in f]
    with open(errors_file, encoding="utf-8") as f:
        errors = [json.loads(line) for line in f]
    seen = set(ids)
    return {
        "output_records": len(ids),
        "good_records": len(good),
        "lost": sum(i not in seen for i in good),
        "duplicated": len(ids) - len(seen),
        "same_order": ids == good,
        "bad_records": bad,
        "bad_records_reported": sum(e["action"] == "skipped" for e in errors),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint (default: the embedded MiniLM with an untrained head)")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--bad_every", type=int, default=1000)
    ap.add_argument("--kill_at", type=int, default=120_000, help="SIGKILL the first process past this many records")
    ap.add_argument("--tag_args", nargs=argparse.REMAINDER, default=[], help="more aioner-tag options (last)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="working folder (default: a temporary one)")
    ap.add_argument("--out", default=str(REPO / "results" / "soak.json"))
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="aioner-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from aioner.checkpoint import new_tagger, save_checkpoint

        model = str(save_checkpoint(*new_tagger(), work / "minilm"))
    pool = sentences(REPO.parent / "shared" / "corpora")
    src = work / "shard.jsonl"
    good, bad = write_input(src, pool, args.records, args.bad_every, args.seed)
    print(
        f"input: {args.records} records ({bad} bad) from {len(pool)} sentences, {src.stat().st_size / 2**20:.0f} MiB",
        flush=True,
    )
    out_dir = work / "out"
    cmd = [
        sys.executable,
        "-m",
        "aioner.tagging",
        str(src),
        "--model",
        model,
        "--output_dir",
        str(out_dir),
        *args.tag_args,
    ]
    progress, samples, t0 = Progress(out_dir, "shard.jsonl"), [], time.time()
    runs = [run_once(cmd, progress, samples, args.kill_at, t0)]
    runs.append(run_once(cmd, progress, samples, None, t0))  # the resumed run, to the end
    result = {
        "command": "python -m benchmarks.soak " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "date": now(),
        "tag_command": " ".join(cmd[1:]),
        "records": args.records,
        "sentences_in_pool": len(pool),
        "input_mib": round(src.stat().st_size / 2**20, 1),
        "runs": runs,
        "marks": marks(samples, len(good)),
        "seconds": round(time.time() - t0, 1),
    }
    if runs[-1]["exit"] in (0, 1) and (out_dir / "shard.jsonl").exists():
        result.update(check_output(out_dir / "shard.jsonl", out_dir / "shard.errors.jsonl", good, bad))
    rss = [m["rss_mib"] for m in result["marks"]]
    if len(rss) == len(MARKS):
        result["rss_last_over_first"] = round(rss[-1] / rss[0], 3)
        result["memory_flat"] = rss[-1] <= 1.10 * rss[0]
        result["rss_last_over_50k"] = round(rss[-1] / rss[1], 3)  # past each process's warm-up
    result["samples"] = samples[:: max(1, len(samples) // 400)]  # at most ~400 kept
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("samples", "runs")}, indent=1))


if __name__ == "__main__":
    main()
