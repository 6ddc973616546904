"""The SME's readiness report as a PDF, in the reader's language: overall figures, the radar,
the dimension table, the measured indicators and the recommendations.

The text is set in DejaVu Sans, shipped in `fonts/` with its licence: a Unicode font with Latin,
Cyrillic and the Serbian Latin letters, where the PDF's core fonts know Latin-1 only. fpdf2
embeds the subset of glyphs a report uses. The radar is drawn with the PDF's own lines, so no
image renderer is needed; the dashboard offers this report for download, `shopfloor assess
--pdf` writes it.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

from readiness.questionnaire import MAX_SCORE
from readiness.report import (
    Result,
    dimension_rows,
    flag_lines,
    indicator_cards,
    radar_series,
    recommendation_rows,
)
from shopfloor import i18n
from shopfloor.i18n import N_, date_text, number_text, time_text

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

# The radar's series by their ids (radar_series' keys), coloured as on the dashboard's radar,
# and their names in the legend.
SERIES_COLOURS = {
    "questionnaire": "#9aa5b1",
    "evidence": "#2b8cbe",
    "final": "#d95f0e",
    "target": "#31a354",
}
SERIES_NAMES = {
    "questionnaire": N_("questionnaire"),
    "evidence": N_("evidence"),
    "final": N_("final"),
    "target": N_("target"),
}
DASHED_SERIES = "target"
NO_VALUE = "-"

MODES = {
    "evidence": N_(
        "SME {sme}, assessed {date} {time} UTC from the answers and the measured evidence "
        "(questionnaire v{version})"
    ),
    "questionnaire-only": N_(
        "SME {sme}, assessed {date} {time} UTC from the answers alone (questionnaire v{version})"
    ),
}


def _number(value: float | None, lang: str, digits: int = 2) -> str:
    return NO_VALUE if value is None else number_text(value, lang, digits)


def _target(value: float, lang: str) -> str:
    """A target as it is set: 3 or 3,5."""
    return number_text(value, lang, 0 if float(value).is_integer() else 1)


def _signed(value: float, lang: str, digits: int) -> str:
    """A change with its sign: +0.105."""
    text = number_text(value, lang, digits)
    return text if text.startswith(("-", "\N{MINUS SIGN}")) else f"+{text}"


def _fitted(pdf: FPDF, header: Sequence[str], widths: Sequence[float]) -> tuple[float, ...]:
    """Column widths in mm across the page, each wide enough for the longest word of its heading
    (a word of a column heading never breaks: "уровень", not "уров-ень"); the widest column
    gives up what the others need."""
    with pdf.local_context(font_style="B"):
        needed = [
            max(pdf.get_string_width(word) for word in heading.split()) + 2 * pdf.c_margin + 0.5
            for heading in header
        ]
    scale = pdf.epw / sum(widths)
    fitted = [max(width * scale, need) for width, need in zip(widths, needed, strict=True)]
    widest = fitted.index(max(fitted))
    fitted[widest] -= sum(fitted) - pdf.epw
    return tuple(fitted)


TABLE_LINE_HEIGHT = 1.5  # lines of a table's cell, in font sizes (fpdf2's default is 2)


def _table(
    pdf: FPDF, header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float]
) -> None:
    """A table over the page's width, `widths` in proportion, its header in bold."""
    pdf.set_font(FONT, size=8)
    with pdf.table(
        col_widths=_fitted(pdf, header, widths),
        first_row_as_headings=True,
        text_align="LEFT",
        line_height=TABLE_LINE_HEIGHT * pdf.font_size,
    ) as table:
        for values in [header, *rows]:
            row = table.row()
            for value in values:
                row.cell(str(value))
    pdf.ln(4)


HEADING_KEPT_WITH = 25.0  # mm below a heading that must fit on its page, or it starts the next


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(HEADING_KEPT_WITH):
        pdf.add_page()
    pdf.set_font(FONT, "B", 12)
    pdf.cell(text=text, new_x="LMARGIN", new_y="NEXT")


# --- the radar ------------------------------------------------------------------------------

RADAR_RADIUS = 30.0  # mm from the centre to the ring of score 5
RADAR_HEIGHT = 2 * RADAR_RADIUS + 24.0  # with the dimension labels above and below
RADAR_CENTRE_X = 80.0  # leaves room for the longest labels on the left and the legend
RADAR_LABEL_CHARS = 24  # per line of a dimension's label: longer names wrap
RADAR_LABEL_LINE = 2.8  # mm between the lines of a label (7 pt)
LEGEND_X = 150.0
XY = tuple[float, float]  # mm on the page


