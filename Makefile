# Two targets a newcomer needs: `make series` (the main job) and `make test`. Both set up .venv first.
PYTHON ?= python3
BIN := .venv/bin

.PHONY: setup series test

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv .venv
	$(BIN)/pip install --quiet --editable ".[test]"
	touch $@

setup: $(BIN)/.installed

# Execute every notebook headlessly with papermill (copies in runs/series) and regenerate figures/.
series: setup
	$(BIN)/python -m fruitlib series --out runs/series

# Unit tests, then the notebooks: executed with papermill, then re-executed and compared by nbval.
test: setup
	$(BIN)/python -m pytest tests
	$(BIN)/python -m fruitlib series --out runs/test-series
	$(BIN)/python -m pytest --nbval notebooks/
