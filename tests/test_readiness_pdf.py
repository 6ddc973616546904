"""The SME's PDF report: its figures, its radar drawn with the PDF's own lines, and every
language written by `shopfloor assess --pdf` and read back with poppler's pdftotext."""

from __future__ import annotations

import contextlib
import re
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard import lean_readiness
from launcher.cli import app
from readiness.answers import load_answers
from readiness.assessment import run_assessment
from readiness.indicator_file import load_indicators
from readiness.pdf import SERIES_COLOURS, report_pdf
from readiness.persistence import ReadinessStore
from readiness.report import Result
from shopfloor import i18n
from shopfloor.i18n import LANGUAGES, SOURCE_LANGUAGE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "readiness"
SME_A = "SME-A (injection moulding, worked example)"
POLIMER = "Polimer Moulding (demo SME)"

# The report's own headings and lines; none may show in English in another language.
HEADINGS = (
    "Lean 4.0 readiness: {sme}",
    "Profile (scores 0 to 5)",
    "Dimensions",
    "Measured indicators",
    "Recommendations",
    "binding gate",
)
ENGLISH_HEADINGS = ("Lean 4.0 readiness", "Profile", "Dimensions", "Measured indicators",
                    "Recommendations", "Readiness index", "Archetype", "assessed")  # fmt: skip
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
SERBIAN_LATIN_LETTERS = set("čćšžđČĆŠŽĐ")
# Words that read the same in a translation: the method's name, lean terms that Serbian Latin
# writes as English does (docs/glossary.md), and words Serbian shares with English.
SAME_IN_EVERY_LANGUAGE = {"Lean", "gemba", "kaizen", "kanban", "tablet"}


@pytest.fixture
def sme_a(tmp_path: Path) -> Iterator[Result]:
    """SME-A's snapshot with its indicators, as the readiness database gives it back."""
    with ReadinessStore(tmp_path / "readiness.db") as store:
        answers = load_answers(EXAMPLES / "sme-a.yaml")
        yield store.save(
            run_assessment(answers, load_indicators(EXAMPLES / "sme-a-indicators.yaml"))
        ).result