def _closed(values: Sequence[XY | None]) -> list[XY | None]:
    """The points with the first repeated, to close a radar's outline."""
    return [*values, values[0]]


def _radar_point(centre: XY, axis: int, axes: int, score: float) -> XY:
    """Axis 0 at the top, counter-clockwise, as plotly draws the page's radar."""
    angle = math.pi / 2 + 2 * math.pi * axis / axes
    radius = RADAR_RADIUS * score / MAX_SCORE
    return centre[0] + radius * math.cos(angle), centre[1] - radius * math.sin(angle)


def _radar_label(pdf: FPDF, centre: XY, axis: int, axes: int, label: str) -> None:
    """A dimension's name beyond its spoke, aligned away from the chart, on as many lines as it
    needs: above the chart the lines stack upwards, beside it they centre on the spoke."""
    x, y = _radar_point(centre, axis, axes, MAX_SCORE * 1.1)
    lines = textwrap.wrap(label, RADAR_LABEL_CHARS) or [label]
    if abs(x - centre[0]) < 1:
        first = y + 1 - RADAR_LABEL_LINE * (len(lines) - 1)  # the last line's baseline at y
    else:
        first = y + 1 - RADAR_LABEL_LINE * (len(lines) - 1) / 2
    for number, line in enumerate(lines):
        width = pdf.get_string_width(line)
        left = x
        if abs(x - centre[0]) < 1:
            left -= width / 2
        elif x < centre[0]:
            left -= width
        pdf.text(left, first + RADAR_LABEL_LINE * number, line)


def _radar_grid(pdf: FPDF, centre: XY, labels: Sequence[str], lang: str) -> None:
    """The rings of scores 1 to 5, the spokes and the dimension labels."""
    axes = len(labels)
    with pdf.local_context(draw_color="#bdbdbd", line_width=0.2, font_style="", font_size_pt=7):
        for ring in range(1, MAX_SCORE + 1):
            pdf.polygon([_radar_point(centre, a, axes, ring) for a in range(axes)])
            x, y = _radar_point(centre, 0, axes, ring)
            pdf.text(x + 0.8, y + 2.2, number_text(ring, lang, 0))
        for axis, label in enumerate(labels):
            pdf.line(*centre, *_radar_point(centre, axis, axes, MAX_SCORE))
            _radar_label(pdf, centre, axis, axes, label)


@contextmanager
def _series_pen(pdf: FPDF, series: str) -> Iterator[None]:
    """Draw in the series' colour, as on the page's radar (the target dashed)."""
    colour = SERIES_COLOURS[series]
    with pdf.local_context(draw_color=colour, fill_color=colour, line_width=0.5):
        if series == DASHED_SERIES:
            pdf.set_dash_pattern(dash=1.5, gap=1.0)
        yield


def _radar_series(pdf: FPDF, centre: XY, series: str, values: Sequence[float | None]) -> None:
    """One series as a closed outline with a dot per score; a gap (no evidence) breaks it."""
    points = [
        None if v is None else _radar_point(centre, axis, len(values), v)
        for axis, v in enumerate(values)
    ]
    with _series_pen(pdf, series):
        for start, end in zip(points, _closed(points)[1:], strict=True):
            if start and end:
                pdf.line(*start, *end)
        for point in filter(None, points):
            pdf.circle(*point, 0.7, style="F")


def _radar_legend(pdf: FPDF, top: float, names: dict[str, str]) -> None:
    """A line in each series' pen and its name in the reader's language."""
    with pdf.local_context(font_style="", font_size_pt=8):
        for row, (series, name) in enumerate(names.items()):
            y = top + 6 * row
            with _series_pen(pdf, series):
                pdf.line(LEGEND_X, y, LEGEND_X + 8, y)
            pdf.text(LEGEND_X + 10, y + 1, name)


