"""Hardware profiles: measured iteration times and the batch-time models fitted to them, stored
as YAML so that the simulator can load a machine's batch time by name.

A profile ``NAME`` lives at ``DIR/NAME.yaml``, ``DIR`` being, first found: the ``directory``
argument (``--profiles-dir``), the ``LLMQUEUE_PROFILES`` environment variable, or
``~/.llmqueue/profiles``. A name that is a path to a ``.yaml`` file is read as it is. In a
scenario: ``engine.batch_time: {model: profile, name: cpu-small}`` (optionally ``fit: affine``).
No torch needed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from ..engine.batch_time import BatchTimeModel
from ..errors import ProfileError
from ..sim.manifest import write_text
from .fit import FIT_NAMES, build_model

ENV_VAR = "LLMQUEUE_PROFILES"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def profiles_dir(directory: str | Path | None = None) -> Path:
    if directory is not None:
        return Path(directory).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".llmqueue" / "profiles"


def profile_path(name: str, directory: str | Path | None = None) -> Path:
    """Where profile ``name`` is (or would be) stored."""
    if name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file():
        return Path(name).expanduser()
    if not _NAME.match(name):
        raise ProfileError(f"profile name {name!r} must be letters, digits, '.', '_' or '-' "
                           f"(or a path to a .yaml file)")
    return profiles_dir(directory) / f"{name}.yaml"


def save_profile(profile: dict, name: str, directory: str | Path | None = None) -> Path:
    """Write ``profile`` as ``NAME.yaml``; returns the path."""
    path = profile_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, yaml.safe_dump(_plain(profile), sort_keys=False, width=100))
    return path


def _plain(x):
    """Numpy scalars and str subclasses (torch's version string) as plain Python values for YAML."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, str):
        return str(x)
    if isinstance(x, int) or hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iu":
        return int(x)
    if isinstance(x, float) or hasattr(x, "dtype"):
        return float(x)
    return x


def read_profile(name: str, directory: str | Path | None = None) -> dict:
    """The stored profile as a dict, checked to have fits."""
    path = profile_path(name, directory)
    if not path.is_file():
        known = list_profiles(directory)
        raise ProfileError(f"no hardware profile {name!r} at {path} (known: {', '.join(known) or 'none'}). "
                           f"Make one with: llmqueue profile --model small --name {name}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("fits"), dict) or not data["fits"]:
        raise ProfileError(f"{path}: not a hardware profile (no 'fits' mapping)")
    return data


def load_profile(name: str, fit: str | None = None, directory: str | Path | None = None) -> BatchTimeModel:
    """The batch-time model of profile ``name``: the profile's recommended fit, or ``fit``
    (``staircase``, ``piecewise_linear`` or ``affine``)."""
    data = read_profile(name, directory)
    choice = fit or data.get("recommended") or "affine"
    if choice not in FIT_NAMES:
        raise ProfileError(f"unknown fit {choice!r}; choose one of {', '.join(FIT_NAMES)}")
    entry = data["fits"].get(choice)
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        raise ProfileError(f"profile {name!r} has no {choice} fit (it has: {', '.join(data['fits'])})")
    try:
        return build_model(choice, entry["params"])
    except (KeyError, TypeError, ValueError) as e:
        raise ProfileError(f"profile {name!r}: bad {choice} parameters ({e})") from None


def list_profiles(directory: str | Path | None = None) -> list[str]:
    d = profiles_dir(directory)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []
