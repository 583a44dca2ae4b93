"""The AIONER and GERBERA papers' experiments for ``benchmarks.reproduce`` (Tables 2-4, Figures 3-4,
GERBERA) and the papers' numbers they compare with; the runs, scoring and command line are reproduce.py's.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from benchmarks.common import machine, shown
from benchmarks.reproduce import (
    CORPUS_TOKENS,
    ENCODER_NOTE,
    TAG_TOKENS_PER_S,
    TYPES,
    Context,
    Plan,
    Run,
    as_score,
    bar_chart,
    dev,
    fmt,
    gold_documents,
    grouped_bar_chart,
    line_chart,
    share,
    tagger_for,
    time_tagging,
    unavailable_training,
)

# ----- the papers' numbers (strict F1, %) -----
PAPER_ENCODER = "PubMedBERT-CRF"
PAPER_TABLE2 = {  # AIONER Table 2, BioRED test set
    "baseline": {"overall_f1": 89.34, "per_type_f1": dict(zip(TYPES, [92.35, 83.47, 88.55, 96.98, 87.34, 90.53]))},
    "aioner": {"overall_f1": 91.26, "per_type_f1": dict(zip(TYPES, [92.40, 88.07, 90.98, 97.50, 88.51, 90.53]))},
    "wilcoxon": "p < 0.05 (two-sided Wilcoxon signed-rank, AIONER vs baseline)",
}
# AIONER Table 3 (baseline, AIONER). The row names are lost in our copy of the text; the order is
# Table 1's, which the printed averages confirm (87.51 and 88.37 are the means of these ten rows).
PAPER_TABLE3 = {
    "GNormPlus": (92.09, 92.51),
    "NLM-Gene": (85.09, 85.98),
    "NCBI-Disease": (87.56, 89.59),
    "BC5CDR-Disease": (87.13, 87.89),
    "BC5CDR-Chemical": (93.42, 92.84),
    "NLM-Chem": (82.40, 82.51),
    "Linnaeus": (90.36, 90.63),
    "Species-800": (78.32, 79.67),
    "tmVar3": (89.66, 90.98),
    "BioID": (89.07, 91.13),
}
PAPER_TABLE4 = {  # PubMedBERT rows; seconds to tag the BioRED test set (100 abstracts), V100 GPU / 24-core Xeon
    "crf": {"baseline_f1": 89.34, "aioner_f1": 91.26, "gpu_seconds": 27, "cpu_seconds": 116},
    "softmax": {"baseline_f1": 88.98, "aioner_f1": 91.00, "gpu_seconds": 17, "cpu_seconds": 110},
}
PAPER_FIG3 = {
    "aioner_10_abstracts": 86.91,
    "baseline_all_500_abstracts": 89.34,
    "note": "the other points of Figure 3 are only drawn; AIONER beats the baseline at every size",
}
PAPER_FIG4 = {
    "note": "Figure 4's values are not in the text. The paper used AnEM, DMCB_Plant and BEAR; "
    "AIONER-Pretrained significantly beats the baseline and MTL on AnEM. AnEM has no test "
    "split here, so AnatEM (anatomy, also unseen by the AIO model) stands in."
}
PAPER_GERBERA = {
    "note": "GERBERA abstract: better than the baselines on 6 of 8 entity types, +0.9 F1 on average "
    "over the best baseline, +4.7 F1 on JNLPBA-RNA. Its baselines were multi-task models "
    "with other BioNER sets, as our MTL system is; we also report the target set alone."
}


def table2(ctx: Context) -> Plan:
    base, aio = ctx.baseline(), ctx.aioner()

    def report():
        from aioner.scoring import format_table

        ours = {"baseline": ctx.system(base, "BioRED"), "aioner": ctx.system(aio, "BioRED")}
        test = ctx.wilcoxon(aio, base, "BioRED")
        payload = {
            **ours,
            "delta_overall_f1": round(ours["aioner"]["overall_f1"] - ours["baseline"]["overall_f1"], 2),
            "wilcoxon": test,
            "paper": {"encoder": PAPER_ENCODER, **PAPER_TABLE2},
            "note": "F1 in %, strict, BioRED test (100 abstracts, task ALL). " + ENCODER_NOTE,
        }
        rows = {
            f"ours: BioRED only ({base.name})": ctx.evaluate(base, "BioRED")["strict"],
            f"ours: AIONER ({aio.name})": ctx.evaluate(aio, "BioRED")["strict"],
            "paper: BioRED only (PubMedBERT-CRF)": as_score(PAPER_TABLE2["baseline"]),
            "paper: AIONER (PubMedBERT-CRF)": as_score(PAPER_TABLE2["aioner"]),
        }
        md = (
            f"Strict F1 (%) on the BioRED test set\n\n{format_table(rows, TYPES)}\n\n"
            f"Wilcoxon (AIONER vs BioRED only, per-document F1): p = {test['p_value']:.3g} "
            f"over {test['documents']} documents ({test['differing_documents']} differ)."
        )
        return payload, md

    return Plan([base, aio], [(base, "BioRED"), (aio, "BioRED")], report, missing_aio_note(ctx))


def missing_aio_note(ctx: Context) -> list[str]:
    missing = unavailable_training(ctx.aio_corpora, download=not ctx.args.dry_run)
    return [f"{c}: training file unavailable, so the AIO model trains without it ({why})" for c, why in missing.items()]


def table3(ctx: Context) -> Plan:
    """Each external corpus: its single-corpus model, the MTL baseline and the AIO model (its task tag).

    Protocol ``clean`` (the headline): the MTL and AIO models train without any test document of any
    corpus scored here. ``leaky``: they train as table2's model does (only BioRED's test documents
    removed), so part of some test sets (tmVar3, BC5CDR, NLM-Gene: their abstracts are in BioRED's
    training split) is seen with labels; the single-corpus models are the same in both.
    """
    externals = [c for c in ctx.aio_corpora if c != "BioRED"]
    missing = unavailable_training(externals, download=not ctx.args.dry_run)
    clean = ["--exclude_tests_of", "BioRED", *externals]
    multi = {}  # (protocol, system) -> run
    for protocol in ctx.args.protocols:
        extra, tag = (clean, "clean") if protocol == "clean" else ((), "")
        multi[protocol, "aioner"] = ctx.aioner(extra=extra, tag=tag)  # leaky: table2's model
        multi[protocol, "mtl"] = ctx.mtl(extra=extra, tag=tag)
    leaked = leaked_test_documents(externals, ctx.aio_corpora)
    leaks = {c: len(ids) for c, ids in leaked.items()}
    bases = {c: ctx.baseline(c) for c in externals if c not in missing}
    headline = ctx.args.protocols[0]

    def finished(run):
        return run.name not in ctx.pending  # --report_finished leaves an unfinished run out

    def scored(protocol, c):
        """The multi-corpus systems of one protocol on corpus ``c``; MTL has no layer for a corpus it lacks,
        and a system still training (--report_finished) is None."""
        aio, mtl = multi[protocol, "aioner"], multi[protocol, "mtl"]
        out = {"aioner": ctx.system(aio, c) if finished(aio) else None}
        out["mtl"] = ctx.system(mtl, c) if c not in missing and finished(mtl) else None
        for k in ("aioner", "mtl"):
            if out[k] and c in bases:
                out[k]["delta_vs_single"] = round(out[k]["overall_f1"] - ctx.system(bases[c], c)["overall_f1"], 2)
                out[k]["wilcoxon_vs_single"] = ctx.wilcoxon(multi[protocol, k], bases[c], c)
        return out

    def report():
        rows = {}
        for c in externals:
            row = {
                "single": ctx.system(bases[c], c) if c in bases else None,
                "paper": dict(zip(("single", "aioner"), PAPER_TABLE3.get(c, ()))),
                "test_documents_in_leaky_training": leaks.get(c, 0),
            }
            for protocol in ctx.args.protocols:
                row[protocol] = scored(protocol, c)
            if c in missing:
                row["skipped"] = f"training file unavailable ({missing[c]}): no single-corpus or MTL model"
            rows[c] = row
        counts = {}
        for protocol in ctx.args.protocols:
            compared = [r for r in rows.values() if r["single"]]
            f1 = {k: [r[protocol][k] and r[protocol][k]["overall_f1"] for r in compared] for k in ("aioner", "mtl")}
            single = [r["single"]["overall_f1"] for r in compared]

            def at_least_single(k):  # None while the system is still training (--report_finished)
                return None if None in f1[k] else sum(a >= s for a, s in zip(f1[k], single))

            counts[protocol] = {
                "compared": len(compared),
                "aio_at_least_single": at_least_single("aioner"),
                "mtl_at_least_single": at_least_single("mtl"),
                "mean_f1": {
                    k: round(sum(v) / len(v), 2) if None not in v else None for k, v in {"single": single, **f1}.items()
                },
            }
        payload = {
            "corpora": rows,
            "counts": counts,
            "headline_protocol": headline,
            "runs": {f"{p}/{k}": shown(ctx.folder(r)) for (p, k), r in multi.items()},
            "paper": {
                "encoder": PAPER_ENCODER,
                "aio_at_least_single": 9,
                "mtl_at_least_single": 7,
                "compared": 10,
                "average": {"single": 87.51, "aioner": 88.37},
            },
            "note": "F1 in %, strict, each corpus' test set. The AIO model tags with the corpus' task tag, "
            "the MTL model with the corpus' own output layer. clean: no test document of any "
            "corpus scored here in the MTL/AIO training data; leaky: only BioRED's removed "
            "(test_documents_in_leaky_training counts the others' test documents in the training "
            "files, before sampling). NLM-Chem's training file is not held here: no single or MTL "
            "model for it, and the AIO model trains without it. " + ENCODER_NOTE,
        }
        systems = {f"{p}/{k}": r for (p, k), r in multi.items() if finished(r)}
        payload["leak_by_document"] = {
            c: leak_by_document(ctx, c, leaked[c], {"single": bases[c], **systems})
            for c in externals
            if leaked[c] and c in bases
        }
        png = ctx.results_dir / f"table3_{ctx.args.scale}.png"
        table3_chart(png, rows, ctx.args.protocols, ctx.args.scale)
        payload["figure"] = shown(png)
        md = table3_markdown(rows, counts, ctx.args.protocols, leaks) + f"\n\n![Table 3]({png.name})"
        md += leak_markdown(payload["leak_by_document"])
        if payload["leak_by_document"]:
            leak_png = ctx.results_dir / f"table3_{ctx.args.scale}_leak.png"
            leak_chart(leak_png, payload["leak_by_document"], ctx.args.protocols[0], ctx.args.scale)
            payload["leak_figure"] = shown(leak_png)
            md += f"\n\n![The leak document by document]({leak_png.name})"
        return payload, md

    notes = [f"{c}: no single-corpus or MTL model, training file unavailable ({why})" for c, why in missing.items()]
    runs = [*bases.values()] + [multi[p, k] for p in ctx.args.protocols for k in ("aioner", "mtl")]
    evals = [(b, c) for c, b in bases.items()]
    evals += [
        (multi[p, k], c)
        for p in ctx.args.protocols
        for k in ("aioner", "mtl")
        for c in externals
        if not (k == "mtl" and c in missing)
    ]
    return Plan(runs, evals, report, notes, reports_unfinished=True)


TABLE3_COLOURS = {"single": "#8c8c8c", "MTL": "#4c72b0", "AIONER": "#dd8452"}


def table3_chart(png: Path, rows: dict, protocols: list[str], scale: str) -> None:
    """Table 3 as bars: per corpus, single, then MTL and AIONER under each protocol (the first solid, the
    others hatched in the same colour), so the gains over single and the leak's size can be seen at once."""
    series = {"single": [r["single"] and r["single"]["overall_f1"] for r in rows.values()]}
    colours, hatched = {"single": TABLE3_COLOURS["single"]}, []
    for p in protocols:
        for k, label in (("mtl", "MTL"), ("aioner", "AIONER")):
            name = f"{label} ({p})"
            series[name] = [r[p][k] and r[p][k]["overall_f1"] for r in rows.values()]
            colours[name] = TABLE3_COLOURS[label]
            hatched += [name] if p != protocols[0] else []
    # † as in the table: some of the corpus' test documents are in the leaky protocol's training data.
    groups = [
        c
        + (" †" if r["test_documents_in_leaky_training"] else "")
        + ("\n(no training file)" if not r["single"] else "")
        for c, r in rows.items()
    ]
    grouped_bar_chart(png, groups, series, f"test set, strict F1 (%), {scale} scale", colours, hatched)


