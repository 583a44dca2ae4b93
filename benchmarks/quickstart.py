"""Time the README's main job and score its checkpoint from a fresh process through pipeline().

    python -m benchmarks.quickstart [--output_dir runs/quickstart] [--out results/quickstart.json]

1. runs `python train.py --recipe quickstart --output_dir DIR` and times it (wall clock);
2. in a new interpreter, loads DIR with pipeline("token-classification", trust_remote_code=True),
   tags the 100 BioRED test abstracts (title + " " + abstract, task ALL) and scores the
   entities against the gold mentions (strict and relaxed, per type).
"""

import argparse
import json
import shutil
import subprocess
import sys
import time

from benchmarks.common import REPO, machine, now, write_result

SCORE = r"""
import json, sys
from transformers import pipeline
from aioner.prediction import corpus_documents, entity_tuples
from aioner.scoring import score_entities
texts, passages, gold = corpus_documents("BioRED")
pipe = pipeline("token-classification", model=sys.argv[1], trust_remote_code=True)
out = pipe(texts, task="ALL")
bad = sum(texts[i][e["start"]:e["end"]] != e["text"] for i, ents in enumerate(out) for e in ents)
pred = entity_tuples(out)
print(json.dumps({"strict": score_entities(gold, pred, "strict"), "relaxed": score_entities(gold, pred, "relaxed"),
                  "offset_mismatches": bad, "documents": len(texts)}))
"""


def main():
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.quickstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--output_dir", default="runs/quickstart")
    ap.add_argument("--out", default="results/quickstart.json")
    ap.add_argument("--reuse", action="store_true", help="score an existing checkpoint without training")
    args = ap.parse_args()
    cmd = [sys.executable, "train.py", "--recipe", "quickstart", "--output_dir", args.output_dir]
    seconds = None
    if not args.reuse:
        shutil.rmtree(REPO / args.output_dir, ignore_errors=True)
        start = time.time()
        subprocess.run(cmd, cwd=REPO, check=True)
        seconds = time.time() - start
    res = subprocess.run(
        [sys.executable, "-c", SCORE, str(REPO / args.output_dir)],
        cwd="/tmp",
        capture_output=True,
        text=True,
        check=True,
    )
    scores = json.loads(res.stdout.strip().splitlines()[-1])
    strict = scores["strict"]
    result = {
        "command": "python train.py --recipe quickstart --output_dir " + args.output_dir,
        "machine": machine(),
        "date": now(),
        "seconds": round(seconds, 1)
        if seconds is not None
        else json.loads((REPO / args.output_dir / "results.json").read_text())["seconds"],
        "f1": round(strict["overall"]["f1"], 4),
        "relaxed_f1": round(scores["relaxed"]["overall"]["f1"], 4),
        "per_type_f1": {t: round(s["f1"], 4) for t, s in strict["per_type"].items()},
        "precision": round(strict["overall"]["precision"], 4),
        "recall": round(strict["overall"]["recall"], 4),
        "test_set": "BioRED test (100 abstracts), scored from a fresh process through pipeline()",
        "offset_mismatches": scores["offset_mismatches"],
        "training": json.loads((REPO / args.output_dir / "results.json").read_text()).get("history"),
    }
    write_result(args.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
