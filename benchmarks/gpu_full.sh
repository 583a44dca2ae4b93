#!/usr/bin/env bash
# Issue 17 on a GPU: the paper's own protocol (--scale full: every training document, 20 epochs,
# patience 5) for every experiment, one after another, in one command. Each experiment reuses the
# finished runs of the ones before it (table3 reuses table2's AIO model) and resumes an interrupted one,
# so running this again after a cut continues where it stopped.
#
#   bash benchmarks/gpu_full.sh                       # results/<experiment>_full.json and .md
#   RESULTS=$OUT ENCODER=... bash benchmarks/gpu_full.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-results}
RUNS=${RUNS:-runs/repro}
extra=()
if [[ -n "${ENCODER:-}" ]]; then extra+=(--encoder "$ENCODER"); fi
python -c "import torch; assert torch.cuda.is_available(), 'no GPU: --scale full takes days on a CPU'"
for experiment in table2 table3 crf_vs_softmax gerbera fig4 fig3; do
    echo "== $experiment ($(date -u +%FT%TZ))"
    python -m benchmarks.reproduce "$experiment" --scale full --reuse --runs_dir "$RUNS" \
        --results_dir "$RESULTS" "${extra[@]}"
done
