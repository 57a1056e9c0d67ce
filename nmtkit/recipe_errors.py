"""Recipe mistakes as one-paragraph messages: `nmtkit.recipe` validates, this module words it.

Each problem of a pydantic `ValidationError` is one sentence placed at the line of its key in
the YAML text (or at the `--set` override that wrote it), naming the allowed values and, for an
unknown key, the known keys of its section and the closest one ("did you mean ...?"). The root
model is a parameter, so this module does not import `nmtkit.recipe`.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError


def describe_validation_error(
    exc: ValidationError, text: str, overridden: set[str], *, root: type[BaseModel]
) -> str:
    """Every problem of `exc` (validating the YAML `text` as `root`), one sentence each;
    `overridden` holds the dotted keys that `--set` wrote."""
    lines = _line_numbers(text)
    return " ".join(_describe(err, lines, overridden, root) for err in exc.errors())


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """What the YAML parser objected to, and where (line and column, when it knows)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def kind_of(value: object) -> str:
    """The YAML-ish name of a value's type: list, string, number, boolean (else the type)."""
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return names.get(type(value), type(value).__name__)


def _describe(
    err: Any, lines: dict[tuple[str, ...], int], overridden: set[str], root: type[BaseModel]
) -> str:
    """One sentence for one pydantic error: where, which key, what is wrong, what is allowed."""
    loc = tuple(str(part) for part in err["loc"])
    dotted = ".".join(loc)
    if not dotted:
        where = "recipe"
    elif dotted in overridden or (loc not in lines and _set_by_override(dotted, overridden)):
        where = f"--set {dotted}"
    else:
        line = _nearest_line(lines, loc)
        where = f"line {line}: {dotted}" if line else dotted
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown key{_suggestion(loc, root)}."
    if kind == "missing":
        return f"{where}: required key is missing."
    message = err["msg"].removeprefix("Value error, ")
    got = "" if kind.startswith("value_error") or "input" not in err else f" (got {err['input']!r})"
    return f"{where}: {message}{got}."


def _set_by_override(dotted: str, overridden: set[str]) -> bool:
    """Whether an override wrote `dotted`: a key inside it (`--set train.early_stopping.x.y=1`
    makes the unknown section `x`) or a section around it (`--set model={hiden: 1}`)."""
    return any(key.startswith(f"{dotted}.") or dotted.startswith(f"{key}.") for key in overridden)


def _suggestion(loc: tuple[str, ...], root: type[BaseModel]) -> str:
    known = _fields_at(loc[:-1], root)
    if not known:
        return ""
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else "."
    return f"{hint} Known keys here: {', '.join(known)}"


def _fields_at(loc: tuple[str, ...], root: type[BaseModel]) -> list[str]:
    """Field names of the section at `loc` below the model `root` (e.g. ('data', 'source') of
    the recipe -> synthetic, files, ...)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or part not in model.model_fields:
            return []
        model = _section_type(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(filter(None, map(_section_type, get_args(annotation))), None)
    return None


def _line_numbers(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path of a YAML mapping to the 1-based line where it appears."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node | None, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*path, str(key_node.value))
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    walk(root, ())
    return lines


def _nearest_line(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    """The line of `loc`, or of its closest ancestor that the file spells out."""
    return next((lines[loc[:end]] for end in range(len(loc), 0, -1) if loc[:end] in lines), None)