def table3_markdown(rows: dict, counts: dict, protocols: list[str], leaks: dict) -> str:
    head = ["corpus", "task", "single"] + [f"{k} ({p})" for p in protocols for k in ("MTL", "AIONER")]
    head += ["p MTL/AIONER vs single (" + protocols[0] + ")", "paper single", "paper AIONER"]
    md = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]

    def f1(s):
        return "–" if not s else str(s["overall_f1"])

    for c, r in rows.items():
        task = next((s["task"] for s in (r[p]["aioner"] for p in protocols) if s), "–")  # a finished AIO model's
        cells = [c + (" †" if leaks.get(c) else ""), task, f1(r["single"])]
        cells += [f1(r[p][k]) for p in protocols for k in ("mtl", "aioner")]
        ps = [
            r[protocols[0]][k].get("wilcoxon_vs_single", {}).get("p_value") if r[protocols[0]][k] else None
            for k in ("mtl", "aioner")
        ]
        cells.append(" / ".join("–" if p is None else f"{p:.3g}" for p in ps))
        cells += [str(r["paper"].get("single", "–")), str(r["paper"].get("aioner", "–"))]
        md.append("| " + " | ".join(cells) + " |")
    lines = ["\n".join(md), ""]
    for p, n in counts.items():
        m = {k: "still training" if v is None else v for k, v in n["mean_f1"].items()}
        aio, mtl = ("–" if n[k] is None else n[k] for k in ("aio_at_least_single", "mtl_at_least_single"))
        lines.append(
            f"{p}: AIONER ≥ single on {aio} of {n['compared']} corpora, MTL ≥ single on "
            f"{mtl} of {n['compared']} (paper: 9 and 7 of 10); mean F1 single "
            f"{m['single']}, MTL {m['mtl']}, AIONER {m['aioner']}."
        )
    counted = ", ".join(f"{c} {k}" for c, k in leaks.items() if k)
    if counted:
        lines.append(f"\n† test documents of the corpus in the leaky protocol's training files: {counted}.")
    lines.append(
        "\nNLM-Chem: its training file is not held here (the downloader is the way to get it); only "
        "the AIO model, trained without it, is scored on its test set."
    )
    return "\n".join(lines)


