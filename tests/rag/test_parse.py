"""Tests of rag.parse: titles, dates, paragraphs and their exact offsets into the source text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from rag.domain import Article
from rag.errors import CorpusError
from rag.parse import find_first_date, parse_bytes, parse_date, parse_file, parse_text

SEEDS = sorted((Path(__file__).resolve().parents[2] / "seeds").glob("*.txt"))

# Expected title, date and paragraph count of every seed article.
SEED_EXPECTED = {
    "000_57b7b5ccac7b4b3f.txt": (
        "ILO reflects on the Social and Solidarity Economy’s contribution to digital inclusion in Asia",
        "2022-04-01",
        7,
    ),
    "001_836a51dde4f8b979.txt": (
        "ILO contributes to the HomeNet Southeast Asia (HNSEA) Thematic Workshop on Social Solidarity Economy",
        "2022-11-11",
        8,
    ),
    # No title line and no dateline: both come from the text itself.
    "002_c07edba6fafc06a0.txt": (None, "2024-06-18", 9),
    "003_21bb20fa281d6cc8.txt": (
        "Workshop on Strengthening Social and Solidarity Economy (SSE) Policy in Asia takes place virtually",
        "2021-03-31",
        16,
    ),
    "004_39012777520c72e4.txt": (
        "ILO organizes orientation to strengthen understanding around the social and solidarity economy in Asia",
        "2022-10-26",
        8,
    ),
}


def assert_well_formed(article: Article, text: str) -> None:
    """Offsets round-trip, paragraphs are ordered, disjoint, trimmed and numbered 1..n."""
    assert article.paragraphs, "an article has at least one paragraph"
    previous_end = -1
    for number, para in enumerate(article.paragraphs, start=1):
        assert para.number == number
        assert para.doc_id == article.doc_id
        assert text[para.start : para.end] == para.text
        assert para.start < para.end
        assert para.start >= previous_end, "paragraphs overlap or are out of order"
        assert para.text == para.text.strip()
        previous_end = para.end
    assert article.title.strip()
    assert article.paragraph(len(article.paragraphs)) is article.paragraphs[-1]


# --- the seed articles --------------------------------------------------------------------


def test_all_seeds_are_expected() -> None:
    assert [p.name for p in SEEDS] == sorted(SEED_EXPECTED)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_title_date_paragraphs(path: Path) -> None:
    title, date, count = SEED_EXPECTED[path.name]
    article = parse_file(path)
    text = path.read_text(encoding="utf-8")
    assert_well_formed(article, text)
    if title is not None:
        assert article.title == title
    assert article.date == date
    assert len(article.paragraphs) == count
    assert article.doc_id == path.name
    # The title line and the dateline are metadata, not paragraphs.
    assert all(p.text != article.title for p in article.paragraphs)
    assert not any(p.text.startswith("News |") for p in article.paragraphs)


def test_dateline_is_the_article_date() -> None:
    article = parse_file(SEEDS[0])
    assert article.date == "2022-04-01"  # "News | 01 April 2022", not the event date "March 30, 2022"
    assert article.paragraphs[0].text.startswith("The ILO participated in a webinar")
    assert article.paragraphs[1].text.startswith("The Asian Roundtable for Social Protection (AROSP)")


def test_dateline_is_kept_as_an_exact_slice_numbered_zero() -> None:
    article = parse_file(SEEDS[0])
    source = SEEDS[0].read_text(encoding="utf-8")
    line = article.dateline
    assert line is not None and line.number == 0 and line.text == "News | 01 April 2022"
    assert source[line.start : line.end] == line.text
    assert all(p.number >= 1 for p in article.paragraphs)  # not one of the numbered paragraphs
    assert article.paragraph(0) == line and article.paragraph(1) == article.paragraphs[0]


def test_inferred_date_has_no_dateline() -> None:
    # The 2024 workshop's article has no dateline: its date is the event's, read from the text,
    # and nothing may present it as the publication date.
    article = parse_file(SEEDS[2])
    assert article.date == "2024-06-18" and article.dateline is None
    assert parse_text("w.txt", "A title\n\nThe fair opened on 3 May 2021 in Lyon.").dateline is None
    with pytest.raises(IndexError):
        article.paragraph(0)  # never the last paragraph by a negative index


def test_front_matter_date_line_is_the_dateline() -> None:
    text = '---\ntitle: T\ndate: May 4, 2023\n---\nBody one.\n'
    line = parse_text("fm.md", text).dateline
    assert line is not None and line.text == "date: May 4, 2023" and text[line.start : line.end] == line.text


def test_undated_untitled_seed_derives_both_from_text() -> None:
    article = parse_file(SEEDS[2])
    # Page debris at the top ("You are here", "Picture Credits: ILO Coop", NBSP lines) is gone.
    assert article.paragraphs[0].text.startswith("The regional workshop organized from 18-19 June 2024")
    # No title line: the event's quoted name in the first sentence stands in.
    assert article.title == "Social and Solidarity Economy (SSE) for Advancing the Sustainable Development Goals (SDGs) in Asia"
    assert article.date == "2024-06-18"
    for para in article.paragraphs:
        assert "You are here" not in para.text
        assert "Picture Credits" not in para.text
        assert para.text.strip("\u00a0 ")


def test_seed_bullet_list_stays_with_its_intro() -> None:
    article = parse_file(SEEDS[2])
    para = article.paragraphs[2]
    assert para.text.startswith("In Asia and the Pacific")
    assert "The workshop was organized with the aim to:" in para.text
    for item in ("• Strengthen Understanding", "• Promote Knowledge Sharing", "• Develop Action Plans"):
        assert item in para.text
    assert article.paragraphs[3].text.startswith("The workshop was attended by around 100 participants")


def test_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    data = SEEDS[1].read_bytes()
    assert parse_file(SEEDS[1]).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_numbering_is_stable(path: Path) -> None:
    assert parse_file(path) == parse_file(path)
    text = path.read_text(encoding="utf-8")
    assert parse_text(path.name, text) == parse_text(path.name, text)


# --- line endings, BOM and blank-ish lines --------------------------------------------------


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_crlf_line_endings_give_the_same_article(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    crlf = text.replace("\n", "\r\n")
    plain, windows = parse_text(path.name, text), parse_text(path.name, crlf)
    assert_well_formed(windows, crlf)
    assert windows.title == plain.title
    assert windows.date == plain.date
    assert [p.text.replace("\r", "") for p in windows.paragraphs] == [p.text for p in plain.paragraphs]


def test_cr_only_line_endings() -> None:
    text = "Old Mac title\r\rNews | 01 April 2022\rBody one.\r\rBody two."
    article = parse_text("mac.txt", text)
    assert_well_formed(article, text)
    assert article.title == "Old Mac title"
    assert article.date == "2022-04-01"
    assert [p.text for p in article.paragraphs] == ["Body one.", "Body two."]


@pytest.mark.parametrize("path", SEEDS[:2], ids=lambda p: p.name)
def test_bom_is_not_part_of_the_title(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    with_bom = "\ufeff" + text
    plain, bom = parse_text(path.name, text), parse_text(path.name, with_bom)
    assert_well_formed(bom, with_bom)
    assert bom.title == plain.title
    assert not bom.title.startswith("\ufeff")
    assert [p.text for p in bom.paragraphs] == [p.text for p in plain.paragraphs]
    assert [p.start for p in bom.paragraphs] == [p.start + 1 for p in plain.paragraphs]


def test_bom_from_bytes() -> None:
    data = "\ufeffBOM title\n\nFirst paragraph.\n\nSecond paragraph.".encode()
    article = parse_bytes("bom.txt", data)
    assert article.title == "BOM title"
    assert [p.text for p in article.paragraphs] == ["First paragraph.", "Second paragraph."]


def test_nbsp_only_lines_separate_paragraphs() -> None:
    text = "Title\n\nPara one.\n\u00a0\nPara two.\n \u00a0 \t\nPara three."
    article = parse_text("nbsp.txt", text)
    assert_well_formed(article, text)
    assert [p.text for p in article.paragraphs] == ["Para one.", "Para two.", "Para three."]


def test_separator_lines_are_not_paragraphs() -> None:
    text = "Title\n\nPara one.\n\n* * *\n\nPara two.\n\n---\n\n•"
    article = parse_text("sep.txt", text)
    assert [p.text for p in article.paragraphs] == ["Para one.", "Para two."]


# --- lists ---------------------------------------------------------------------------------


def test_bullet_list_kept_with_colon_intro() -> None:
    text = "Title\n\nThe aims were to:\n\n• First aim here\n• Second aim here\n\nAfter the list."
    article = parse_text("list.txt", text)
    assert_well_formed(article, text)
    assert [p.text for p in article.paragraphs] == [
        "The aims were to:\n\n• First aim here\n• Second aim here",
        "After the list.",
    ]


def test_list_items_separated_by_blank_lines_are_one_paragraph() -> None:
    text = "Title\n\nThe plan has three parts:\n\n- Train staff\n\n- Buy tools\n\n1. Open a shop\n\nEnd."
    article = parse_text("list.txt", text)
    assert_well_formed(article, text)
    assert len(article.paragraphs) == 2
    assert article.paragraphs[0].text.endswith("1. Open a shop")
    assert article.paragraphs[1].text == "End."


def test_list_without_intro_stays_separate() -> None:
    text = "Title\n\nA complete sentence.\n\n1. one thing\n2. another thing"
    article = parse_text("list.txt", text)
    assert [p.text for p in article.paragraphs] == ["A complete sentence.", "1. one thing\n2. another thing"]


# --- page debris -----------------------------------------------------------------------------


def test_page_debris_is_dropped() -> None:
    text = (
        "You are here\n\nPicture Credits: ILO / J. Doe\n\nReal Title\n\n"
        "Body one here.\n\nShare\n\nPhoto credit: someone\n\nBody two.\n\nBack to top"
    )
    article = parse_text("debris.txt", text)
    assert_well_formed(article, text)
    assert article.title == "Real Title"
    assert [p.text for p in article.paragraphs] == ["Body one here.", "Body two."]


def test_only_debris_is_an_error() -> None:
    with pytest.raises(CorpusError, match="no paragraphs"):
        parse_text("debris.txt", "You are here\n\nShare\n\nPicture Credits: X\n")


# --- markdown --------------------------------------------------------------------------------


def test_markdown_heading_is_the_title() -> None:
    text = "# Heading Title\n\nBody para one.\n\nBody para two."
    article = parse_text("a.md", text)
    assert_well_formed(article, text)
    assert article.title == "Heading Title"
    assert [p.text for p in article.paragraphs] == ["Body para one.", "Body para two."]


def test_front_matter_title_and_date() -> None:
    text = '---\ntitle: "Front Matter Title"\ndate: May 4, 2023\nauthor: x\n---\nFirst para.\n\nSecond para.'
    article = parse_text("fm.md", text)
    assert_well_formed(article, text)
    assert article.title == "Front Matter Title"
    assert article.date == "2023-05-04"
    assert [p.text for p in article.paragraphs] == ["First para.", "Second para."]
    assert article.paragraphs[0].start == text.index("First para.")


def test_front_matter_title_with_repeated_heading() -> None:
    text = "---\ntitle: FM Title\ndate: 2023-05-04\n---\n\n# FM Title\n\nBody one.\n\nBody two."
    article = parse_text("fm.md", text)
    assert_well_formed(article, text)
    assert article.title == "FM Title"
    assert article.date == "2023-05-04"
    assert [p.text for p in article.paragraphs] == ["Body one.", "Body two."]


def test_front_matter_with_crlf() -> None:
    text = "---\r\ntitle: CRLF Title\r\npublished: 2020-01-31\r\n---\r\n\r\nBody text here."
    article = parse_text("fm.md", text)
    assert_well_formed(article, text)
    assert (article.title, article.date) == ("CRLF Title", "2020-01-31")


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("01 April 2022", "2022-04-01"),
        ("2nd November 2022", "2022-11-02"),
        ("18-19 June 2024", "2024-06-18"),
        ("March 30, 2022", "2022-03-30"),
        ("October 6 and 7, 2022", "2022-10-06"),
        ("March 29-31, 2021", "2021-03-29"),
        ("Sept. 9, 2020", "2020-09-09"),
        ("2022-04-01", "2022-04-01"),
        ("31 February 2022", None),  # not a real date
        ("sometime in 2022", None),
    ],
)
def test_parse_date(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


def test_dateline_variants() -> None:
    for line, iso in [
        ("News | 01 April 2022", "2022-04-01"),
        ("Press release | 3 May 2023", "2023-05-03"),
        ("March 30, 2022", "2022-03-30"),
    ]:
        text = f"Title\n\n{line}\nBody text that mentions 9 September 2001 too."
        article = parse_text("d.txt", text)
        assert article.date == iso, line
        assert [p.text for p in article.paragraphs] == ["Body text that mentions 9 September 2001 too."]


def test_undated_article_takes_first_date_in_text() -> None:
    text = "Title\n\nThe meeting took place on 5 May 2021 in Bangkok.\n\nA follow-up is set for June 1, 2022."
    assert parse_text("u.txt", text).date == "2021-05-05"
    assert find_first_date(text) == "2021-05-05"


def test_article_without_any_date() -> None:
    article = parse_text("n.txt", "Title\n\nNo date is mentioned here at all, only the year 2021.")
    assert article.date is None


def test_title_derived_from_first_sentence() -> None:
    text = "The meeting took place in Bangkok. It was a success."
    article = parse_text("t.txt", text)
    assert article.title == "The meeting took place in Bangkok"
    assert [p.text for p in article.paragraphs] == [text]


def test_title_prefers_quoted_event_name() -> None:
    article = parse_text("t.txt", 'The forum on "Cooperatives and the Care Economy in Asia" met in Hanoi. It went well.')
    assert article.title == "Cooperatives and the Care Economy in Asia"


def test_long_first_sentence_title_is_shortened() -> None:
    sentence = "Delegates " + "from many countries " * 20 + "met."
    article = parse_text("t.txt", sentence)
    assert article.title.endswith("…")
    assert len(article.title) <= 121


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n\t", "\u00a0\n \u00a0\n", "\ufeff", "...\n\n***"])
def test_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(CorpusError, match=r"empty\.txt: no paragraphs found"):
        parse_text("empty.txt", text)


def test_binary_is_an_error() -> None:
    with pytest.raises(CorpusError, match=r"image\.txt: looks like a binary file"):
        parse_bytes("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")


def test_non_utf8_is_an_error() -> None:
    with pytest.raises(CorpusError, match=r"latin\.txt: not valid UTF-8 \(byte 10\); save the file as UTF-8"):
        parse_bytes("latin.txt", "Title\n\nCaf\u00e9 prices rose.".encode("latin-1"))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"gone\.txt: cannot read the file"):
        parse_file(tmp_path / "gone.txt")


def test_oversized_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("Title\n\n" + "word " * 100, encoding="utf-8")
    with pytest.raises(CorpusError, match="larger than 100 bytes"):
        parse_file(path, max_bytes=100)
    assert parse_file(path, max_bytes=10_000).paragraphs


# --- property: any text either fails cleanly or parses into well-formed paragraphs ---------

_PIECES = st.sampled_from(
    [
        *"aZ9 .:;|#-*•\n\r\t\u00a0\ufeff\u2028\x0c\x85é",
        *["News | 01 April 2022", "You are here", "Share", "---", "title: T", "March 3, 2021", "Ms.", "\r\n", "\n\n"],
    ]
)


@hyp_settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(_PIECES, max_size=60).map("".join)))
def test_parse_text_property(text: str) -> None:
    try:
        article = parse_text("prop.txt", text)
    except CorpusError as exc:
        assert "prop.txt" in str(exc)
        return
    assert_well_formed(article, text)
    assert article.date is None or len(article.date) == 10
    assert parse_text("prop.txt", text) == article
