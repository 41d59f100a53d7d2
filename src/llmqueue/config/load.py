"""Reading scenarios: one loader for both forms, built-in names, dotted overrides, one-line errors.

:func:`load_scenario` resolves a path or built-in name, parses the YAML once (a file's parsed
data is kept with the text it came from, so asking for its kind first and loading it after does
not parse it twice), applies overrides and validates. Every error is a
:class:`~llmqueue.errors.ScenarioError` whose lines read ``file: field.path: what is wrong``.
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from ..engine.limits import MAX_COUNT_DIGITS
from ..errors import ScenarioError
from ..workload.textfile import SNIFF_BYTES, binary, utf8_problem
from .fields import TAGS
from .schema import NOT_SINGLE, Scenario

#: An override value that removes the key from the scenario (a string, so it survives pickling).
UNSET = "__delete__"

#: The built-in scenario used when none is named.
DEFAULT_SCENARIO = "fig1"


def builtin_scenarios() -> dict[str, Path]:
    """Scenario files shipped with the package, by name."""
    root = resources.files("llmqueue") / "data" / "scenarios"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def resolve_source(source: str | Path | None) -> Path | None:
    """The scenario file for a path or a built-in name (a path wins), or None if there is none."""
    if source is None:
        return None
    path = Path(str(source))
    if path.exists():
        return path
    return builtin_scenarios().get(str(source))


#: Parsed YAML by file path, with the text it was parsed from (a changed file is parsed again).
_PARSED: dict[str, tuple[str, Any]] = {}
_PARSED_MAX = 16


def read_yaml(path: Path) -> Any:
    """The YAML data of ``path``, parsed once per file content (a fresh copy: callers may change it).

    Reading the text is cheap, parsing it is not: asking a file's kind and then loading it, as
    the commands do, parses it once. A ScenarioError names the line and column of bad YAML.
    """
    path = Path(path)
    data = path.read_bytes()
    found = binary(data[:SNIFF_BYTES])
    if found is not None:
        raise ScenarioError(f"{path}:{found[0]}:{found[1]}: {found[2]}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col, reason = utf8_problem(data, e)
        raise ScenarioError(f"{path}:{line}:{col}: {reason}") from None
    key = str(path.resolve())
    hit = _PARSED.get(key)
    if hit is None or hit[0] != text:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            raise ScenarioError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
        except ValueError as e:   # Python's digit limit on int(): find the number's line ourselves
            m = re.search(rf"\d{{{MAX_COUNT_DIGITS + 1},}}", text)
            where = "" if m is None else ":{}:{}".format(*_line_col(text, m.start()))
            what = f"a number of {len(m.group())} digits" if m is not None else str(e)
            raise ScenarioError(f"{path}{where}: not a valid scenario ({what}; sizes are bounded, "
                                f"see llmqueue.engine.limits)") from None
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        hit = _PARSED[key] = (text, data)
    return copy.deepcopy(hit[1])


def _line_col(text: str, offset: int) -> tuple[int, int]:
    head = text[:offset]
    line = 1 + head.count("\n") + head.count("\r") - head.count("\r\n")
    return line, offset - max(head.rfind("\n"), head.rfind("\r"))


def scenario_kind(source: str | Path | None) -> Literal["engine", "network"] | None:
    """``"network"`` if ``source`` (a path or built-in name) is a YAML mapping with a top-level
    ``network`` key, ``"engine"`` for any other readable scenario file, None if there is no such
    file or it cannot be read (loading it then reports why)."""
    path = resolve_source(DEFAULT_SCENARIO if source is None else source)
    if path is None or not path.is_file():
        return None
    try:
        data = read_yaml(path)
    except (ScenarioError, OSError):
        return None
    return "network" if isinstance(data, dict) and data.get("network") is not None else "engine"


def is_network_scenario(source: str | Path | None) -> bool:
    """Whether ``source`` is a network scenario (see :func:`scenario_kind`)."""
    return source is not None and scenario_kind(source) == "network"


def set_dotted(d: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating levels; the value :data:`UNSET` removes the key.

    A number addresses an item of a list that exists (``network.engines.1.token_budget``).
    """
    keys = dotted.split(".")
    node: Any = d
    for i, k in enumerate(keys[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, k, dotted, keys[:i])]
            continue
        nxt = node.get(k)
        if not isinstance(nxt, (dict, list)):
            nxt = {}
            node[k] = nxt
        node = nxt
    last = keys[-1]
    if isinstance(node, list):
        if value == UNSET:
            raise ScenarioError(f"override {dotted}: an item of a list cannot be removed")
        node[_list_index(node, last, dotted, keys[:-1])] = value
    elif value == UNSET:
        node.pop(last, None)
    else:
        node[last] = value