def leak_chart(png: Path, split: dict, headline: str, scale: str) -> None:
    """``leak_by_document`` as bars: per corpus, its seen test documents beside its unseen ones, each with
    every system (the headline protocol solid, the other hatched), so the leak's jump on the seen documents
    alone can be seen at once."""
    systems = [k for k in next(iter(split.values())) if k != "documents"]
    names = {k: f"{'MTL' if k.endswith('mtl') else 'AIONER'} ({k.split('/')[0]})" for k in systems if k != "single"}
    names["single"] = "single"
    groups = [f"{c}\n{part} ({r['documents'][part]})" for c, r in split.items() for part in ("seen", "unseen")]
    series = {names[k]: [r[k][part] for r in split.values() for part in ("seen", "unseen")] for k in systems}
    colours = {names[k]: TABLE3_COLOURS[names[k].split(" ")[0]] for k in systems}
    hatched = [names[k] for k in systems if k != "single" and not k.startswith(headline + "/")]
    grouped_bar_chart(png, groups, series, f"strict F1 (%) on the documents, {scale} scale", colours, hatched)


def leak_markdown(split: dict) -> str:
    """The per-document split of the leak as a Markdown table: F1 on the seen and the unseen test documents."""
    if not split:
        return ""
    systems = [k for k in next(iter(split.values())) if k != "documents"]
    head = ["corpus", "test documents seen / unseen"] + systems
    md = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(systems)]
    for c, r in split.items():
        cells = [c, f"{r['documents']['seen']} / {r['documents']['unseen']}"]
        cells += [f"{r[k]['seen']} / {r[k]['unseen']}" for k in systems]
        md.append("| " + " | ".join(cells) + " |")
    return (
        "\n\nThe leak document by document: strict F1 (%) on the test documents that the leaky protocol's "
        "training files hold (seen) / on the others (unseen), each system on the same documents. The single-corpus "
        "model and the clean systems saw neither.\n\n" + "\n".join(md)
    )


