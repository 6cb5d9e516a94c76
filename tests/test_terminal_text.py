"""User and pool text reaches the terminal as text: control and ANSI escape characters are shown, not run."""

from __future__ import annotations

from typer.testing import CliRunner

import cli
from reelgraph.terminal_text import visible

HOSTILE = "a dog\x1b[2J\x1b]8;;http://x\x07runs\r\x08 [bold]fast[/bold]\x9b31m"


def test_visible_writes_every_control_character_as_an_escape():
    shown = visible(HOSTILE + "".join(map(chr, range(32))))
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\\x1b[2J" in shown and "\\r" not in shown and "\\x0d" in shown


def test_units_and_errors_print_no_control_characters(tmp_path):
    done = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "units", HOSTILE])
    assert done.exit_code == 0, done.output
    assert "\x1b" not in done.output and "\r" not in done.output and "\\x1b[2J" in done.output
    assert "[bold]fast[/bold]" in done.output  # markup in the text is shown, not applied
    missing = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "storyboard", f"/nope/{HOSTILE}.txt"])
    assert missing.exit_code == 1 and "\x1b" not in missing.output and "\\x1b" in missing.output


def test_index_output_shows_a_hostile_pool_name_and_path_as_text(tmp_path):
    folder = tmp_path / "\x1b[31mred"
    folder.mkdir()
    (folder / "c.csv").write_text("videoid,name\nv0,a red ball rolls to the right\n")
    pool = "p\x1b]0;owned\x07[bold]x"
    home = ["--home", str(tmp_path / "h")]
    added = CliRunner().invoke(
        cli.app, [*home, "index", "add", "--csv", str(folder / "c.csv"), "--pool", pool]
    )
    stats = CliRunner().invoke(cli.app, [*home, "index", "stats"])
    for done in (added, stats):
        assert done.exit_code == 0, done.output
        assert "\x1b" not in done.output and "\x07" not in done.output and "[bold]x" in done.output
