"""Issue 16 point 5: every trace error names file, line and column, the line counted as a text
editor counts it; a file that is not text is named as such; a trace with no rows is an error.

Regressions: an over-long CSV field was reported one line too far, a record spanning lines by
its last line, a 5,000-digit cell gave Python's digit-limit message without file or line, 10^20
an OverflowError, a binary scenario file's error did not name the file, a header-only trace ran.
"""

import gzip

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.config import load_scenario
from llmqueue.errors import ScenarioError, TraceError
from llmqueue.workload import read_column, read_trace
from llmqueue.workload.textfile import parse_count, position, text_lines

HEAD = "arrival_time,prompt_tokens,decode_tokens"


def _err(tmp_path, data, reader=read_trace, name="t.csv") -> TraceError:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    with pytest.raises(TraceError) as e:
        reader(p)
    assert str(e.value).startswith(f"{p}:")
    return e.value


@pytest.mark.parametrize("text,line,column", [
    (f"{HEAD}\n0,1,1\n\n\n1,x,1\n", 5, 2),                               # blank lines count
    (f"{HEAD}\r\n0,1,1\r\n\r\n1,2,x\r\n", 4, 3),                         # CRLF counts once
    (f"{HEAD}\r0,1,1\r1,x,1\r", 3, 2),                                  # a lone CR ends a line
    (f"{HEAD},label\n0,1,1,\"a\nb\nc\"\n1,x,1,d\n", 5, 2),               # a quoted field spans 3 lines
    ("arrival_time,label,prompt_tokens,decode_tokens\n0,\"a\nb\nc\",x,1\n", 4, 3),  # field after it
    (f"{HEAD}\n0,1,1\n0.5,1\n", 3, 3),                                  # missing field
    (f"{HEAD}\n2,1,1\n\n1,1,1\n", 4, 1),                                # unsorted
    (f"{HEAD}\n0,1,1\nnan,1,1\n", 3, 1),
    (f"{HEAD}\n0,0,0\n", 2, 3),
])
def test_line_and_column_as_an_editor_counts_them(tmp_path, text, line, column):
    e = _err(tmp_path, text)
    assert (e.line, e.column) == (line, column), str(e)


def test_an_over_long_field_is_reported_on_its_own_line(tmp_path):
    e = _err(tmp_path, f"{HEAD}\n0,1,1\n\n1,\"{'x' * 200_000}\",1\n2,3,4\n")
    assert e.line == 4 and "field larger than field limit" in str(e)


@pytest.mark.parametrize("cell,needle", [("9" * 5000, "a number of 5000 digits"),
                                         ("100000000000000000000", "100000000000000000000, above the limit")])
def test_huge_cells_are_one_clear_message(tmp_path, cell, needle):
    e = _err(tmp_path, f"{HEAD}\n0,1,1\n1,{cell},1\n")
    assert (e.line, e.column, e.column_name) == (3, 2, "prompt_tokens") and needle in str(e)
    assert "set_int_max_str_digits" not in str(e)
    e = _err(tmp_path, f"1\n{cell}\n", read_column)
    assert e.line == 2 and needle in str(e)


def test_header_only_and_empty_files_are_errors(tmp_path):
    assert "no requests" in str(_err(tmp_path, HEAD + "\n")) and _err(tmp_path, HEAD + "\n").line == 1
    assert "empty file" in str(_err(tmp_path, ""))
    assert "empty file" in str(_err(tmp_path, "\n\n"))


@pytest.mark.parametrize("data,needle,line", [
    (gzip.compress(f"{HEAD}\n0,1,1\n".encode()), "gzip", 1),
    (b"PAR1\x00\x01", "Parquet", 1),
    (f"{HEAD}\n0,1,1\n".encode() + b"\x00\x01\x02", "NUL byte", 3),
    (f"{HEAD},label\n0,1,1,a\n\n1,1,1,caf".encode() + b"\xe9\n", "byte 0xe9", 4),
])
def test_a_file_that_is_not_text_is_named(tmp_path, data, needle, line):
    e = _err(tmp_path, data)
    assert "not a" in str(e) and needle in str(e) and e.line == line
    e2 = _err(tmp_path, data, read_column)
    assert needle in str(e2)


def test_the_cli_prints_one_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(f"{HEAD}\r\n0,1,1\r\n\r\n1,{'9' * 5000},1\r\n")
    r = CliRunner().invoke(app, ["simulate", "--trace", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"{p}:4:2(prompt_tokens):" in "".join(r.output.split()), r.output   # wrapping aside


@pytest.mark.parametrize("data,needle", [
    (gzip.compress(b"name: x\n"), ":1:1: not a text file: this looks like a gzip"),
    (b"seed: 1\n\x00\x00", ":2:1: not a text file"),
    (b"seed: 1\nname: caf\xe9\n", ":2:10: not a UTF-8 text file"),
])
def test_a_binary_scenario_file_is_named(tmp_path, data, needle):
    p = tmp_path / "s.yaml"
    p.write_bytes(data)
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert str(e.value).startswith(f"{p}:") and needle in str(e.value)


def test_helpers_for_other_readers(tmp_path):
    assert position(b"ab\r\ncd\ref\ngh", 11) == (4, 2)
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a": 1}\r\n\r\n{"b": 2}\n')
    assert list(text_lines(p)) == [(1, '{"a": 1}'), (2, ""), (3, '{"b": 2}')]
    assert parse_count("12") == 12
    assert "above the limit" in parse_count("1" * 40) and "non-negative" in parse_count("-1")
