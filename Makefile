# ganneal: common tasks. `make install && make test` is the whole set-up.
PY ?= python

.PHONY: install test test-all lint demo gibbs-check anneal-compare

install:            ## install ganneal and its test tools (editable)
	pip install -e '.[dev]'

test:               ## the test suite (CPU, offline, a few minutes)
	pytest

test-all:           ## including the slow tests
	pytest -m ''

lint:
	ruff check gan_anneal tests

demo:               ## the embedded default: a ring of 8 Gaussians
	ganneal train

gibbs-check:        ## measured vs predicted variance of μ^β on gauss1d (writes runs/gibbs/)
	$(PY) scripts/gibbs_check.py --out runs/gibbs
