"""One process of a train phase spread over several (see teachloop.students.hf.distributed):

    accelerate launch --num_processes N ... -m teachloop.students.hf.train_worker <job.json>

Every process loads the start checkpoint and trains it with the single-process code; the
trainers find the process group accelerate set up and split each batch between them.
Rank 0 saves the model and the losses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from teachloop.io import read_model, write_json
from teachloop.students.hf.distributed import TrainJob, TrainResult
from teachloop.students.hf.student import TransformersStudent, quiet_hf_libraries


def main(job_path: str) -> None:
    import torch.distributed as dist
    from accelerate import PartialState

    quiet_hf_libraries()
    job = read_model(Path(job_path), TrainJob)
    state = PartialState(cpu=not _cuda())
    # batch_size counts examples per optimizer step over all processes
    cfg = job.train.model_copy(update={"batch_size": job.train.batch_size // state.num_processes})
    student = TransformersStudent.load(job.start, base=job.base)
    scratch = job.output.parent
    student.train(job.sft, cfg, seed=job.seed, workdir=scratch)
    student.train_preferences(job.pairs, cfg, seed=job.seed, workdir=scratch)
    if state.is_main_process:
        student.save(job.output)
        write_json(job.result, TrainResult(processes=state.num_processes, losses=student.train_losses))
    state.wait_for_everyone()
    if dist.is_initialized():
        dist.destroy_process_group()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: accelerate launch ... -m teachloop.students.hf.train_worker <job.json>")
    main(sys.argv[1])
