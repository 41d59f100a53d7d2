"""Trace files: both formats, exact timestamps, exact round trip, and errors that point at the field."""

from __future__ import annotations

import time

import pytest

from llmqueue.engine.request import Request
from llmqueue.workload import GammaArrivals, LogNormal, TraceError, Uniform, Workload, read_trace, write_trace

HEAD = "arrival_time,prompt_tokens,decode_tokens\n"
AZ = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def write(tmp_path, text, name="trace.csv"):
    path = tmp_path / name
    path.write_text(text, newline="")
    return path


def test_our_format_with_optional_columns_any_order(tmp_path):
    path = write(tmp_path, "label,decode_tokens,class,arrival_time,prompt_tokens\n"
                           'A,2,chat,0,0\n"x, y",5,,1.5,7\n\n\n')
    assert read_trace(path) == [Request(0, 0.0, 0, 2, "chat", "A"), Request(1, 1.5, 7, 5, "default", "x, y")]


def test_header_only_is_an_error_and_crlf_is_fine(tmp_path):
    # issue 16 point 5: a trace with no rows is an error (it used to read as an empty workload)
    with pytest.raises(TraceError, match=r"trace\.csv:1: no requests: the file has a header line but no rows"):
        read_trace(write(tmp_path, HEAD))
    assert read_trace(write(tmp_path, HEAD.replace("\n", "\r\n") + "0.25,3,4\r\n")) == [Request(0, 0.25, 3, 4)]


def test_azure_timestamps_are_exact(tmp_path):
    path = write(tmp_path, AZ.replace("\n", "\r\n") + "2023-11-16 18:17:03.9799600,4808,10\r\n"
                 "2023-11-16 18:17:04.0319601,3180,8\r\n2023-11-16 23:59:59.9999999,1,1\r\n"
                 "2023-11-17 00:00:00.0000001,2,0")
    reqs = read_trace(path)
    # float seconds since the epoch (~1.7e9 s, ulp 2.4e-7) could not give these exactly
    assert reqs[1].arrival_time == 0.0520001
    assert reqs[3].arrival_time - reqs[2].arrival_time == pytest.approx(2e-7, abs=1e-9)
    assert reqs[2].arrival_time == 20576.0200399 and reqs[3].arrival_time == 20576.0200401  # across midnight
    assert [r.request_id for r in reqs] == [0, 1, 2, 3] and reqs[0] == Request(0, 0.0, 4808, 10)


def test_azure_columns_in_other_order(tmp_path):
    path = write(tmp_path, "GeneratedTokens,TIMESTAMP,ContextTokens\n5,2023-11-16 18:00:00.5,7\n"
                           "6,2023-11-16 18:00:01,8\n")
    assert read_trace(path) == [Request(0, 0.0, 7, 5), Request(1, 0.5, 8, 6)]


