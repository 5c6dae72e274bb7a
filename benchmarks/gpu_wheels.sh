#!/usr/bin/env bash
# Download, here (with the package registries), the wheels benchmarks/gpu.sh installs on a GPU machine that has
# no network and only torch, torchvision, numpy, scipy, matplotlib, scikit-learn, rich and pytest: cp312 manylinux.
# antlr4-python3-runtime (hydra's parser) publishes no wheel: one is built with `pip wheel`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python -m pip download --dest .whl --only-binary=:all: --no-deps --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
  "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" "typer>=0.12" "torch-fidelity>=0.3" "mlxtend>=0.23" \
  click shellingham typing_extensions PyYAML tqdm pandas python-dateutil pytz tzdata six \
  "hydra-joblib-launcher>=1.2" joblib "setuptools>=64"
python -m pip wheel --wheel-dir .whl --no-deps "antlr4-python3-runtime==4.9.3"
ls -la .whl
