"""The built-in recipes: the repository's `recipes/` folder, shipped in the wheel as
`nmtkit/recipes/` (setup.py maps one onto the other, so there is one copy of each file).

A recipe's name is its path under that folder without `.yaml`: `demo`, `multi30k-cpu`,
`length-study/bahdanau`. Every command that takes a recipe file takes a name too
(`nmtkit prepare demo`); a file that exists at the given path always wins. An installed wheel
finds the recipes beside this module; a clone (an editable install) in the repository's
`recipes/` next to the package.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from nmtkit.errors import UserError

PACKAGE = Path(__file__).resolve().parent
FOLDERS = (PACKAGE / "recipes", PACKAGE.parent / "recipes")  # installed wheel, then a clone
SUFFIX = ".yaml"


def recipes_folder() -> Path | None:
    """Where the built-in recipes are: the wheel's `nmtkit/recipes/`, else a clone's
    `recipes/`; None when neither exists (a package installed without them)."""
    return next((folder for folder in FOLDERS if folder.is_dir()), None)


def builtin_recipes() -> dict[str, Path]:
    """Every built-in recipe, name -> file, sorted by name (top-level ones first)."""
    folder = recipes_folder()
    if folder is None:
        return {}
    found = {
        path.relative_to(folder).with_suffix("").as_posix(): path
        for path in folder.rglob(f"*{SUFFIX}")
    }
    return dict(sorted(found.items(), key=lambda item: (item[0].count("/"), item[0])))


def find_recipe(spec: str | Path) -> Path:
    """The recipe file `spec` means: the file at that path when there is one, else the built-in
    recipe of that name, else the path as given (for the caller's "does not exist")."""
    path = Path(spec)
    if path.is_file():
        return path
    return builtin_recipes().get(str(spec), path)


def builtin_recipe(name: str) -> Path:
    """The built-in recipe `name`; a UserError listing the names (and the closest) otherwise."""
    found = builtin_recipes().get(name)
    if found is None:
        raise UserError(unknown_recipe(name, files=False))
    return found


def looks_like_name(spec: str | Path) -> bool:
    """Whether `spec` reads as a recipe's name rather than a file's path (no .yaml/.yml)."""
    return Path(spec).suffix.lower() not in (".yaml", ".yml")


def unknown_recipe(name: str, *, files: bool = True) -> str:
    """The message for `name`, not a built-in recipe (nor a file, with `files`): the names and
    the closest one."""
    what = "neither a recipe file nor a built-in recipe" if files else "not a built-in recipe"
    names = list(builtin_recipes())
    if not names:
        return f"{name} is {what}, and this installation of nmtkit has no built-in recipes"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    return (
        f"{name} is {what}; {hint}the built-in ones are {', '.join(names)} "
        "(`nmtkit recipes` describes them)"
    )


def missing_file_hint(path: str | Path) -> str:
    """For a recipe path that does not exist: the built-in recipe of the same name, if any."""
    stem = Path(path).with_suffix("").name
    names = builtin_recipes()
    match = next((name for name in names if name == stem or name.endswith("/" + stem)), None)
    return (
        ""
        if match is None
        else f"; there is a built-in recipe `{match}`: give its name instead of the path"
    )


def summary(path: Path, width: int | None = None) -> str:
    """One line about a recipe: the first sentence of its header comment (up to a blank or an
    indented comment line, such as a command), cut at a word to `width` characters if given."""
    header: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.removeprefix("#")
        if not line.startswith("#") or text.startswith("  ") or (header and not text.strip()):
            break
        header.append(text.strip())
    sentence = first_sentence(" ".join(header))
    if width is None or len(sentence) <= width:
        return sentence
    return sentence[: width - 2].rsplit(" ", 1)[0].rstrip(",;:") + " …"


_SENTENCE_END = re.compile(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\.(?=\s|$)")


def first_sentence(text: str) -> str:
    """`text` up to its first full stop ("et al." and "e.g." do not end a sentence)."""
    match = _SENTENCE_END.search(text)
    return text if match is None else text[: match.end()]


def listing(width: int) -> list[str]:
    """`nmtkit recipes`: one line per built-in recipe, its name and summary, within `width`."""
    recipes = builtin_recipes()
    if not recipes:
        raise UserError("this installation of nmtkit has no built-in recipes")
    column = max(len(name) for name in recipes) + 2
    return [
        f"{name:{column}}{summary(path, max(40, width - column))}" for name, path in recipes.items()
    ]
