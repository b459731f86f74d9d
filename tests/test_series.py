"""fruitlib.series: parameters passed to each notebook, and running the numbered notebooks with papermill."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import one_line

from fruitlib import FruitlibError, series


def make_notebook(path: Path, parameters: str, body: str = "print(seed, epochs)") -> Path:
    """A notebook whose second cell is tagged ``parameters``, as in the series."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


PARAMETERS = "data_dir = None  # the data\nfigures_dir = '../figures'\nseed = 0\nepochs = 3\n"


def test_only_declared_parameters_and_the_notebooks_own_section(tmp_path):
    notebook = make_notebook(tmp_path / "04-transfer.ipynb", PARAMETERS)
    params = {
        "seed": 1,
        "lr": 0.5,
        "backbone": "resnet50",
        "epochs": 2,
        "04": {"epochs": 9},
        "05": {"epochs": 7, "seed": 5},
    }
    assert series.notebook_parameters(params, notebook) == {"seed": 1, "epochs": 9}
    other = make_notebook(tmp_path / "05-scratch.ipynb", PARAMETERS)
    assert series.notebook_parameters(params, other) == {"seed": 5, "epochs": 7}
    assert series.notebook_parameters({}, notebook) == {}


def test_a_name_the_notebook_does_not_declare_is_an_error_not_dropped(tmp_path):
    notebook = make_notebook(tmp_path / "04-transfer.ipynb", PARAMETERS)
    with pytest.raises(FruitlibError, match="04-transfer.ipynb has no parameter mode") as error:
        series.notebook_parameters({"04": {"epochs": 9, "mode": "full"}}, notebook)
    assert one_line(str(error.value)) and "epochs" in str(error.value)  # it lists what the notebook declares
    with pytest.raises(FruitlibError, match="no notebook has a parameter epoch"):
        series.check_shared({"epoch": 3, "seed": 1}, [notebook])


def test_the_shipped_parameter_files_name_only_declared_parameters():
    for params_file in sorted((series.notebooks_folder().parent / "params").glob("*.yaml")):
        params = yaml.safe_load(params_file.read_text())
        every = sorted(series.notebooks_folder().glob("[0-9][0-9]-*.ipynb"))
        series.series_parameters(params, every, every)  # raises on a name a notebook does not declare


def test_an_unquoted_yaml_section_number_still_applies(tmp_path):
    notebook = make_notebook(tmp_path / "04-transfer.ipynb", PARAMETERS)
    params = yaml.safe_load("seed: 2\n04:\n  epochs: 11\n")  # YAML reads 04 as the integer 4
    assert series.notebook_parameters(params, notebook) == {"seed": 2, "epochs": 11}


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    make_notebook(folder / "01-first.ipynb", PARAMETERS, "print('first', seed, epochs)")
    make_notebook(
        folder / "02-second.ipynb", PARAMETERS + "backbone = 'auto'\n", "raise ValueError(f'broken on purpose {seed}')"
    )
    (folder / "README.ipynb").write_text("not part of the series")
    monkeypatch.setattr(series, "checkout", lambda: tmp_path)
    return folder


def test_run_series_executes_into_the_run_folder_with_parameters(notebooks, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text('seed: 4\nbackbone: resnet50\n"01":\n  epochs: 6\n')
    before = (notebooks / "01-first.ipynb").read_text()
    [written] = series.run_series(tmp_path / "out", str(params), only=["01"])
    assert written == (tmp_path / "out" / "01-first.ipynb").resolve()
    assert (notebooks / "01-first.ipynb").read_text() == before  # the source is never overwritten
    executed = nbformat.read(written, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "seed = 4" in injected[0].source and "epochs = 6" in injected[0].source
    assert "backbone" not in injected[0].source  # declared by 02, not by this notebook
    assert "first 4 6" in executed.cells[-1].outputs[0]["text"]
    assert "01-first.ipynb" in capsys.readouterr().out


def test_a_failing_notebook_is_a_one_line_error(notebooks, tmp_path):
    with pytest.raises(FruitlibError, match="02-second.ipynb failed") as error:
        series.run_series(tmp_path / "out", only=["02"])
    assert one_line(str(error.value)) and "ValueError" in str(error.value)


def test_nothing_to_run_and_bad_parameter_files(notebooks, tmp_path):
    with pytest.raises(FruitlibError, match="no notebooks"):
        series.run_series(tmp_path / "out", only=["99"])
    bad = tmp_path / "list.yaml"
    bad.write_text("- seed\n- epochs\n")
    with pytest.raises(FruitlibError, match="YAML mapping"):
        series.run_series(tmp_path / "out", str(bad))


def test_a_bad_section_stops_the_series_before_any_notebook_runs(notebooks, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text('"02":\n  mode: full\n')
    with pytest.raises(FruitlibError, match="02-second.ipynb has no parameter mode"):
        series.run_series(tmp_path / "out", str(params))
    assert not (tmp_path / "out" / "01-first.ipynb").exists()  # 01 did not run first


def test_outside_a_checkout_the_series_says_where_the_notebooks_are_expected(monkeypatch, tmp_path):
    monkeypatch.setattr(series, "checkout", lambda: None)
    with pytest.raises(FruitlibError, match="come with the repository") as error:
        series.run_series(tmp_path / "out")
    assert one_line(str(error.value)) and "--notebooks" in str(error.value)
    folder = tmp_path / "mine"
    make_notebook(folder / "01-first.ipynb", PARAMETERS, "print('first', seed, epochs)")
    assert series.run_series(tmp_path / "out", folder=folder) == [(tmp_path / "out" / "01-first.ipynb").resolve()]


def test_a_missing_parameters_file_is_one_line(notebooks, tmp_path):
    with pytest.raises(FruitlibError, match="parameters file .*nowhere.yaml does not exist") as error:
        series.run_series(tmp_path / "out", str(tmp_path / "nowhere.yaml"))
    assert one_line(str(error.value))