def _radar(pdf: FPDF, result: Result, lang: str, _: Callable[[str], str]) -> None:
    """The radar of the page drawn with the PDF's own lines."""
    if pdf.will_page_break(RADAR_HEIGHT):
        pdf.add_page()
    top = pdf.get_y()
    centre = (RADAR_CENTRE_X, top + RADAR_HEIGHT / 2)
    series = radar_series(result, lang=lang)
    _radar_grid(pdf, centre, [r.label for r in dimension_rows(result, lang=lang)], lang)
    for name, values in series.items():
        _radar_series(pdf, centre, name, values)
    names = {name: _(SERIES_NAMES[name]) for name in series}
    _radar_legend(pdf, top + RADAR_HEIGHT / 3, names)
    pdf.set_y(top + RADAR_HEIGHT)


# --- the report -----------------------------------------------------------------------------


def _document() -> FPDF:
    pdf = FPDF(format="A4")
    for style, file in FONT_FILES.items():
        pdf.add_font(FONT, style, FONTS / file)
    return pdf


def _overview(result: Result, lang: str, _: Callable[[str], str]) -> list[str]:
    """The lines under the title: when and how the SME was assessed, R, level, archetype, and
    the claim flags."""
    taken = datetime.fromisoformat(result["taken_at"])
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=UTC)
    archetype = result["archetype"]
    figures = {
        "name": _(archetype["name"]),
        "lean": number_text(archetype["lean_index"], lang, 2),
        "digital": number_text(archetype["digital_index"], lang, 2),
    }
    if archetype["warning"]:
        kind = _("Archetype: {name} (lean {lean}, digital {digital}) {warning}").format(
            warning=_(archetype["warning"]), **figures
        )
    else:
        kind = _("Archetype: {name} (lean {lean}, digital {digital})").format(**figures)
    return [
        _(MODES.get(result["mode"], MODES["evidence"])).format(
            sme=result["sme"],
            date=date_text(taken.astimezone(UTC), lang),
            time=time_text(taken, lang, UTC),
            version=result["questionnaire_version"],
        ),
        _("Readiness index R = {index}, level {level} {level_name}").format(
            index=number_text(result["index"], lang, 3),
            level=result["level"],
            level_name=_(result["level_name"]),
        ),
        kind,
        *(_("Flag {flag}").format(flag=line) for line in flag_lines(result, lang=lang)),
    ]


def report_pdf(result: Result, *, lang: str) -> bytes:
    """The SME's report in the language `lang` (a code of shopfloor.i18n.LANGUAGES)."""
    _ = i18n.translations(lang).gettext
    who = result["name"] or result["sme"]
    title = _("Lean 4.0 readiness: {sme}").format(sme=who)
    pdf = _document()
    pdf.set_lang(lang)
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font(FONT, "B", 16)
    pdf.multi_cell(0, 8, title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=10)
    for line in _overview(result, lang, _):
        pdf.multi_cell(0, 6, line, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _heading(pdf, _("Profile (scores 0 to 5)"))
    _radar(pdf, result, lang, _)
    _heading(pdf, _("Dimensions"))
    _table(
        pdf,
        # Q, E, S and F are the method's symbols: questionnaire, evidence, combined, final
        (_("dimension"), "Q", "E", "S", _("cap"), "F", _("level"), _("target"),
         _("binding gate")),
        [
            (r.label, _number(r.questionnaire, lang), _number(r.evidence, lang),
             _number(r.combined, lang), r.cap, _number(r.final, lang), r.level,
             _target(r.target, lang), r.binding)
            for r in dimension_rows(result, lang=lang)
        ],
        (52, 8, 8, 8, 8, 8, 8, 10, 42),
    )  # fmt: skip
    _heading(pdf, _("Measured indicators"))
    _table(
        pdf,
        (_("indicator"), _("value"), _("score")),
        [
            (f"{c.name} {c.description}", c.text, NO_VALUE if c.score is None else c.score)
            for c in indicator_cards([result], lang=lang)
        ],
        (60, 40, 12),
    )
    _heading(pdf, _("Recommendations"))
    _table(
        pdf,
        (_("rank"), _("dimension"), _("priority"), _("recommendation"), _("what-if"),
         _("R then")),
        [
            (r.rank, r.dimension, number_text(r.priority, lang, 4), r.advice, r.basis,
             f"{number_text(r.what_if_index, lang, 3)} ({_signed(r.gain, lang, 3)})")
            for r in recommendation_rows(result, lang=lang)
        ],
        (10, 17, 15, 64, 40, 24),
    )  # fmt: skip
    return bytes(pdf.output())
