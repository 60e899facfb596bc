"""Notebooks: conventions, a papermill run of each at ``ci`` scale, and an nbval re-run.

The papermill run goes through the same ``llve.reproduce.run_notebook`` the CLI uses; its
recorded numbers are asserted by ``notebook_checks``; then nbval re-executes the executed
notebook and compares every text output (timings and addresses sanitised): the same seed must
give the same numbers, which is what "reproducible" means here.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from llve.report import output_root
from llve.reproduce import DEMO_PAPER, discover_notebooks, notebook_name, run_notebook
from notebook_checks import CHECKS

SOURCES = [source for sources in discover_notebooks().values() for source in sources]
STANDARD_PARAMETERS = {"scale", "device", "seed", "data_root", "out_dir", "interactive"}
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def code_cells(source):
    return [cell for cell in jupytext.read(source).cells if cell.cell_type == "code"]


@pytest.mark.parametrize("source", SOURCES, ids=notebook_name)
def test_exactly_one_parameters_cell_with_the_standard_names(source):
    tagged = [cell for cell in code_cells(source) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source}: {len(tagged)} cells tagged parameters"
    names = {target.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}
    assert STANDARD_PARAMETERS <= names, f"{source}: missing {STANDARD_PARAMETERS - names}"


@pytest.mark.parametrize("source", SOURCES, ids=notebook_name)
def test_notebook_defines_no_modules_or_long_functions(source):
    for cell in code_cells(source):
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, ast.ClassDef), f"{source}: class {node.name} belongs in llve/"
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno < 8, f"{source}: long function {node.name}"


def test_every_notebook_has_number_checks():
    assert {notebook_name(source) for source in SOURCES} == set(CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=notebook_name)
def test_notebook_runs_at_ci_scale_and_reproduces(source):
    run = run_notebook(source, scale="ci", device="cpu", seed=0)
    assert run.ok, f"{notebook_name(source)} failed: {run.error} (executed notebook: {run.executed})"
    numbers_file = output_root("ci") / "tables" / _paper_of(source) / f"{source.stem}.numbers.json"
    numbers = json.loads(numbers_file.read_text())
    assert numbers["scale"] == "ci" and numbers["seed"] == 0
    CHECKS[notebook_name(source)](numbers)
    nbval = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
         "--nbval-sanitize-with", str(SANITIZE), "-q", str(run.executed)],
        capture_output=True, text=True, cwd=source.parent)
    assert nbval.returncode == 0, f"nbval re-run differs:\n{nbval.stdout[-4000:]}"


def _paper_of(source):
    return DEMO_PAPER.get(source.stem, source.parent.name)
