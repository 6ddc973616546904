"""`make bench`'s report: the README's performance block is what the run printed."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from bench.__main__ import BEGIN, END, _Tee, report, write_readme


def test_the_block_between_the_markers_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{BEGIN}\nold figures\n{END}\n\n## After\n", encoding="utf-8")
    write_readme(readme, report("kernel  42 %", ["kernels"], ["capacity"]))
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\n" + BEGIN) and text.endswith(END + "\n\n## After\n")
    assert "old figures" not in text and "```text\nkernel  42 %\n```" in text
    assert "Printed by `python -m bench --skip capacity` (kernels), host: " in text


def test_a_readme_without_the_block_is_refused_by_name(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=f"README.md: no {BEGIN}"):
        write_readme(readme, report("", [], []))


def test_rich_tables_are_kept_as_plain_text() -> None:
    shown = io.StringIO()
    tee = _Tee(shown)
    with contextlib.redirect_stdout(tee):
        table = Table("kernel", "share")
        table.add_row("z-score", "42 %")
        Console().print(table)
    assert "z-score" in tee.kept.getvalue() and "\x1b[" not in tee.kept.getvalue()
    assert shown.getvalue() == tee.kept.getvalue()
