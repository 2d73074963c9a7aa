"""Student-controlled text made inert: the one sanitiser every page, CSV, message and diagnosis uses."""
from __future__ import annotations

from autograder.student_text import plain_text, strip_ansi

RED_ERROR = "\x1b[0;31mValueError\x1b[0m"
LINK = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"


def test_terminal_codes_go_colours_and_hyperlinks_alike():
    assert strip_ansi(RED_ERROR) == "ValueError"
    assert strip_ansi(LINK) == "click"  # the OSC hyperlink, target included


def test_kept_as_lines_control_characters_go_and_a_cut_is_marked():
    assert plain_text(f"{RED_ERROR}:\tbad\nline two\x00\x07\r") == "ValueError:\tbad\nline two"
    assert plain_text(None) == ""
    assert plain_text(12.5) == "12.5"
    # 10 characters cut at 4: the first 4, then the mark.
    assert plain_text("abcdefghij", 4) == "abcd … [truncated]"
    assert plain_text("x" * 2000) == "x" * 2000 and plain_text("x" * 2001).endswith(" … [truncated]")


def test_one_line_every_control_or_format_character_is_a_space_and_a_cut_fits_the_limit():
    # "\n", "\t" and the zero-width space (a format character, Cf) become spaces; runs collapse.
    assert plain_text(f"{RED_ERROR}:\n\tbad\u200bvalue  here", 100, one_line=True) == "ValueError: bad value here"
    # "one two three" (13) within 8: 7 characters "one two", then the ellipsis: 8 in all.
    assert plain_text("one two three", 8, one_line=True) == "one two…"
    assert plain_text("one two three", 13, one_line=True) == "one two three"