BAD = [
    # (file content, line, column, column name, reason fragment)
    ("", 1, None, None, "empty file"),
    ("\n\n", 1, None, None, "empty file"),
    ("a,b,c\n1,2,3\n", 1, None, None, "unrecognised header"),
    ("arrival_time,prompt_tokens\n1,2\n", 1, None, None, "unrecognised header"),
    ("arrival_time,prompt_tokens,decode_tokens,lable\n", 1, 4, "lable", "unknown column"),
    ("arrival_time,prompt_tokens,decode_tokens,prompt_tokens\n", 1, 4, "prompt_tokens", "duplicate column"),
    (HEAD + "0,1,1\n1,2\n", 3, 3, "decode_tokens", "missing field 'decode_tokens': expected 3 fields, got 2"),
    (HEAD + "0,1,1\n1,2,3,4\n", 3, 4, None, "extra field '4': expected 3 fields, got 4"),
    (HEAD + "0,1,1\n1,abc,3\n", 3, 2, "prompt_tokens", "expected a non-negative integer, got 'abc'"),
    (HEAD + "0,1,-3\n", 2, 3, "decode_tokens", "expected a non-negative integer, got '-3'"),
    (HEAD + "0,1.5,3\n", 2, 2, "prompt_tokens", "expected a non-negative integer, got '1.5'"),
    (HEAD + "0,,3\n", 2, 2, "prompt_tokens", "expected a non-negative integer, got ''"),
    (HEAD + "nan,1,3\n", 2, 1, "arrival_time", "expected a finite number of seconds >= 0, got 'nan'"),
    (HEAD + "inf,1,3\n", 2, 1, "arrival_time", "got 'inf'"),
    (HEAD + "-1,1,3\n", 2, 1, "arrival_time", "got '-1'"),
    (HEAD + "soon,1,3\n", 2, 1, "arrival_time", "got 'soon'"),
    (HEAD + "0,1,1\n1,0,0\n", 3, 3, "decode_tokens", "0 prompt and 0 decode tokens"),
    (HEAD + "0,1,1\n2,1,1\n\n1.5,1,1\n", 5, 1, "arrival_time",
     "arrivals go backwards: '1.5' is earlier than '2' on line 3"),
    (AZ + "2023-11-16 18:17:03.9799600,1,1\n2023-11-16 18:17:03.97996,1,1\n2023-11-16 18:17:03.9799599,1,1\n",
     4, 1, "TIMESTAMP", "arrivals go backwards"),
    (AZ + "2023-13-16 18:17:03.9799600,1,1\n", 2, 1, "TIMESTAMP", "expected a timestamp like"),
    (AZ + "2023-11-16 24:17:03.9799600,1,1\n", 2, 1, "TIMESTAMP", "expected a timestamp like"),
    (AZ + "2023-11-16 18:17:03.9799600,1,1\nyesterday,1,1\n", 3, 1, "TIMESTAMP", "got 'yesterday'"),
    (AZ + "2023-11-16 18:17:03.9799600,x,1\n", 2, 2, "ContextTokens", "expected a non-negative integer"),
]


@pytest.mark.parametrize("text, line, col, name, reason", BAD)
def test_malformed_trace_names_line_and_column(tmp_path, text, line, col, name, reason):
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        read_trace(path)
    err = info.value
    assert (err.path, err.line, err.column, err.column_name) == (str(path), line, col, name)
    where = f"{path}:{line}" + (f":{col}" if col else "") + (f" ({name})" if name else "")
    assert str(err).startswith(where + ": ") and reason in str(err)
    assert isinstance(err, ValueError)


def test_message_format_example(tmp_path):
    path = write(tmp_path, HEAD + "0,1,1\n" * 15 + "16,abc,2\n")
    with pytest.raises(TraceError, match=r"^.*trace\.csv:17:2 \(prompt_tokens\): expected a non-negative "
                                         r"integer, got 'abc'$"):
        read_trace(path)


def test_write_read_round_trip_is_exact(tmp_path):
    w = Workload(GammaArrivals(7.3, 0.3), LogNormal(300, 1.2), Uniform(1, 400), num_requests=2000,
                 initial=((0, 2, "A"), (0, 4, 'B "quoted", with comma')), job_class="code")
    reqs = list(w.requests(3)) + [Request(2002, 1e6 + 0.1 + 0.2, 1, 1, "other")]
    write_trace(tmp_path / "w.csv", reqs)
    assert read_trace(tmp_path / "w.csv") == reqs
    assert Workload(trace=read_trace(tmp_path / "w.csv")).arrival_rate > 0


def test_write_trace_refuses_what_would_not_round_trip(tmp_path):
    with pytest.raises(ValueError, match="sort the requests"):
        write_trace(tmp_path / "x.csv", [Request(0, 2.0, 1, 1), Request(1, 1.0, 1, 1)])
    with pytest.raises(ValueError, match="empty class or label"):
        write_trace(tmp_path / "x.csv", [Request(0, 2.0, 1, 1, label="")])


@pytest.mark.parametrize("name, rows, prompt, output", [("conv", 19_366, 1155, 211), ("code", 8_819, 2048, 28)])
def test_real_azure_traces(shared_traces, name, rows, prompt, output):
    start = time.perf_counter()
    reqs = read_trace(shared_traces / f"AzureLLMInferenceTrace_{name}.csv")
    elapsed = time.perf_counter() - start
    assert len(reqs) == rows and reqs[0].arrival_time == 0.0 and reqs[-1].request_id == rows - 1
    w = Workload(trace=reqs)
    assert round(w.mean_prompt_tokens) == prompt and round(w.mean_decode_tokens) == output
    assert 3000 < reqs[-1].arrival_time < 3700  # about an hour
    assert elapsed < 1.0
