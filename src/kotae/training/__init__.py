"""LoRA fine-tuning: data checks, hyperparameters, the training loop (run in its own process)
and the conversion of adapters to GGUF for llama.cpp."""