def leaked_test_documents(corpora, training) -> dict[str, set[str]]:
    """Per corpus: its test documents present (by PubTator id) in the training files of ``training`` other
    than BioRED's test exclusion (which merged_dataset applies by default), keyed by position in the test
    file (``"0"``, ``"1"``, ... as ``corpus_documents`` keys them)."""
    from dataset_scripts.corpora import CorpusUnavailableError, fetch, get_corpus
    from dataset_scripts.pubtator import read_pubtator

    def ids(name, split) -> list[str]:  # in file order
        c = get_corpus(name)
        if c.format != "pubtator" or split not in c.splits:
            return []
        try:
            return [d.id for d in read_pubtator(fetch(c.splits[split], allow_download=False), strict=False)]
        except CorpusUnavailableError:
            return []

    train_ids = set().union(*(ids(t, "train") for t in training)) - set(ids("BioRED", "test"))
    return {c: {str(i) for i, d in enumerate(ids(c, "test")) if d in train_ids} for c in corpora}


def f1_on(gold, pred, documents: set[str]) -> float:
    """Strict micro F1 (%) on the ``documents`` only."""
    from aioner.scoring import score_entities

    keep = [[tuple(e) for e in es if e[0] in documents] for es in (gold, pred)]
    return round(100 * score_entities(*keep)["overall"]["f1"], 2)


