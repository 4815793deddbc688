"""Read the pipelines YAML file: safe YAML, `${VAR}` expansion, then the typed models.

The file comes from the `path` argument, else env `HYPERLINE_SYNC_CONFIG`; there is no default
pipeline (a deployment that forgot the variable must not sync a demo). Every string value may use
`${VAR}` (error if unset) and `${VAR:-default}` (default if unset or empty); errors never print an
expanded value (it may be a secret), they name the variable. Unknown keys are errors, so typos never
pass silently. Relative paths in `state` are resolved against the config file's folder.

YAML anchors and aliases (`&a`, `*a`, `<<: *a`) are refused while the file is read, before anything
is expanded: a few lines of nested aliases expand to gigabytes ("billion laughs").

`read_pipelines` reads the file pipeline by pipeline, so that one broken pipeline does not take
the others down (the DAG file); `load_config` wants the whole file valid (tools, CLI, tasks).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hyperline_sync.config.errors import (
    ConfigError,
    Expansions,
    Issue,
    Loc,
    issues_of,
    shown,
    type_name,
    unknown_key,
)
from hyperline_sync.config.models import PIPELINE_NAME, Config, PipelineConfig, StateConfig

__all__ = ["CONFIG_ENV", "PipelineSet", "expand_env", "load_config", "parse_config", "read_pipelines"]

CONFIG_ENV = "HYPERLINE_SYNC_CONFIG"
_ROOT_KEYS = ("state", "pipelines")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _RefusedYAML(yaml.YAMLError):
    def __init__(self, mark: Any, what: str) -> None:  # a yaml Mark (pure Python or libyaml's)
        super().__init__(f"line {mark.line + 1}: {what}")


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader without anchors or aliases, and whose impossible dates stay strings (so that
    `start_date: 2026-13-01` is reported by key, not as a bare ValueError of the YAML library)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _RefusedYAML(event.start_mark, f"YAML aliases (*{event.anchor}) are not supported: "
                                                 "write the values out")
        if getattr(event, "anchor", None):
            raise _RefusedYAML(event.start_mark, f"YAML anchors (&{event.anchor}) are not supported: "
                                                 "write the values out")
        return super().compose_node(parent, index)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)


@dataclass(frozen=True)
class PipelineSet:
    """A config file read pipeline by pipeline. `pipelines` are the valid ones; `broken` pairs each
    invalid pipeline's name (None if the name itself is unusable) with its error. A problem of the
    shared part (`state`, top-level keys) breaks every pipeline."""

    path: Path | None
    state: StateConfig | None
    pipelines: tuple[PipelineConfig, ...]
    broken: tuple[tuple[str | None, ConfigError], ...] = ()
    issues: tuple[Issue, ...] = field(default=(), repr=False)  # all of them, in file order

    def config(self) -> Config:
        """The whole file, or a `ConfigError` listing every problem."""
        if self.issues:
            raise ConfigError.of(self.issues, _source(self.path))
        assert self.state is not None
        return Config(state=self.state, pipelines=self.pipelines, path=self.path)

    def pipeline(self, name: str) -> tuple[Config, PipelineConfig]:
        """One pipeline and the valid part of the file, or the `ConfigError` that pipeline has (a
        valid pipeline wins over a later one of the same name, which is broken as a duplicate)."""
        if self.state is not None and any(pipeline.name == name for pipeline in self.pipelines):
            config = Config(state=self.state, pipelines=self.pipelines, path=self.path)
            return config, config.pipeline(name)
        for broken_name, error in self.broken:
            if broken_name == name:
                raise error
        known = ", ".join(p.name for p in self.pipelines)
        raise ConfigError("pipelines", f"no pipeline named {name!r} (known: {known})", _source(self.path))


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, expand and validate the config file (see module docstring for the lookup order)."""
    return read_pipelines(path).config()


def read_pipelines(path: str | os.PathLike[str] | None = None) -> PipelineSet:
    """Read the file pipeline by pipeline. Raises `ConfigError` only when nothing can be read: no
    file, invalid YAML, or no `pipelines` list."""
    given = path if path is not None else os.environ.get(CONFIG_ENV)
    if not given:
        raise ConfigError("", f"no config file: pass --config FILE or set {CONFIG_ENV}")
    chosen = Path(given)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file: {exc.strerror or exc}", str(chosen)) from exc
    try:
        raw = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {exc}", str(chosen)) from None
    try:
        return _read(raw, chosen.resolve().parent, chosen)
    except ConfigError as exc:
        raise exc.in_file(str(chosen)) from None


