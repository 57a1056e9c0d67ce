"""The wheel a registry would get: its metadata (MIT, the lean core, the extras), its files
(every module, the built-in recipes, the page, the lexicon), and the wheel installed (not
editable) into a fresh virtual environment, run from a directory outside the clone.

The wheel is built without network from a copy of the files it is made of (a stale build/ in
the clone cannot leak into it). The fresh venv gets the development venv's packages (torch, ...)
through a path line in a .pth file: such a line only adds the folder to sys.path, it does not
run the .pth files inside it, so the development venv's editable nmtkit stays invisible (the
test checks that the nmtkit it runs is the wheel's).
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import one_line

ROOT = Path(__file__).resolve().parent.parent
WHEEL_SOURCES = ("pyproject.toml", "setup.py", "LICENSE", "README.md", "nmtkit", "recipes")
CORE = {"torch", "typer", "rich", "sentencepiece", "sacrebleu", "datasets", "pyyaml", "pydantic"}
CORE |= {"numpy"}
EXTRAS = {
    "serve": {"fastapi", "uvicorn", "prometheus-client"},
    "plot": {"matplotlib"},
    "tensorboard": {"tensorboard"},
}
SMALL_DEMO = [  # the demo's corpus and vocabulary cut down to a few seconds of `prepare`
    "--set=data.source.synthetic.pairs=2000",
    "--set=data.source.synthetic.valid=100",
    "--set=data.source.synthetic.test=100",
    "--set=tokenizer.vocab_size=300",
]


def run(*args: object, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(
        *pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, ".", cwd=source
    )
    (built,) = out.glob("nmtkit-*.whl")
    return built


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def requirement_name(spec: str) -> str:
    name = spec.split(";")[0]
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-")


def test_torch_is_at_least_2_6() -> None:
    """torch <= 2.5.1 lets a crafted checkpoint run code through `torch.load(weights_only=True)`
    (CVE-2025-32434), the very load that makes reading a checkpoint safe; every place that
    names a torch requirement asks for 2.6 or newer."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = [
        *project["dependencies"],
        *(d for ds in project["optional-dependencies"].values() for d in ds),
    ]
    torch = [Requirement(s) for s in specs if Requirement(s).name == "torch"]
    assert torch, "torch is a core dependency"
    for requirement in torch:
        assert not requirement.specifier.contains("2.5.1") and requirement.specifier.contains("2.6")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "TORCH  ?= torch>=2.6" in makefile


def test_metadata_is_mit_with_a_lean_core_and_the_extras(wheel: Path) -> None:
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert not [c for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
    assert meta["Author"] and meta["Keywords"] and meta["Requires-Python"]
    assert not meta.get_all("Project-URL")  # no address that is not real
    requires = meta.get_all("Requires-Dist")
    core = {requirement_name(r) for r in requires if ";" not in r}
    assert core == CORE
    by_extra: dict[str, set[str]] = {}
    for spec in requires:
        if ";" in spec:
            extra = spec.split("extra ==")[1].strip().strip("'\"")
            by_extra.setdefault(extra, set()).add(requirement_name(spec))
    assert set(meta.get_all("Provides-Extra")) == {*EXTRAS, "all", "dev"}
    for extra, packages in EXTRAS.items():
        assert by_extra[extra] == packages
    assert by_extra["all"] == set().union(*EXTRAS.values())
    assert by_extra["dev"] >= by_extra["all"] | {"pytest", "setuptools"}


def test_wheel_holds_the_modules_recipes_page_lexicon_and_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        license_files = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert [archive.read(n) for n in license_files] == [(ROOT / "LICENSE").read_bytes()]
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "nmtkit").rglob("*.py")}
    expected |= {f"nmtkit/{p.relative_to(ROOT).as_posix()}" for p in ROOT.glob("recipes/**/*.yaml")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "nmtkit/serve/static").iterdir()}
    expected.add("nmtkit/data/synthetic/lexicon.json")
    assert "nmtkit/recipes/length-study/bahdanau.yaml" in expected
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith(("tests/", "recipes/", "benchmarks/"))]


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed (no dependencies), then the development venv's
    site-packages added by a path line; its bin/ folder."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    # pip --python installs into the fresh venv, running there: no nmtkit is visible yet
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=venv.parent)
    script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run(python, "-c", script, cwd=venv.parent).strip())
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv / "bin"


def test_the_installed_wheel_runs_outside_the_clone(fresh_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    nmtkit = fresh_venv / "nmtkit"

    where = "import nmtkit, nmtkit.builtin_recipes as b; print(nmtkit.__file__, b.recipes_folder())"
    module, recipes = run(fresh_venv / "python", "-c", where, cwd=cwd, env=env).split()
    assert Path(module).is_relative_to(fresh_venv.parent), module  # the wheel's, not the clone's
    assert Path(recipes) == Path(module).parent / "recipes"

    assert "nmtkit prepare demo" in one_line(run(nmtkit, "--help", cwd=cwd, env=env))
    listed = [line.split()[0] for line in run(nmtkit, "recipes", cwd=cwd, env=env).splitlines()]
    names = {
        p.relative_to(ROOT / "recipes").with_suffix("").as_posix()
        for p in ROOT.glob("recipes/**/*.yaml")
    }
    assert set(listed) == names
    shown = run(nmtkit, "recipes", "show", "demo", cwd=cwd, env=env)
    assert shown == (ROOT / "recipes" / "demo.yaml").read_text(encoding="utf-8")

    run(nmtkit, "prepare", "demo", *SMALL_DEMO, cwd=cwd, env=env)
    assert (cwd / "runs" / "demo" / "data" / "manifest.json").is_file()
