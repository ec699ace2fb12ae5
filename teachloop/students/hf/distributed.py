"""One train phase over several processes: `accelerate launch` runs
`teachloop.students.hf.train_worker` N times, and each process trains with the same code as a
single-process phase (TransformersStudent.train / train_preferences; TRL and accelerate
handle the data-parallel part: each process sees its share of every batch and the gradients
are averaged). Rank 0 saves the checkpoint; the parent never loads a model for it.

On GPUs one process drives one GPU (NCCL); a user's `accelerate config` file picks DeepSpeed
ZeRO or FSDP. On a machine without one the processes are CPU processes over gloo.

`train.batch_size` stays the number of examples per optimizer step: each process takes
batch_size / N of them. The result matches a one-process phase in expectation, not bit for
bit: the examples are dealt to the processes differently and gradients are summed in
another order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from teachloop.errors import TeachloopError
from teachloop.io import read_model, write_json
from teachloop.types import Example, TrainConfig

JOB_FILE = "train-job.json"
RESULT_FILE = "train-result.json"
LOG_FILE = "train-worker.log"


class TrainJob(BaseModel):
    """What the worker processes need, written into the phase's temporary folder."""

    model_config = ConfigDict(extra="forbid")

    start: str  # the model folder (or LoRA adapter folder) the phase trains from
    base: str  # the base model folder, which an adapter is loaded over
    sft: list[Example]
    pairs: list[Example]
    train: TrainConfig
    seed: int
    output: Path  # rank 0 saves the trained model here ...
    result: Path  # ... and its losses here


class TrainResult(BaseModel):
    processes: int
    losses: dict[str, float]


class TrainWorkerFailed(TeachloopError):
    def __init__(self, returncode: int, log: Path) -> None:
        super().__init__(f"the training processes failed (exit code {returncode}); see {log}")
        self.returncode = returncode
        self.log = log


def launch_command(job: Path, cfg: TrainConfig) -> list[str]:
    """`accelerate launch` for the worker, with this interpreter (so the same environment)."""
    import torch

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.processes)]
    if cfg.accelerate_config is not None:
        cmd += ["--config_file", str(Path(cfg.accelerate_config).resolve())]
    else:
        # --multi_gpu is accelerate's torchrun launcher; without CUDA each process finds no
        # GPU and the trainer (use_cpu) joins a gloo group. `--cpu` would start one process.
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        if not torch.cuda.is_available():
            threads = max(1, (os.cpu_count() or 1) // cfg.processes)
            cmd += ["--num_cpu_threads_per_process", str(threads)]
    return [*cmd, "-m", "teachloop.students.hf.train_worker", str(job)]


def train_across_processes(
    start: str,
    base: str,
    sft: list[Example],
    pairs: list[Example],
    cfg: TrainConfig,
    seed: int,
    folder: Path,
) -> TrainResult:
    """Train `start` on the examples over `cfg.processes` processes; the trained model is
    saved in `folder / "model"`, the processes' output in `folder / LOG_FILE`. Raises
    TrainWorkerFailed when a process fails or no model was saved."""
    job = TrainJob(
        start=start,
        base=base,
        sft=sft,
        pairs=pairs,
        train=cfg,
        seed=seed,
        output=folder / "model",
        result=folder / RESULT_FILE,
    )
    job_path = folder / JOB_FILE
    write_json(job_path, job)
    log = folder / LOG_FILE
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as out:
        returncode = subprocess.run(
            launch_command(job_path, cfg), stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    if returncode != 0 or not job.result.is_file():
        raise TrainWorkerFailed(returncode, log)
    job_path.unlink()  # the examples are in the data phases already
    result = read_model(job.result, TrainResult)
    job.result.unlink()
    return result
