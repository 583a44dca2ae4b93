"""Issue 18's levers for ``benchmarks.reproduce``: context windows, the BiLSTM head, a second encoder and
the cross-encoder ensemble, then best_model, which combines those that gained; apart from the papers'
experiments (paper_experiments.py), on the same runs, scoring and command line (reproduce.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

from benchmarks.common import f1_fields, machine, pct, shown
from benchmarks.reproduce import (
    CORPUS_TOKENS,
    ENCODER_NOTE,
    TAG_TOKENS_PER_S,
    TYPES,
    Context,
    Plan,
    Run,
    dev,
    gold_documents,
    share,
    tagger_for,
    time_tagging,
)

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


SECOND_ENCODER_COST = 6.5  # mpnet's training cost in MiniLM's, for time estimates: an upper bound (measured 4.1-5.8x)


def second_encoder_run(ctx: Context) -> Run:
    """Table 2's baseline recipe with the second encoder (lever 4; mpnet unless --cross_encoder says)."""
    run = ctx.run(
        "single", "BioRED", bio_red_sample(ctx), ["--encoder", ctx.args.cross_encoder], "mpnet", "cross_encoder"
    )
    return replace(run, train_tokens=run.train_tokens * SECOND_ENCODER_COST)


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
        members, dev_f1, best = dev_weighted_ensemble(ctx, minilm, mpnet)
        texts = gold_documents("BioRED")[0]
        systems = {"minilm": ctx.system(minilm, "BioRED"), "mpnet": ctx.system(mpnet, "BioRED")}
        taggers = {"minilm": tagger_for(ctx.folder(minilm)), "mpnet": tagger_for(ctx.folder(mpnet))}
        for name, w in (("ensemble_uniform", 0.5), ("ensemble_dev_weighted", best)):
            taggers[name], f1, wilcoxon, _ = score_ensemble(ctx, members, w, mpnet)
            systems[name] = {
                **f1,
                "weights": {"all-MiniLM-L6-v2": round(1 - w, 2), "all-mpnet-base-v2": w},
                "wilcoxon_vs_mpnet": wilcoxon,
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
    combined, tag = ["--encoder", ctx.args.cross_encoder], ["clean", "mpnet"]
    if choice["context"] != "sentence":
        combined += ["--context", choice["context"]]
        combined += ["--context_margin", str(CONTEXT_MARGIN)] if choice["context"] == "margin" else []
        tag.append(choice["context"])
    if choice["head"] == "bilstm":
        combined += ["--head", "bilstm"]
        tag.append("bilstm")
    baseline = ctx.baseline()
    corpora = ["--corpora", *ctx.aio_corpora] if s["aio_corpora"] else []
    tokens = sum(share(c, s["best_sample"]) for c in ctx.aio_corpora)
    dev_tokens = sum(dev(c) for c in ctx.aio_corpora)
    longer = {"epochs": s["best_epochs"], "patience": s["best_patience"]}
    all_data = ctx.run("aioner", None, s["best_sample"], [*corpora, *clean], "clean", None, tokens, dev_tokens)
    best = ctx.run(
        "aioner",
        None,
        s["best_sample"],
        [*corpora, *clean, *combined],
        "-".join(tag),
        None,
        tokens * SECOND_ENCODER_COST,
        dev_tokens,
    )
    all_data = replace(all_data, **longer)
    best = replace(best, **{**longer, "epochs": s.get("best_combined_epochs") or s["best_epochs"]})
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
        texts = gold_documents("BioRED")[0]
        rows, taggers = {}, {}
        pending = {name: ctx.pending[run.name] for name, run in scored.items() if run.name in ctx.pending}
        carried = carried_rows(ctx, {**{name: scored[name] for name in pending}, "ensemble": None})
        written_ensemble = carried.pop("ensemble", None)  # used only where one of its members is carried
        for name in carried:
            del pending[name], ctx.pending[scored[name].name]
        if "baseline" in pending:
            raise SystemExit(f"best_model: the baseline is not finished ({pending['baseline']}): nothing to compare")
        for name, run in scored.items():
            if name in carried:
                rows[name] = carried[name]
            if name in pending or name in carried:
                continue
            rows[name] = {
                "bio_red": ctx.system(run, "BioRED"),
                "bio_red_errors": strict_errors(ctx.evaluate(run, "BioRED")["predictions"]),
                "externals": {c: ctx.system(run, c)["overall_f1"] for c in externals} if name in multi else None,
                "train_seconds": ctx.train_info.get(run.name, {}).get("train_seconds"),
                "run": shown(ctx.folder(run)),
            }
            if name != "baseline":  # per document: needs the baseline's predictions, here
                wilcoxon = None if "baseline" in carried else ctx.wilcoxon(run, baseline, "BioRED")
                rows[name]["wilcoxon_vs_baseline"] = wilcoxon
            taggers[name] = tagger_for(ctx.folder(run))
        if {"baseline", "encoder_mpnet"} & pending.keys():
            pending["ensemble"] = "needs baseline and encoder_mpnet"
        elif {"baseline", "encoder_mpnet"} & carried.keys():  # a member is not here: the ensemble's row goes too
            if written_ensemble:
                rows["ensemble"] = carried["ensemble"] = written_ensemble
            else:
                pending["ensemble"] = "needs baseline and encoder_mpnet on this machine"
        else:
            members, dev_f1, w = dev_weighted_ensemble(ctx, baseline, single["encoder_mpnet"])
            taggers["ensemble"], f1, wilcoxon, predicted = score_ensemble(ctx, members, w, baseline)
            rows["ensemble"] = {
                "bio_red": f1,
                "bio_red_errors": strict_errors(predicted),
                "externals": None,
                "train_seconds": sum(rows[k]["train_seconds"] or 0 for k in ("baseline", "encoder_mpnet")),
                "members": [rows["baseline"]["run"], rows["encoder_mpnet"]["run"]],
                "weights": [round(1 - w, 2), w],
                "dev_f1_by_second_weight": dev_f1,
                "wilcoxon_vs_baseline": wilcoxon,
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
            mark = "†" if name in carried else ""
            md.append(
                f"| {name}{mark} | {r['bio_red']['overall_f1']} | {r['delta_vs_baseline']:+} | "
                + " | ".join(per_type + ext)
                + f" | {r['train_seconds'] or '–'} | {r['tagging_docs_per_s']} |"
            )
        md.append(f"\nBest: {top} ({rows[top]['bio_red']['overall_f1']}); goal {BEST_GOAL_F1}.")
        origins: dict[tuple, list[str]] = {}
        for name in carried:
            origin = rows[name]["carried_over"]
            origins.setdefault((origin["file"], origin["date"], origin["machine"]), []).append(name)
        md += [
            f"\n† Carried over from {file} ({date}, {where}): the run folders of {', '.join(names)} are not on this "
            "machine; their training seconds and docs/s are that machine's."
            for (file, date, where), names in origins.items()
        ]
        md += [
            "\nBioRED test's strict errors by class (aioner.scoring.error_breakdown), missed gold / wrong predictions:",
            "\n| lever | type | boundary | boundary + type | missed / spurious |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in rows.items():
            mark = "†" if name in carried else ""
            if "bio_red_errors" not in r:  # a row carried over from a report that predates the breakdown
                md.append(f"| {name}{mark} | – | – | – | – |")
                continue
            fn, fp = (list(r["bio_red_errors"][k].values()) for k in ("false_negatives", "false_positives"))
            md.append(f"| {name}{mark} | " + " | ".join(f"{a} / {b}" for a, b in zip(fn, fp)) + " |")
        md += [f"Pending, not in this report: {name} ({state})." for name, state in pending.items()]
        return (
            {
                "levers": rows,
                **({"carried_over": sorted(carried)} if carried else {}),
                "combination": {"options": combined, **choice},
                "best": top,  # of the levers measured
                **({"levers_pending": pending} if pending else {}),
                "goal_f1": BEST_GOAL_F1,
                "goal_reached": rows[top]["bio_red"]["overall_f1"] >= BEST_GOAL_F1,
                "timing": f"best of {repeats} pass(es) over the BioRED test set ({len(texts)} abstracts) after a "
                f"warm-up, fp32, one after another in this process ({machine()})"
                + ("; carried-over rows: as timed on their own machine" if carried else ""),
                "note": "F1 in %, strict. BioRED-alone levers (baseline, context_margin, head_bilstm, "
                "encoder_mpnet, ensemble) are Table 2's baseline recipe with one change and are scored on "
                "BioRED test only; all_data (every training document of every AIO corpus) and combined (all "
                "data with the second encoder and the context/head settings that gained in their own "
                "experiments) train without any test document of any corpus scored here (clean) and tag "
                "each external test set with its corpus' task tag. "
                + (
                    "wilcoxon_vs_baseline is null where the baseline's run is not on this machine (per-document "
                    "scores need its predictions). "
                    if "baseline" in carried
                    else ""
                )
                + ENCODER_NOTE,
            },
            "\n".join(md),
        )

    runs = list(scored.values())
    evals = [(r, "BioRED") for r in runs] + [(r, c) for r in multi.values() for c in externals]
    tag_s = 3 * 10 * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S
    notes = [f"combined: {' '.join(combined)} (chosen: {choice})"]
    return Plan(runs, evals, report, notes, extra_seconds=tag_s, reports_unfinished=True)


def carried_rows(ctx: Context, levers: dict[str, Run | None]) -> dict:
    """The rows of best_model's results file at this scale for ``levers`` (name -> run) whose run folder is
    not on this machine at all (a machine's runs/ that did not come back): kept as measured, each marked with
    where and when, rather than dropped from the report or trained again. A lever whose run is here but
    unfinished stays pending."""
    path = ctx.results_dir / f"best_model_{ctx.args.scale}.json"
    if not path.exists():
        return {}
    written = json.loads(path.read_text())
    origin = {"file": shown(path), "date": written.get("date"), "machine": written.get("machine")}
    return {
        name: {**row, "carried_over": row.get("carried_over", origin)}  # a row carried twice keeps its origin
        for name, row in written.get("levers", {}).items()
        if name in levers and (levers[name] is None or ctx.status(levers[name]) == "new")
    }


def strict_errors(predictions) -> dict:
    """BioRED test's strict errors by class (``aioner.scoring.error_breakdown``), without the per-type split."""
    from aioner.scoring import error_breakdown

    texts, _, gold = gold_documents("BioRED")
    found = error_breakdown(gold, [tuple(e) for e in predictions], documents=[str(i) for i in range(len(texts))])
    return {k: found[k] for k in ("false_negatives", "false_positives")}


def score_ensemble(ctx: Context, members, weight: float, against: Run):
    """(tagger, F1 fields, Wilcoxon against ``against``, entities) of the two members with the second one at
    ``weight``, on BioRED test: ``Context.system``/``wilcoxon`` for a model that is not one run."""
    from aioner.ensemble import EnsembleTagger
    from aioner.evaluation import score_predictions
    from aioner.prediction import predict_corpus
    from aioner.significance import wilcoxon_test

    tagger = EnsembleTagger(members, weights=[1 - weight, weight])
    prediction = predict_corpus(tagger, "BioRED")
    texts, _, gold = gold_documents("BioRED")
    other = [tuple(e) for e in ctx.evaluate(against, "BioRED")["predictions"]]
    test = wilcoxon_test(gold, prediction.entities(), other, documents=[str(i) for i in range(len(texts))])
    return tagger, f1_fields(score_predictions(prediction)), test, prediction.entities()


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
