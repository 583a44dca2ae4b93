"""A self-contained HTML page of tagged documents, drawn by spaCy's displaCy.

A document whose entities do not overlap goes through displaCy's ``ent`` style (coloured
highlights); one with nested, crossing or same-span entities (from ``--overlapping``) goes
through its ``span`` style (stacked underlines), which draws them all, crossing ones included.

What displaCy does not show by itself, and how it is kept:

* entity scores: the ``ent`` style gets them as a hover title (its template plus a ``title``);
  the ``span`` style has no per-entity field for them, so there they are listed under the document;
* the ``span`` style puts a space after every token outside an entity; where the text has none
  it is taken out again (``GLUE``); line breaks still become spaces in that style.
"""

from __future__ import annotations

import html
import re

from spacy import displacy
from spacy.displacy.templates import TPL_ENT, TPL_FIGURE, TPL_SPAN, TPL_SPAN_SLICE, TPL_SPAN_START

PALETTE = {
    "Gene": "#aa9cfc",
    "Disease": "#fc9ce7",
    "Chemical": "#7aecec",
    "Species": "#bfeeb7",
    "Variant": "#feca74",
    "CellLine": "#ff9561",
}
EXTRA_COLOURS = ["#c887fb", "#9cc9cc", "#e4e7d2", "#ffeb80", "#ddd", "#f0a8a8", "#b5d6f7", "#d9c4a9"]

GLUE = "\u2060"  # word joiner: invisible should it ever be left in the page
# displaCy's own markups without their outer newlines, which would draw as spaces the text lacks
# ("( GHD )"); the entity one with a hover title for the type and score added
TPL_SPAN_TIGHT = {"span": TPL_SPAN.strip(), "slice": TPL_SPAN_SLICE, "start": TPL_SPAN_START}
TPL_ENT_TITLED = TPL_ENT.strip().replace('<mark class="entity" ', '<mark class="entity" title="{tip}" ', 1)

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 60em;
       color: #222; }
.legend mark { padding: 0.2em 0.4em; margin-right: 0.3em; border-radius: 0.35em; font-size: 0.85em; }
.scores { font-size: 0.85em; color: #555; line-height: 1.4; }
"""


def _colour(etype: str, assigned: dict) -> str:
    if etype not in assigned:
        assigned[etype] = PALETTE.get(etype, EXTRA_COLOURS[len(assigned) % len(EXTRA_COLOURS)])
    return assigned[etype]


def _overlapping(entities: list[dict]) -> bool:
    spans = sorted((e["start"], e["end"]) for e in entities)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def _tip(e: dict) -> str:
    return e["type"] + (f" {e['score']:.2f}" if "score" in e else "")


def _ent_doc(doc_id, text: str, entities: list[dict]) -> dict:
    # displaCy escapes the text but not the title, labels or params: those are escaped here
    return {
        "text": text,
        "title": html.escape(str(doc_id)),
        "ents": [
            {
                "start": e["start"],
                "end": e["end"],
                "label": html.escape(e["type"]),
                "params": {"tip": html.escape(_tip(e))},
            }
            for e in entities
        ],
    }


def _span_doc(doc_id, text: str, entities: list[dict]) -> dict:
    # Tokens cut at every entity edge and around whitespace, so each character offset is a token edge
    cuts = {0, len(text)} | {o for e in entities for o in (e["start"], e["end"])}
    cuts |= {o for m in re.finditer(r"\s+", text) for o in m.span()}
    cuts = sorted(cuts)
    index = {o: i for i, o in enumerate(cuts)}
    spans = [
        {"start_token": index[e["start"]], "end_token": index[e["end"]], "label": html.escape(e["type"])}
        for e in entities
    ]
    inside = {i for s in spans for i in range(s["start_token"], s["end_token"])}
    tokens = [text[a:b] for a, b in zip(cuts, cuts[1:])]
    # displaCy writes a space after every token outside an entity; GLUE marks those where the
    # text has none ("(" before "GHD)"), and render_html takes that space out again
    tokens = [
        t + GLUE if i not in inside and not t.isspace() and i + 1 < len(tokens) and not tokens[i + 1].isspace() else t
        for i, t in enumerate(tokens)
    ]
    return {"text": text, "title": html.escape(str(doc_id)), "tokens": tokens, "spans": spans}


def _render(doc: dict, style: str, template: str, options: dict) -> str:
    """One displaCy figure: ``manual`` as ``doc`` is our own dict, not a spaCy Doc; ``jupyter=False`` so
    the markup is returned even inside a notebook."""
    return displacy.render(doc, style=style, manual=True, options={**options, "template": template}, jupyter=False)


def render_html(docs: list[tuple[str, str, list[dict]]], title: str = "AIONER") -> str:
    """``docs``: (id, text, entities with character start/end (exclusive)/type[/score]) → one HTML page."""
    colours: dict[str, str] = {}
    body = []
    for doc_id, text, entities in docs:
        for e in entities:
            _colour(e["type"], colours)
        options = {"colors": {html.escape(t): c for t, c in colours.items()}}
        if _overlapping(entities):
            figure = _render(_span_doc(doc_id, text, entities), "span", TPL_SPAN_TIGHT, options)
            figure = figure.replace(GLUE + " ", "")
            scored = [e for e in sorted(entities, key=lambda e: (e["start"], -e["end"])) if "score" in e]
            if scored:
                figure += (
                    '<p class="scores">Scores: '
                    + "; ".join(f"{html.escape(_tip(e))} “{html.escape(text[e['start'] : e['end']])}”" for e in scored)
                    + "</p>"
                )
        else:
            figure = _render(_ent_doc(doc_id, text, entities), "ent", TPL_ENT_TITLED, options)
        body.append(TPL_FIGURE.format(content=figure))
    legend = " ".join(f'<mark style="background:{c}">{html.escape(t)}</mark>' for t, c in colours.items())
    # Our own page rather than displaCy's (page=True): it mixes both styles and declares UTF-8
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{STYLE}</style></head><body><p class="legend">{legend}</p>{"".join(body)}</body></html>\n'
    )
