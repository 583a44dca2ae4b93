"""aioner_text: the words and sentences that training and tagging share."""

import pytest

from aioner_text import segment


def words(text):
    return [[text[s:e] for s, e in sentence] for sentence in segment(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        # spaCy keeps the period after a capital; a mention ending there must be a word of its own
        ("The A118G. A new one", [["The", "A118G", "."], ["A", "new", "one"]]),
        ("Chronic hepatitis C. The", [["Chronic", "hepatitis", "C", "."], ["The"]]),
        ("Mutations in MT1X.", [["Mutations", "in", "MT1X", "."]]),
        ("The 1858C/T. In", [["The", "1858C", "/", "T", "."], ["In"]]),
        # an abbreviated genus before a lower-case species, spaCy's abbreviations, inner periods: as they were
        ("E. coli and S. aureus grew", [["E.", "coli", "and", "S.", "aureus", "grew"]]),
        ("In the U.S. and by Dr. Smith", [["In", "the", "U.S.", "and", "by", "Dr.", "Smith"]]),
        ("It rose, e.g. here", [["It", "rose", ",", "e.g.", "here"]]),
    ],
)
def test_a_final_period_after_a_capital_ends_the_word_and_the_sentence(text, expected):
    assert words(text) == expected


def test_the_split_period_keeps_offsets_exact_and_respects_cuts_and_kept_spans():
    text = "Title on CaM.\nThe A118G. Next"
    sentences = segment(text, offset=100)
    flat = [w for s in sentences for w in s]
    assert [text[s - 100 : e - 100] for s, e in flat] == ["Title", "on", "CaM", ".", "The", "A118G", ".", "Next"]
    # a cut at the period (a gold mention's end, in training data) gives the sentences tagging sees
    assert segment(text, cuts=[23]) == segment(text)
    # a gold mention across the period keeps its sentence whole
    kept = segment(text, keep_together=[(18, 29)], cuts=[23])
    assert [[text[s:e] for s, e in sent] for sent in kept][-1] == ["The", "A118G", ".", "Next"]
