"""Where model weights come from: the one place that turns a model spec into a folder.

A spec is `embedded` (the shipped skillworld base), a local Hugging Face folder, a `.gguf`
file, or a hub id (needs a network connection). A GGUF file is converted once into an
ordinary HF folder (bf16 safetensors + tokenizer + chat template), cached under
`$TEACHLOOP_CACHE` (default `~/.cache/teachloop`) in a folder keyed by the file's content,
and reused by every later run, student and in-process vLLM teacher alike.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from teachloop.errors import TeachloopError
from teachloop.io import cache_root, file_digest, follow_umask, make_temp_dir, read_text

EMBEDDED = "embedded"
EMBEDDED_BASE = Path(__file__).parent / "assets" / "skillworld-base"


def is_hub_id(spec: str) -> bool:
    """`org/name` (one slash, not a path that exists or starts like one)."""
    return spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


PACKAGED = "packaged:"


def resolve_checkpoint(spec: str) -> str:
    """A local folder to load (or a hub id to download) for a model spec; GGUF files are
    converted on first use. Raises a TeachloopError that says what is wrong otherwise."""
    if spec == EMBEDDED:
        if not (EMBEDDED_BASE / "config.json").exists():
            raise TeachloopError(
                f"the embedded base checkpoint is missing at {EMBEDDED_BASE}; rebuild it with `teachloop build-base`"
            )
        return str(EMBEDDED_BASE)
    if spec.startswith(PACKAGED):  # a model a registry package ships (packaged.py), e.g. in a bench file
        from teachloop.students.packaged import locate

        return resolve_checkpoint(str(locate(spec.removeprefix(PACKAGED))))
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(gguf_to_hf(path))
    if path.is_dir():
        configs = [path / name for name in ("config.json", "adapter_config.json") if (path / name).exists()]
        if not configs:
            raise TeachloopError(f"model folder {path} holds no config.json: not a transformers checkpoint")
        for config in configs:  # read now, before a run writes anything, not when the model loads
            try:
                if not isinstance(json.loads(read_text(config)), dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                raise TeachloopError(f"model folder {path}: {config.name} is not valid JSON ({exc})") from None
        return str(path)
    if path.exists():
        raise TeachloopError(
            f"model {spec!r} is a file but not a .gguf checkpoint; give a model folder or a .gguf file"
        )
    if is_hub_id(spec):
        return spec
    raise TeachloopError(
        f"model {spec!r} not found: give 'embedded', a local model folder, a .gguf file, a hub id (org/name) or "
        "packaged:<name> (`python -m teachloop.students.packaged --help`)"
    )


def gguf_to_hf(path: Path) -> Path:
    """The cached HF folder for a GGUF file, converted now if this content was never seen."""
    target = cache_root() / "gguf" / f"{path.stem}-{file_digest(path)[:16]}"
    if (target / "config.json").exists():
        return target
    print(f"converting {path.name} once, into {target} (bf16) ...", file=sys.stderr, flush=True)
    scratch = make_temp_dir(target.parent, prefix=f".{target.name}.")
    try:
        _convert_gguf(path, scratch)
        follow_umask(scratch)
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished the same conversion first: use theirs
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert_gguf(path: Path, out: Path) -> None:
    """Convert in a child process: de-quantizing holds the whole model in memory for a
    moment, and the process that runs the loop (or serves the teacher) should not keep
    that peak, nor the allocator's arenas it leaves behind."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "teachloop.students.checkpoints", str(path), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise TeachloopError(lines[-1].removeprefix("error: ") if lines else f"converting {path} failed")


SHARD_SIZE = "200MB"


def convert_gguf(path: Path, out: Path) -> None:
    """De-quantize a GGUF checkpoint straight into bfloat16 (transformers converts each
    tensor as it is read, so no float32 copy of the whole model exists) and save it as a
    plain HF folder. Peak: about twice the bf16 model (Qwen2.5-0.5B: 3.1 GB), in the child."""
    try:
        import gguf  # noqa: F401
    except ImportError as exc:
        raise TeachloopError("reading .gguf checkpoints needs the `gguf` package: pip install gguf") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TeachloopError(f"could not read GGUF checkpoint {path}: {exc}") from exc
    # de-quantized on load, it is an ordinary model now; transformers still marks it as GGUF
    # and would refuse to save it
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = torch.bfloat16
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # shards, not one file: a loader that maps the file (vLLM, transformers) holds at most one
    # shard's pages beside the weights it is filling, not a second copy of the whole model
    model.save_pretrained(out, max_shard_size=SHARD_SIZE)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":  # the child process of _convert_gguf: python -m ... GGUF OUT
    try:
        convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))
    except TeachloopError as exc:
        sys.exit(f"error: {exc}")