def pdftotext(document: bytes, *layout: str) -> str:
    """The text a reader copies out of the PDF (poppler's pdftotext, in reading order)."""
    done = subprocess.run(
        ["pdftotext", *layout, "-enc", "UTF-8", "-", "-"],
        input=document, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.decode()


def flat(text: str) -> str:
    """The text with every run of white space one space: lines wrap differently per language."""
    return " ".join(text.split())


def content(document: bytes) -> str:
    """The drawing operators of every compressed stream (the pages'; the embedded font's and
    its character map's read as noise and match no operator)."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", document, re.S)
    texts = []
    for stream in streams:
        with contextlib.suppress(zlib.error):  # a stream stored uncompressed
            texts.append(zlib.decompress(stream).decode("latin-1"))
    return "".join(texts)


def test_pdf_holds_the_smes_results(sme_a: Result) -> None:
    text = flat(pdftotext(report_pdf(sme_a, lang=SOURCE_LANGUAGE)))
    for expected in (
        f"Lean 4.0 readiness: {SME_A}",
        "Readiness index R = 2.675, level 2 Basic/connected",
        "Tech-led",
        "D5 Maintenance & problem solving",
        "G3: needs RC >= 0.60",
        "RC 34% -> 0.6 (G3)",
        "2.780 (+0.105)",  # R after the top recommendation, and its gain
    ):
        assert expected in text


def assert_valid_pdf(document: bytes) -> None:
    """Header, end marker, and a cross-reference table whose every offset opens its object."""
    assert document.startswith(b"%PDF-1.") and document.rstrip().endswith(b"%%EOF")
    start = int(re.findall(rb"startxref\s+(\d+)", document)[-1])
    table = re.match(rb"xref\s+0 (\d+)", document[start:])
    assert table, "no cross-reference table where startxref points"
    offsets = re.findall(rb"(\d{10}) 00000 n", document[start:])
    assert len(offsets) == int(table.group(1)) - 1  # object 0 is the free list's head
    for number, offset in enumerate(offsets, 1):
        assert document[int(offset) :].startswith(f"{number} 0 obj".encode())


def stroke(hex_colour: str) -> str:
    """The PDF operator that sets a stroke colour, as fpdf2 writes it."""
    rgb = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return " ".join(f"{c:.4f}".rstrip("0") for c in rgb) + " RG"


def drawn_in(text: str, hex_colour: str) -> str:
    """The first graphics block stroked in the colour: a radar series (the legend follows)."""
    found = re.search(rf"q\n[^Q]*?{stroke(hex_colour)}\n(.*?)\nQ", text, re.S)
    assert found, hex_colour
    return found.group(1)


def test_pdf_draws_the_radar_with_its_own_lines(sme_a: Result) -> None:
    """Four series over rings 1-5 with labels and a legend, as vector lines: no image."""
    document = report_pdf(sme_a, lang=SOURCE_LANGUAGE)
    assert_valid_pdf(document)
    assert b"/Subtype /Image" not in document
    drawing = content(document)
    segment = r"[\d.]+ [\d.]+ m [\d.]+ [\d.]+ l S"
    series = {name: drawn_in(drawing, colour) for name, colour in SERIES_COLOURS.items()}
    # a closed outline per series; evidence skips D1 and D7 (no indicators): 4 segments, 5 dots
    assert {n: len(re.findall(segment, s)) for n, s in series.items()} == {
        "questionnaire": 7, "evidence": 4, "final": 7, "target": 7,
    }  # fmt: skip
    assert [s.count(" c f") for s in series.values()] == [7, 5, 7, 7]  # filled dots
    assert " d\n" in series["target"] and " d\n" not in series["final"]  # target dashed
    rings = re.findall(r" m\n(?:[\d.]+ [\d.]+ l\n){6} h\n S", drawing)  # closed heptagons
    assert len(rings) == 5
    text = pdftotext(document)
    radar = flat(text[text.index("Profile") : text.index("Dimensions")])
    assert all(str(ring) in radar.split() for ring in range(1, 6))
    assert "D5 Maintenance & problem solving" in radar  # a long name wraps onto two lines
    words = " ".join(w for w in radar.split() if not w.isdigit())  # the rings' scores out
    assert "questionnaire evidence final target" in words  # the legend, beside the rings


def test_the_radar_has_the_dashboards_colours() -> None:
    assert SERIES_COLOURS == lean_readiness.SERIES_COLOURS


def test_a_pdf_uses_the_shipped_unicode_font(sme_a: Result) -> None:
    """DejaVu Sans from the package, embedded as a subset; no core font (Latin-1 only)."""
    document = report_pdf(sme_a, lang="ru")
    fonts = set(re.findall(rb"/BaseFont /(\S+)", document))
    assert fonts and all(b"DejaVu" in f for f in fonts), fonts
    assert b"/FontFile2" in document
    assert len(document) < 200_000  # a subset, not the 1.5 MB of the two fonts


# --- every language through the command --------------------------------------------------------


def assess_pdf(tmp_path: Path, *args: str) -> str:
    """`shopfloor assess ... --pdf FILE`, and the text of the PDF it wrote."""
    pdf = tmp_path / "report.pdf"
    result = CliRunner().invoke(app, ["assess", *args, "--no-save", "--pdf", str(pdf)])
    assert result.exit_code == 0, result.output
    return pdftotext(pdf.read_bytes())


def sme_a_pdf(tmp_path: Path, lang: str, caplog: pytest.LogCaptureFixture) -> str:
    """SME-A's report in the language, with every letter in the font: fpdf2 warns of a glyph
    the font lacks (and draws an empty box), and no replacement character stands for one."""
    caplog.clear()
    text = assess_pdf(
        tmp_path, str(EXAMPLES / "sme-a.yaml"),
        "--indicators", str(EXAMPLES / "sme-a-indicators.yaml"), "--lang", lang,
    )  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("fpdf")]
    assert not [w for w in warnings if "missing" in w], warnings
    assert "\ufffd" not in text
    return text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_report_speaks_each_language(
    lang: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The report's headings in the language and its script, every letter in the font, and the
    SME's name as the answers give it."""
    text = sme_a_pdf(tmp_path, lang, caplog)
    _ = i18n.translations(lang).gettext
    assert SME_A in flat(text)
    for heading in HEADINGS:
        assert flat(_(heading).format(sme=SME_A)) in flat(text), heading
    if lang == SOURCE_LANGUAGE:
        assert all(heading in flat(text) for heading in ENGLISH_HEADINGS)
        return
    for heading in ENGLISH_HEADINGS:
        assert heading not in text, heading
    if lang == "sr-Latn":
        assert not CYRILLIC.search(text)
        assert SERBIAN_LATIN_LETTERS & set(text)
    else:
        assert len(CYRILLIC.findall(text)) > 200  # the report, not a word or two


def english_words(text: str) -> set[str]:
    """Words of four letters or more with a lowercase Latin letter (not codes such as SMED)."""
    return set(re.findall(r"\b(?=[A-Za-z]*[a-z])[A-Za-z]{4,}\b", text))


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != SOURCE_LANGUAGE])
def test_no_english_is_left_in_a_translated_report(
    lang: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every text of the report is translated: dimension names, levels, archetypes, flags,
    indicators, recommendations and the radar's legend, not only the headings."""
    english = english_words(sme_a_pdf(tmp_path, SOURCE_LANGUAGE, caplog))
    kept = english_words(SME_A) | SAME_IN_EVERY_LANGUAGE
    left = (english - kept) & english_words(sme_a_pdf(tmp_path, lang, caplog))
    assert not left, sorted(left)


def test_the_report_of_answers_alone(tmp_path: Path) -> None:
    text = assess_pdf(
        tmp_path, str(EXAMPLES / "moulding.yaml"), "--questionnaire-only", "--lang", "sr-Cyrl"
    )
    line = i18n.translations("sr-Cyrl").gettext(
        "SME {sme}, assessed {date} {time} UTC from the answers alone (questionnaire v{version})"
    )
    assert CYRILLIC.search(line) and flat(line.split("{sme}")[0]) in flat(text)
    assert POLIMER in flat(text)


def test_the_report_from_the_live_store_in_the_plants_language(tmp_path: Path) -> None:
    """Evidence measured from the store (empty here: nothing measured), and no --lang: the
    plant file's site.language."""
    plant = (ROOT / "examples" / "plant.yaml").read_text()
    plant_file = tmp_path / "plant.yaml"
    plant_file.write_text(plant.replace("# language: ru ", "language: ru   "))
    text = assess_pdf(
        tmp_path, str(EXAMPLES / "moulding.yaml"),
        "--store-url", f"sqlite:{tmp_path / 'store.db'}", "--plant", str(plant_file),
    )  # fmt: skip
    heading = i18n.translations("ru").gettext("Measured indicators")
    assert CYRILLIC.search(heading) and heading in flat(text)
    assert POLIMER in flat(text)


def test_an_unknown_language_is_refused_naming_the_supported_ones(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    result = CliRunner().invoke(
        app, ["assess", str(EXAMPLES / "sme-a.yaml"), "--questionnaire-only", "--no-save",
              "--pdf", str(pdf), "--lang", "de"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--lang: unknown language 'de'" in result.stderr
    assert all(code in result.stderr for code in LANGUAGES)
    assert not pdf.exists()


def test_an_unwritable_pdf_is_one_line_of_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["assess", str(EXAMPLES / "sme-a.yaml"), "--questionnaire-only", "--no-save",
              "--pdf", str(tmp_path / "missing" / "report.pdf")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --pdf: cannot write")