def _list_index(items: list, key: str, dotted: str, where: list[str]) -> int:
    if not key.isdigit() or int(key) >= len(items):
        raise ScenarioError(f"override {dotted}: {'.'.join(where)} is a list of {len(items)} item(s); "
                            f"address one by its index 0..{len(items) - 1}, not {key!r}")
    return int(key)


def format_validation(source: str, err: ValidationError, tags=TAGS, doc: str = "docs/scenarios.md") -> str:
    """One line per schema error: ``source: dotted.key: what is wrong``."""
    lines = []
    for e in err.errors():
        loc = _field_path(e["loc"], () if e["type"] == "scenario" else tags)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key (check its spelling and the reference in {doc})"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def _field_path(loc: tuple, tags) -> str:
    """``a.b.0.c`` from a pydantic location, without the tags of discriminated unions.

    A tag directly follows the union's own location, so a tag right after a dropped one is a
    key of that name (``chain.1.parallel.parallel.0`` is ``chain.1.parallel.0``).
    """
    out, dropped = [], False
    for x in loc:
        if isinstance(x, str) and x in tags and not dropped:
            dropped = True
            continue
        dropped = False
        out.append(str(x))
    return ".".join(out)


def scenario_from_data(data: Any, source: str = "scenario", base: str | Path = ".",
                       overrides: dict[str, Any] | None = None) -> Scenario:
    """Validate already-parsed scenario data (a dict, copied before ``overrides`` are applied).

    ``source`` names the data in errors; relative paths resolve against ``base``. Overrides map
    dotted keys to values (None leaves a key as it is, :data:`UNSET` removes it).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping with keys engine, workload, seed "
                            f"(or network, simulation, seed for a network)")
    if overrides:
        data = copy.deepcopy(data)
        for key, value in overrides.items():
            if value is not None:
                set_dotted(data, key, value)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        doc = "docs/networks.md" if "network" in data else "docs/scenarios.md"
        raise ScenarioError(format_validation(source, e, doc=doc)) from None
    sc.located(base, source)
    sc.check_trace_classes()
    return sc


def load_scenario(source: str | Path | None = None, overrides: dict[str, Any] | None = None, *,
                  kind: Literal["engine", "network"] | None = None) -> Scenario:
    """Read a scenario of either form (a path, a built-in name, or None for ``fig1``) and apply
    dotted overrides, e.g. ``{"engine.token_budget": 256}`` or ``{"simulation.horizon_s": 60}``
    (a value of None leaves the key as it is, :data:`UNSET` removes it). ``kind`` refuses the
    other form with one clear error (for commands that run only one of them)."""
    name = DEFAULT_SCENARIO if source is None else str(source)
    path = resolve_source(name)
    if path is None:
        raise ScenarioError(f"{name}: no such scenario file (built-in scenarios: "
                            f"{', '.join(sorted(builtin_scenarios()))})")
    sc = scenario_from_data(read_yaml(path), str(path), path.parent, overrides)
    if kind == "engine" and sc.is_network:
        raise ScenarioError(f"{path}: {NOT_SINGLE}")
    if kind == "network" and not sc.is_network:
        raise ScenarioError(f"{path}: not a network scenario (a YAML file with a top-level 'network' key)")
    return sc


def check_runnable(sc: Scenario, workload) -> None:
    """Refuse single-engine configurations that can never make progress, before running them."""
    policy = sc.build_policy()
    if policy.whole_prefill:
        biggest = workload.max_prompt_tokens
        if biggest is not None and biggest > policy.token_budget:
            raise ScenarioError(
                f"no batch can be formed: {policy.name} schedules prompts whole, but prompts reach "
                f"{biggest} tokens and engine.token_budget is {policy.token_budget}. Raise "
                f"engine.token_budget to at least {biggest}, or use policy orca or sarathi (they chunk prompts).")