def leak_by_document(ctx: Context, corpus: str, seen: set[str], systems: dict[str, Run]) -> dict:
    """Each system's F1 on the corpus' test documents seen by the leaky training (``seen``, their keys as
    ``leaked_test_documents`` gives them) and on the unseen rest.
    The leak shows as leaky minus clean on the seen documents against the same on the unseen ones,
    each system against itself on the same documents."""
    texts, _, gold = gold_documents(corpus)
    unseen = {str(i) for i in range(len(texts))} - seen
    out = {"documents": {"seen": len(seen), "unseen": len(unseen)}}
    for name, run in systems.items():
        pred = ctx.evaluate(run, corpus)["predictions"]
        out[name] = {"seen": f1_on(gold, pred, seen), "unseen": f1_on(gold, pred, unseen)}
    return out


def fig3(ctx: Context) -> Plan:
    sizes = ctx.scale["fig3_sizes"]
    pairs = [(n, fig3_baseline(ctx, n), ctx.aioner(bio_red=n)) for n in sizes]

    def report():
        rows, md = (
            [],
            [
                "| BioRED abstracts | BioRED only | + externals (AIONER) | Δ | p (Wilcoxon) |",
                "|---:|---:|---:|---:|---:|",
            ],
        )
        for n, base, aio in pairs:
            b, a, w = ctx.system(base, "BioRED"), ctx.system(aio, "BioRED"), ctx.wilcoxon(aio, base, "BioRED")
            rows.append(
                {
                    "bio_red_abstracts": n,
                    "baseline": b,
                    "aioner": a,
                    "wilcoxon": w,
                    "delta": round(a["overall_f1"] - b["overall_f1"], 2),
                }
            )
            md.append(f"| {n} | {b['overall_f1']} | {a['overall_f1']} | {rows[-1]['delta']} | {w['p_value']:.3g} |")
        png = ctx.results_dir / f"fig3_{ctx.args.scale}.png"
        line_chart(
            png,
            [r["bio_red_abstracts"] for r in rows],
            {
                "BioRED only": [r["baseline"]["overall_f1"] for r in rows],
                "+ externals (AIONER)": [r["aioner"]["overall_f1"] for r in rows],
            },
            "BioRED training abstracts",
            f"BioRED test, strict F1 (%), {ctx.args.scale} scale",
        )
        md.append(f"\n![Figure 3]({png.name})")
        return (
            {
                "points": rows,
                "figure": shown(png),
                "paper": {"encoder": PAPER_ENCODER, **PAPER_FIG3},
                "note": "F1 in %, strict, BioRED test. External corpora at the scale's sample. " + ENCODER_NOTE,
            },
            "\n".join(md) + "\n\nPaper (PubMedBERT-CRF): AIONER with 10 abstracts 86.91; baseline with all 500: 89.34.",
        )

    return Plan([r for _, b, a in pairs for r in (b, a)], [(r, "BioRED") for _, b, a in pairs for r in (b, a)], report)


