"""The student on transformers: inference, TRL training (SFT, DPO; full or LoRA), training spread over processes."""
