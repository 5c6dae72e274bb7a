# ganneal: common tasks. `make install && make test` is the whole set-up.
PY ?= python

.PHONY: install test test-all lint demo gibbs-check
.PHONY: cifar10-table cifar10-table-smoke toy-table mnist-table
.PHONY: bench bench-quick

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

gibbs-check:        ## measured vs predicted variance of μ^β on gauss1d over the paper's λ grid (runs/gibbs/, ~7 min)
	ganneal gibbs-check --grid table1 --out runs/gibbs

# Sweeps and tables: Hydra multiruns through a launcher. RUNS / JOBS / LAUNCHER may be overridden:
#   make toy-table JOBS=2 · make cifar10-table LAUNCHER=slurm SWEEP_ARGS="hydra.launcher.partition=gpu"
# Without them, `ganneal sweep` picks joblib with one single-thread job per core on a CPU, basic on a GPU.
RUNS ?= runs
# committed records: a later `make mnist-table` finishes an interrupted table instead of starting again
MNIST_TABLE ?= records/mnist_table
JOBS ?=
LAUNCHER ?=
SWEEP_ARGS ?=
JOBS_FLAG = $(if $(JOBS),--jobs $(JOBS)) $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(SWEEP_ARGS)

cifar10-table:      ## Tao et al. Table 1: 42 CIFAR-10 runs + IS/FID (GPU, CIFAR-10 on disk, Inception weights)
	ganneal sweep cifar10_table --check
	ganneal sweep cifar10_table --out $(RUNS)/cifar10_table $(JOBS_FLAG)
	ganneal table $(RUNS)/cifar10_table --reference tao2019
	ganneal table $(RUNS)/cifar10_table --reference tao2019 --format markdown --out $(RUNS)/cifar10_table/table.md

cifar10-table-smoke: ## the same pipeline at toy size: fabricated CIFAR-10, 4 steps, stand-in extractor (CPU)
	OMP_NUM_THREADS=1 ganneal sweep cifar10_table_smoke --out $(RUNS)/cifar10_table_smoke $(JOBS_FLAG)
	ganneal table $(RUNS)/cifar10_table_smoke --reference tao2019
	ganneal table $(RUNS)/cifar10_table_smoke --reference tao2019 --format markdown --out $(RUNS)/cifar10_table_smoke/table.md

toy-table:          ## the toy table on ring8: 3 divergences × 6 columns × 3 seeds (CPU, about an hour at two single-thread jobs)
	OMP_NUM_THREADS=1 ganneal sweep toy_table --out $(RUNS)/toy_table $(JOBS_FLAG)
	ganneal table $(RUNS)/toy_table
	ganneal table $(RUNS)/toy_table --format markdown --out $(RUNS)/toy_table/table.md

mnist-table:        ## Table 1 in miniature on mnist_small: each divergence's λ=0/PMA/NMA/OA at seeds 0-3 (its verdict; JSD's also at 4-7), then the static λ at seed 0
	@start=$$(date +%s); \
	for d in jsd rkl wgan; do \
	  OMP_NUM_THREADS=1 ganneal sweep mnist_table --out $(MNIST_TABLE) --divergences $$d --columns 0,PMA,NMA,OA $(JOBS_FLAG) || exit 1; \
	done && \
	OMP_NUM_THREADS=1 ganneal sweep mnist_table_seeds_4-7 --out $(MNIST_TABLE)/seeds_4-7 $(JOBS_FLAG) && \
	OMP_NUM_THREADS=1 ganneal sweep mnist_table --seeds 0 --out $(MNIST_TABLE) $(JOBS_FLAG) && \
	ganneal table $(MNIST_TABLE) --metric fid --metric is --metric precision --metric recall --reference tao2019 --against 0 && \
	ganneal table $(MNIST_TABLE) --format markdown --out $(MNIST_TABLE)/table.md && \
	echo "make mnist-table: $$(( ($$(date +%s) - start) / 60 )) min of wall time for this invocation"

# Benchmarks: ganneal's step vs a bare PyTorch loop, FLOP/s vs the matmul peak, evaluate vs
# torch-fidelity, parallel sweeps. Prints a table, writes benchmarks/results/bench-<time>.json (docs/benchmarks.md).
bench:              ## the benchmark table (CPU, a few minutes; run it with nothing else busy)
	$(PY) benchmarks/bench.py

bench-quick:        ## the same at smoke size (fewer repeats)
	$(PY) benchmarks/bench.py --quick