def fig3_baseline(ctx: Context, n: int) -> Run:
    """BioRED alone, capped at ``n`` abstracts. At a scale with few epochs (``fig3_equal_steps``), as
    many epochs as give the optimizer steps of the scale's epochs over all of BioRED, all of them run
    (the best dev epoch is kept): 3 epochs of 10 abstracts are ~12 steps (dev F1 0.02, untrained), and
    with patience 5 (20 steps) the run stopped on the all-O plateau small data goes through first
    (dev F1 5.3 at epoch 5, then 0). The paper trained every model to convergence (20 epochs, patience 5)."""
    docs, epochs = CORPUS_TOKENS["BioRED"][0], ctx.scale["epochs"]
    equal = max(epochs, math.ceil(epochs * docs / n))
    if not ctx.scale["fig3_equal_steps"] or equal == epochs:
        return ctx.run("single", "BioRED", n)
    return replace(ctx.run("single", "BioRED", n, tag=f"e{equal}"), epochs=equal, patience=equal)


FIG4_CORPUS = "AnatEM"  # AnEM, the paper's, has no test split here (only its training file is held)
FIG4_SYSTEMS = {
    "baseline": "baseline",
    "mtl": "MTL",
    "aioner_merged": "AIONER-Merged",
    "aioner_pretrained": "AIONER-Pretrained",
}


