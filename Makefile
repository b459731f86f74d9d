# Two targets a newcomer needs: `make series` (the main job) and `make test`. Both set up .venv first.
PYTHON ?= python3
BIN := .venv/bin

.PHONY: setup series test site bundle constraints

# constraints.txt: the versions CI last passed with (`make constraints` rewrites it, and environment.yml's pins)
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv .venv
	$(BIN)/pip install --quiet --constraint constraints.txt --editable ".[notebooks,test]"
	touch $@

setup: $(BIN)/.installed

# Execute every notebook headlessly with papermill (copies in runs/series) and regenerate figures/.
series: setup
	$(BIN)/python -m fruitlib series --out runs/series

# ruff (lint, format check), the unit tests, then the notebooks and their answers (solutions/, after the notebooks
# whose runs they reuse): each executed once by nbval and its outputs compared with the committed ones (finished runs
# in runs/ and the cache are reused, so after `make series` nothing is trained again).
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval notebooks/ solutions/

# The course website, from the notebooks' committed outputs (nothing is executed): site/index.html opens from disk.
# STUDENTS=1 leaves the exercise answers out. Needs npm's registry once, for MathJax (kept in build/npm).
site: setup
	$(BIN)/python website/build.py $(if $(STUDENTS),--students)

# One zip for a classroom without internet: the website, the repository, the data (and ImageNet weights):
#   make bundle DATA=../shared/data/GroceryStoreDataset [WEIGHTS="resnet50-0676ba61.pth ..."] [OUT=fruit.zip]
bundle: site
	$(BIN)/python website/bundle.py --data "$(DATA)" $(if $(WEIGHTS),--weights $(WEIGHTS)) $(if $(OUT),--out "$(OUT)")

# After `make test` passed: write constraints.txt from .venv and pin environment.yml to the same versions
constraints: setup
	$(BIN)/python scripts/constraints.py
