"""A run's data as a Hugging Face dataset with a card."""
