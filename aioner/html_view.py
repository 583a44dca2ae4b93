"""A self-contained HTML page of tagged documents, entity types in colour (in the manner of displaCy).

Nested entities (from ``--overlapping``) are drawn inside one another; an entity that
crosses another's boundary without nesting cannot be drawn as HTML and is listed under
its document instead, so nothing is hidden.
"""

from __future__ import annotations

import html

PALETTE = {"Gene": "#aa9cfc", "Disease": "#fc9ce7", "Chemical": "#7aecec", "Species": "#bfeeb7",
           "Variant": "#feca74", "CellLine": "#ff9561"}
EXTRA_COLOURS = ["#c887fb", "#9cc9cc", "#e4e7d2", "#ffeb80", "#ddd", "#f0a8a8", "#b5d6f7", "#d9c4a9"]

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 60em;
       line-height: 2.4; color: #222; }
h2 { font-size: 1em; margin-bottom: 0; color: #555; }
mark { padding: 0.2em 0.3em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1.6; }
mark mark { padding: 0.1em 0.2em; }
mark .t { font-size: 0.65em; font-weight: bold; text-transform: uppercase; margin-left: 0.4em;
          vertical-align: middle; }
.legend mark { font-size: 0.85em; }
.crossing { font-size: 0.85em; color: #a00; line-height: 1.4; }
"""


def _colour(etype: str, assigned: dict) -> str:
    if etype not in assigned:
        assigned[etype] = PALETTE.get(etype, EXTRA_COLOURS[len(assigned) % len(EXTRA_COLOURS)])
    return assigned[etype]


def _nest(entities: list[dict]) -> tuple[list[dict], list[dict]]:
    """Entities as a forest by containment (outer first), plus those that cross a boundary."""
    roots, crossing, stack = [], [], []
    for e in sorted(entities, key=lambda e: (e["start"], -e["end"])):
        node = {**e, "children": []}
        while stack and stack[-1]["end"] <= e["start"]:
            stack.pop()
        if stack and e["end"] > stack[-1]["end"]:
            crossing.append(e)
            continue
        (stack[-1]["children"] if stack else roots).append(node)
        stack.append(node)
    return roots, crossing


def _render(text: str, start: int, end: int, nodes: list[dict], colours: dict) -> str:
    out, pos = [], start
    for n in nodes:
        out.append(html.escape(text[pos:n["start"]]))
        inner = _render(text, n["start"], n["end"], n["children"], colours)
        out.append(f'<mark style="background:{_colour(n["type"], colours)}" title="{html.escape(n["type"])}'
                   f'{" %.2f" % n["score"] if "score" in n else ""}">{inner}'
                   f'<span class="t">{html.escape(n["type"])}</span></mark>')
        pos = n["end"]
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def render_html(docs: list[tuple[str, str, list[dict]]], title: str = "AIONER") -> str:
    """``docs``: (id, text, entities with start/end/type[/score]) → one HTML page."""
    colours: dict[str, str] = {}
    body = []
    for doc_id, text, entities in docs:
        roots, crossing = _nest(entities)
        body.append(f"<section><h2>{html.escape(str(doc_id))}</h2><p>{_render(text, 0, len(text), roots, colours)}</p>")
        if crossing:
            items = ", ".join(f"{html.escape(e['type'])} {e['start']}-{e['end']} “{html.escape(text[e['start']:e['end']])}”"
                              for e in crossing)
            body.append(f'<p class="crossing">Crossing entities not drawn: {items}</p>')
        body.append("</section>")
    legend = " ".join(f'<mark style="background:{c}">{html.escape(t)}</mark>' for t, c in colours.items())
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><p class=\"legend\">{legend}</p>{''.join(body)}</body></html>\n")
