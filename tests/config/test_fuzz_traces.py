"""Fuzzing the trace loaders (issue 13 point 11, issue 16 point 5): any file gives requests or one
TraceError naming the file and a line that exists (counted as an editor counts it), never
another exception type; and through a scenario, one ScenarioError/TraceError line.

Rows mix valid cells with wrong types, NaN/inf, negative, zero, huge and 5,000-digit numbers,
missing and extra fields, quotes with line breaks, unsorted times, blank lines and CRLF/CR line
ends; files also come as random bytes and as both known headers.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmqueue.config import scenario_from_data
from llmqueue.errors import LLMQueueError, TraceError
from llmqueue.workload import read_column, read_trace_arrays

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HEADERS = ["arrival_time,prompt_tokens,decode_tokens", "arrival_time,prompt_tokens,decode_tokens,class,label",
           "arrival_time,prompt_tokens,decode_tokens,prefix_id,prefix_tokens",
           "TIMESTAMP,ContextTokens,GeneratedTokens", "a,b,c", ""]
CELLS = st.one_of(
    st.sampled_from(["0", "1", "17", "0.5", "1e3", "-1", "-0.0", "nan", "inf", "-inf", "", " ", "x", "1_000",
                     "100000000000000000000", "9" * 5000, "\"a\nb\"", "\"q\"\"\"", "2023-11-16 18:17:03.9799600",
                     "2023-13-40 25:00:00", "١٢", "\x00", "1.5e400"]),
    st.integers(-5, 10**6).map(str), st.floats(allow_nan=True).map(repr), st.text(max_size=6))
ROW = st.lists(CELLS, min_size=0, max_size=6).map(",".join)
ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_files(draw) -> bytes:
    end = draw(ENDS)
    lines = [draw(st.sampled_from(HEADERS))] + draw(st.lists(ROW, max_size=8))
    return end.join(lines).encode("utf-8", errors="surrogatepass") + draw(st.sampled_from([b"", end.encode()]))


def _lines(raw: bytes) -> int:
    return 1 + raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")


def _check(p, raw, reader):
    try:
        reader(p)
    except TraceError as e:
        assert str(e).startswith(f"{p}:{e.line}"), str(e)
        assert 1 <= e.line <= _lines(raw), (e.line, _lines(raw), str(e))
        assert "\n" not in str(e).split(": ", 1)[0]


@FUZZ
@given(st.one_of(csv_files(), st.binary(max_size=300)))
def test_trace_files(tmp_path_factory, raw):
    p = tmp_path_factory.mktemp("tr") / "t.csv"
    p.write_bytes(raw)
    _check(p, raw, read_trace_arrays)


@FUZZ
@given(st.one_of(st.lists(CELLS, max_size=8).map("\n".join).map(str.encode), st.binary(max_size=200)))
def test_length_files(tmp_path_factory, raw):
    p = tmp_path_factory.mktemp("col") / "lengths.txt"
    p.write_bytes(raw)
    _check(p, raw, read_column)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_files())
def test_traces_through_a_scenario(tmp_path_factory, raw):
    d = tmp_path_factory.mktemp("sc")
    (d / "t.csv").write_bytes(raw)
    data = {"engine": {"token_budget": 64, "class_priority": ["default"]}, "workload": {"trace": "t.csv"}}
    try:
        sc = scenario_from_data(data, source=str(d / "s.yaml"), base=d)
        sc.single_engine()
    except LLMQueueError as e:
        assert str(e).startswith(str(d)), str(e)
