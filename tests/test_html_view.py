"""The HTML view on displaCy: flat documents in its ent style, overlapping ones in its span style."""

import html
import re

from aioner.html_view import render_html

TEXT = "Mutations in GH1 cause isolated growth hormone deficiency (IGHD) in 3 <script>alert(1)</script> kids."


def ent(surface, etype, score=None, text=TEXT):
    start = text.index(surface)
    e = {"start": start, "end": start + len(surface), "type": etype, "text": surface}
    return e if score is None else {**e, "score": score}


FLAT = [ent("GH1", "Gene", 0.99), ent("growth hormone deficiency", "Disease", 0.95), ent("IGHD", "Disease")]
NESTED = FLAT + [ent("growth hormone", "Gene", 0.81)]


def visible(page):
    """The page as read: labels and underlines out, highlights unwrapped, whitespace collapsed."""
    start = r'<span style="background: [^"]*border-top-left-radius[^>]*>\s*<span[^>]*>.*?</span>\s*</span>'
    for pattern, repl in [
        (start, ""),
        (r'<span style="background: [^"]*">\s*</span>', ""),  # span style: labels, underlines
        (r'<span style="font-weight: bold; display: inline-block[^>]*>\s*(.*?)\s*</span>', r"\1"),
        (r'<span style="font-size: 0.8em[^>]*>.*?</span>', ""),  # ent style: label
        (r"<mark[^>]*>\s*(.*?)\s*</mark>", r"\1"),
        (r"<[^>]+>", ""),
    ]:
        page = re.sub(pattern, repl, page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(page))


def test_flat_document_uses_ent_style():
    page = render_html([("doc1", TEXT, FLAT)])
    assert page.startswith("<!DOCTYPE html>") and 'class="entities"' in page and 'class="spans"' not in page
    for e in FLAT:
        assert f">\n    {e['text']}\n" in page  # displaCy's <mark class="entity"> holds the exact text
    assert page.count('<mark class="entity"') == 3 and page.count(">Disease</span>") == 2
    assert 'title="Gene 0.99"' in page and 'title="Disease"' in page  # score kept as hover title
    assert "<h2" in page and "doc1" in page and "background: #aa9cfc" in page  # title, our palette


def test_nested_entities_both_drawn():
    page = render_html([("doc2", TEXT, NESTED)])
    assert 'class="spans"' in page and '<mark class="entity"' not in page
    assert re.search(r">\s*Gene\s*</span>", page) and re.search(r">\s*Disease\s*</span>", page)
    assert page.count("border-top-left-radius: 3px; border-bottom-left-radius") == 4  # one start per entity
    assert 'height: 77px;">\n    growth\n' in page and 'height: 60px;">\n    deficiency\n' in page
    # scores, which the span style cannot carry, are listed under the document
    assert "Gene 0.81 “growth hormone”" in page and "Disease 0.95 “growth hormone deficiency”" in page
    # no space the text lacks: "(IGHD)" stays tight, spacing outside entities as in the text
    assert "(<span" in page and "</span>)" in page and "\u2060" not in page


def test_crossing_pair_not_lost():
    text = "the IL-2 receptor alpha chain"
    a, b = ent("IL-2 receptor", "Gene", text=text), ent("receptor alpha", "Chemical", text=text)
    page = render_html([("x", text, [a, b])])
    assert 'class="spans"' in page
    assert page.count("border-top-left-radius: 3px; border-bottom-left-radius") == 2
    assert re.search(r">\s*Gene\s*</span>", page) and re.search(r">\s*Chemical\s*</span>", page)
    assert 'height: 77px;">\n    receptor\n' in page  # "receptor" is under both: two underline slots
    assert text in visible(page)


def test_text_is_escaped():
    for entities in (FLAT, NESTED):
        page = render_html([("<i>id</i>", TEXT, entities)])
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<i>" not in page and "&lt;i&gt;id&lt;/i&gt;" in page  # ids are escaped too


def test_every_entity_text_and_the_whole_text_visible():
    for entities in (FLAT, NESTED):
        seen = visible(render_html([("d", TEXT, entities)]))
        for e in entities:
            assert TEXT[e["start"] : e["end"]] == e["text"] and e["text"] in seen
    # in the span style (nested), the text reads exactly as written, entities included
    seen = visible(render_html([("d", TEXT, NESTED)]).split("<figure", 1)[1].split('<p class="scores">')[0])
    assert TEXT in seen


def test_legend_and_colours_across_documents():
    other = "A new Cytokine appears."
    page = render_html([("a", TEXT, FLAT), ("b", other, [ent("Cytokine", "Cytokine", text=other)])])
    legend = page.split('<p class="legend">')[1].split("</p>")[0]
    assert [t for t in re.findall(r">(\w+)</mark>", legend)] == ["Gene", "Disease", "Cytokine"]
    colour = re.search(r'background:(#\w+)">Cytokine', legend).group(1)
    assert legend.count(colour) == 1 and f"background: {colour}" in page  # its own colour, drawn
    assert page.count("<figure") == 2
