"""Inference shared by the teacher and the student's evaluation: vLLM engine options for this
machine (`vllm_options`), Ray Data LLM processors (`ray_data`) and a local `vllm serve`
(`vllm_server`). Agents and students both import from here, never from each other."""