def fig4(ctx: Context) -> Plan:
    c, aio = FIG4_CORPUS, ctx.aioner()
    base = ctx.run("single", c)
    pre = ctx.run("finetune", c, extra=["--init_from", shown(ctx.folder(aio))])
    merged_tokens = sum(share(x, ctx.scale["sample"]) for x in ctx.aio_corpora) + share(c, None)
    merged = ctx.run("merged", c, ctx.scale["sample"], train_tokens=merged_tokens, dev_tokens=dev(c))
    # MTL: the AIO corpora and the new one, each with its own output layer; the new corpus whole, as in merged.
    mtl = ctx.mtl([*ctx.aio_corpora, c], whole=[c], extra=["--exclude_tests_of", c], tag=c)
    systems = {"baseline": base, "mtl": mtl, "aioner_merged": merged, "aioner_pretrained": pre}

    def report():
        out = {k: ctx.system(r, c) for k, r in systems.items()}
        for k in systems:
            if k != "baseline":
                out[k]["wilcoxon_vs_baseline"] = ctx.wilcoxon(systems[k], base, c)
        out["aioner_pretrained"]["wilcoxon_vs_mtl"] = ctx.wilcoxon(pre, mtl, c)
        md = ["| system | F1 | P | R | p vs baseline (Wilcoxon) |", "|---|---:|---:|---:|---:|"]
        for k, s in out.items():
            p = s.get("wilcoxon_vs_baseline", {}).get("p_value")
            p = "–" if p is None else f"{p:.3g}"
            md.append(f"| {FIG4_SYSTEMS[k]} | {s['overall_f1']} | {s['precision']} | {s['recall']} | {p} |")
        png = ctx.results_dir / f"fig4_{ctx.args.scale}.png"
        bar_chart(
            png,
            {FIG4_SYSTEMS[k]: s["overall_f1"] for k, s in out.items()},
            f"{c} test, strict F1 (%), {ctx.args.scale} scale",
        )
        return (
            {
                "corpus": c,
                **out,
                "figure": shown(png),
                "paper": {"encoder": PAPER_ENCODER, **PAPER_FIG4},
                "note": f"F1 in %, strict, {c} test. Every system trains on all of {c}'s training set "
                "(the merged and MTL runs sample only their AIO part). AnEM is not scored: its test "
                "split is not held here. NLM-Chem's training file is missing: the AIO part lacks it. " + ENCODER_NOTE,
            },
            f"Strict F1 (%) on the {c} test set\n\n" + "\n".join(md) + f"\n\n![Figure 4]({png.name})",
        )

    return Plan([aio, base, pre, merged, mtl], [(r, c) for r in systems.values()], report)


def gerbera_targets() -> list[str]:
    from dataset_scripts.corpora import CORPORA

    # JNLPBA's training file is not held here; its devel set is the low-resource training set. A
    # "JNLPBA-devel" corpus entry (benchmarks/README.md) gives train.py exactly that; use it when it exists.
    return ["NCBI-Disease", "JNLPBA-devel" if "JNLPBA-devel" in CORPORA else "JNLPBA"]


GERBERA_SYSTEMS = {
    "target_alone": "target alone",
    "mtl": "MTL with the other biomedical corpora",
    "gerbera": "GERBERA (+ CoNLL-2003, then the target)",
}


