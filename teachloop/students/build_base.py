"""Build the embedded student's base checkpoint, reproducibly (`teachloop build-base`).

A tiny Llama (about 1 M parameters, character tokenizer) is trained from scratch with
TRL SFT on skillworld data in which two skills, `reverse` and `max`, appear only as a
trickle. The result is competent on the other skills and weak on those two, so the
closed loop has real gaps to close.
"""

from __future__ import annotations

import random
from pathlib import Path

from teachloop.environments.skillworld import SKILLS, SkillWorld
from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries
from teachloop.students.tiny import build_char_tokenizer, build_tiny_llama
from teachloop.types import Example, TrainConfig

WEAK_SKILLS = ("reverse", "max")
WEAK_SHARE = 0.005  # relative weight of a weak skill against 1.0 for the others
ROUNDS = 5
EXAMPLES_PER_ROUND = 10_000
BASE_TRAIN = TrainConfig(epochs=1, learning_rate=1e-3, batch_size=64)


def base_training_data(env: SkillWorld, n: int, rng: random.Random) -> list[Example]:
    excluded = {ex.prompt for ex in env.eval_set()}
    skills = list(SKILLS)
    weights = [WEAK_SHARE if s in WEAK_SKILLS else 1.0 for s in skills]
    data: list[Example] = []
    while len(data) < n:
        example = env.make(rng.choices(skills, weights)[0], rng)
        if example.prompt not in excluded:
            data.append(example)
    return data


def build_base_checkpoint(
    out: Path, seed: int = 0, rounds: int = ROUNDS, progress: bool = False
) -> TransformersStudent:
    import torch

    quiet_hf_libraries()
    torch.manual_seed(seed)
    env = SkillWorld()
    tokenizer = build_char_tokenizer()
    student = TransformersStudent(build_tiny_llama(tokenizer, seed=seed), tokenizer, source="scratch")
    rng = random.Random(seed)
    for index in range(rounds):
        student.train(
            base_training_data(env, EXAMPLES_PER_ROUND, rng), BASE_TRAIN, seed=seed * 100 + index, progress=progress
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student.save(out)
    return student
