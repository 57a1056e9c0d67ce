"""The one thing pyproject.toml cannot say: the wheel's `nmtkit/recipes/` is the repository's
`recipes/` folder (one source; `nmtkit.builtin_recipes` finds either). Everything else is in
pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["nmtkit*"]), "nmtkit.recipes"],
    package_dir={"nmtkit.recipes": "recipes"},
)