def gerbera(ctx: Context) -> Plan:
    from aioner.scoring import format_table

    targets = gerbera_targets()
    missing = unavailable_training(targets, download=not ctx.args.dry_run)
    gs = ctx.scale["general_sample"]
    systems = {}
    for t in targets:
        if t in missing:
            continue
        extra = ["--general", "CoNLL-2003"] + (["--general_sample", fmt(gs)] if gs is not None else [])
        tokens = share(t, None) * 2 + share("CoNLL-2003", gs)  # stage 1 (target + general), stage 2 (target)
        # GERBERA's baseline: multi-task with other BioNER sets (the AIO corpora at the scale's sample), the
        # target whole, and the target's test documents removed from every corpus (BioRED holds some).
        others = [c for c in ctx.aio_corpora if c != t]
        systems[t] = {
            "target_alone": ctx.run("single", t),
            "mtl": ctx.mtl([t, *others], whole=[t], extra=["--exclude_tests_of", t], tag=t),
            "gerbera": ctx.run("gerbera", t, extra=extra, train_tokens=tokens, dev_tokens=2 * dev(t)),
        }

    def report():
        out, md = {}, []
        for t, runs in systems.items():
            row = {k: ctx.system(r, t) for k, r in runs.items()}
            for k in ("mtl", "gerbera"):
                row[k]["delta_vs_target_alone"] = round(row[k]["overall_f1"] - row["target_alone"]["overall_f1"], 2)
                row[k]["wilcoxon_vs_target_alone"] = ctx.wilcoxon(runs[k], runs["target_alone"], t)
            row["gerbera"]["wilcoxon_vs_mtl"] = ctx.wilcoxon(runs["gerbera"], runs["mtl"], t)
            if "RNA" in row["target_alone"]["per_type_f1"]:  # GERBERA's low-resource case (+4.7 F1 in the paper)
                row["rna_f1"] = {k: row[k]["per_type_f1"].get("RNA") for k in runs}
            out[t] = row
            table = format_table({GERBERA_SYSTEMS[k]: ctx.evaluate(r, t)["strict"] for k, r in runs.items()})
            ps = ", ".join(
                f"{k} vs target alone p = {row[k]['wilcoxon_vs_target_alone']['p_value']:.3g}"
                for k in ("mtl", "gerbera")
            )
            md.append(f"**{t}** (strict F1 %; {ps})\n\n{table}")
            if "rna_f1" in row:
                md.append(
                    "RNA alone (GERBERA's low-resource type): "
                    + ", ".join(f"{GERBERA_SYSTEMS[k]} {v}" for k, v in row["rna_f1"].items())
                )
        for t, why in missing.items():
            out[t] = {"skipped": why}
            md.append(f"**{t}**: skipped, training file unavailable.")
        return (
            {
                "targets": out,
                "general": "CoNLL-2003",
                "paper": PAPER_GERBERA,
                "note": "F1 in %, strict, each target's test set; the target's whole training set in every "
                "system. There is no OntoNotes copy here: the general-domain set is CoNLL-2003 alone. "
                "MTL: the target and the AIO corpora (at the scale's sample; NLM-Chem's training file "
                "is missing), one output layer each. " + ENCODER_NOTE,
            },
            "\n\n".join(md),
        )

    notes = [f"{t}: skipped, training file unavailable ({why})" for t, why in missing.items()]
    runs = [r for rs in systems.values() for r in rs.values()]
    return Plan(runs, [(r, t) for t, rs in systems.items() for r in rs.values()], report, notes)


def crf_vs_softmax(ctx: Context) -> Plan:
    systems = {
        (kind, dec): (ctx.baseline(decoder=dec) if kind == "baseline" else ctx.aioner(decoder=dec))
        for kind in ("baseline", "aioner")
        for dec in ("crf", "softmax")
    }
    repeats = 2

    def report():
        out = {}
        for (kind, dec), run in systems.items():
            s = ctx.system(run, "BioRED")
            s["tagging_seconds_measured"] = time_tagging(tagger_for(ctx.folder(run)), "BioRED", repeats)
            if dec == "softmax":
                s["wilcoxon_vs_crf"] = ctx.wilcoxon(run, systems[(kind, "crf")], "BioRED")
            out.setdefault(kind, {})[dec] = s
        md = [
            "| training data | output layer | F1 | tagging s (BioRED test) | paper F1 | paper GPU / CPU s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for kind, decs in out.items():
            for dec, s in decs.items():
                p = PAPER_TABLE4[dec]
                md.append(
                    f"| {kind} | {dec} | {s['overall_f1']} | {s['tagging_seconds_measured']} | "
                    f"{p[kind + '_f1']} | {p['gpu_seconds']} / {p['cpu_seconds']} |"
                )
        return (
            {
                **out,
                "paper": {"encoder": "PubMedBERT (AIONER Table 4)", **PAPER_TABLE4},
                "timing": f"best of {repeats} passes over the BioRED test set (100 abstracts) after a warm-up, "
                f"in this process ({machine()})",
                "note": "F1 in %, strict, BioRED test. " + ENCODER_NOTE,
            },
            "\n".join(md),
        )

    runs = list(systems.values())
    tag_s = len(runs) * (repeats + 0.2) * CORPUS_TOKENS["BioRED"][3] / TAG_TOKENS_PER_S
    return Plan(runs, [(r, "BioRED") for r in runs], report, extra_seconds=tag_s)