def parse_config(raw: Any, base_dir: Path | None = None, path: Path | None = None) -> Config:
    """Validate an already-parsed YAML document. `base_dir` anchors relative state paths."""
    return _read(raw, base_dir or Path.cwd(), path).config()


def expand_env(value: Any, loc: Loc = ()) -> tuple[Any, dict[Loc, tuple[str, ...]], list[Issue]]:
    """Expand `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree (keys excepted).
    Returns the tree, which variables each expanded key path used, and the references that failed
    (their strings are left as they were)."""
    expansions: dict[Loc, tuple[str, ...]] = {}
    issues: list[Issue] = []

    def walk(node: Any, at: Loc) -> Any:
        if isinstance(node, str):
            return _expand_string(node, at, expansions, issues)
        if isinstance(node, list):
            return [walk(item, (*at, i)) for i, item in enumerate(node)]
        if isinstance(node, dict):
            return {key: walk(item, (*at, key)) for key, item in node.items()}
        return node

    return walk(value, loc), expansions, issues


def _expand_string(value: str, loc: Loc, expansions: dict[Loc, tuple[str, ...]], issues: list[Issue]) -> str:
    if "${" not in value:
        return value
    if "${" in _ENV_REF.sub("", value):
        issues.append(Issue(loc, f"malformed ${{...}} reference in {value!r}"))  # the file's text, not a value
        return value
    unset = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        current = os.environ.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            unset.append(name)
            return match.group(0)
        return current

    expanded = _ENV_REF.sub(replace, value)
    expansions[loc] = tuple(dict.fromkeys(m.group(1) for m in _ENV_REF.finditer(value)))
    for name in unset:
        issues.append(Issue(loc, f"environment variable {name} is not set (use ${{{name}:-default}})"))
    return value if unset else expanded


def _read(raw: Any, base_dir: Path, path: Path | None) -> PipelineSet:
    if not isinstance(raw, dict):
        raise ConfigError("", f"must be a mapping, got {type_name(raw)}")
    raw, expansions, env_issues = expand_env(raw)
    shared = [Issue((key,), unknown_key(str(key), _ROOT_KEYS)) for key in raw if key not in _ROOT_KEYS]
    if "pipelines" not in raw:
        raise ConfigError.of([*shared, Issue(("pipelines",), "is required")])
    items = raw["pipelines"]
    if not isinstance(items, list) or not items:
        raise ConfigError.of([*shared, Issue(("pipelines",), "must be a non-empty list of pipelines")])

    state, state_issues = _validate(StateConfig, raw.get("state"), ("state",), expansions, env_issues, base_dir)
    shared += state_issues
    pipelines, broken, issues = [], [], list(shared)
    seen: set[str] = set()
    for i, item in enumerate(items):
        loc: Loc = ("pipelines", i)
        pipeline, own = _validate(PipelineConfig, item, loc, expansions, env_issues, base_dir)
        name = item.get("name") if isinstance(item, dict) else None
        name = name if isinstance(name, str) and re.match(PIPELINE_NAME, name) else None
        if name in seen:
            own.append(Issue((*loc, "name"), f"duplicate pipeline name {shown(name, (*loc, 'name'), expansions)}"))
        if name:
            seen.add(name)
        issues += own
        if own or shared:
            broken.append((name, ConfigError.of([*shared, *own], _source(path))))
        else:
            pipelines.append(pipeline)
    return PipelineSet(path, state, tuple(pipelines), tuple(broken), tuple(issues))


def _validate(
    model: type[BaseModel], raw: Any, loc: Loc, expansions: Expansions, env_issues: list[Issue], base_dir: Path
) -> tuple[Any, list[Issue]]:
    """The section validated, or None and its issues; a failed `${VAR}` hides the issues of its key."""
    own_env = [issue for issue in env_issues if issue.loc[: len(loc)] == loc]
    env_locs = {issue.loc for issue in own_env}
    try:
        value = model.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        found = [issue for issue in issues_of(exc, expansions, loc) if issue.loc not in env_locs]
        return None, own_env + found
    return (None, own_env) if own_env else (value, [])


def _source(path: Path | None) -> str | None:
    return None if path is None else str(path)
