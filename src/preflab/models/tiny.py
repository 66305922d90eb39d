"""Tiny random models and a tokenizer built in-process: for tests, no network, ever."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "[CLS]", "[SEP]"]
_CORPUS = [
    "Human: how do I bake bread? Assistant: Mix flour, water, salt and yeast, then bake.",
    "The quick brown fox jumps over the lazy dog. 1 2 3 4 5 6 7 8 9 10",
    "Preferred Response=1 Preferred Response=2 Which reply is better, 1 or 2?",
    "I can't help with that. Sure, here is how. Hello! How are you doing today?",
]


def tiny_tokenizer(texts: Iterable[str] = (), vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer trained on a few sentences, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([*_CORPUS, *texts], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   bos_token="<|endoftext|>", pad_token="<pad>",
                                   cls_token="[CLS]", sep_token="[SEP]")
    fast.chat_template = CHATML
    return fast


def tiny_causal_lm(tokenizer: Any, kind: str = "llama", seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised causal LM (llama or gpt2) of a few hundred thousand weights."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    torch.manual_seed(seed)
    common = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
              "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    if kind == "llama":
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, **common)
    elif kind == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=512, **common)
    else:
        raise ValueError(f"kind must be 'llama' or 'gpt2', got {kind!r}")
    for key, value in overrides.items():
        setattr(config, key, value)
    return AutoModelForCausalLM.from_config(config).eval()


def _bert_config(tokenizer: Any, **overrides: Any) -> Any:
    from transformers import BertConfig

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_encoder(tokenizer: Any, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised BERT encoder."""
    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)
    return AutoModel.from_config(_bert_config(tokenizer, **overrides)).eval()


def tiny_encoder_reward_model(tokenizer: Any, seed: int = 0, **overrides: Any) -> Any:
    """A randomly initialised BERT reward model (sequence classification, one output):
    an encoder reward model, whose position embeddings end hard at
    ``max_position_embeddings`` (set it small to make inputs over the context)."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(_bert_config(tokenizer, num_labels=1,
                                                      **overrides)).eval()


def tiny_reward_model(tokenizer: Any, num_labels: int = 1, seed: int = 0,
                      **overrides: Any) -> Any:
    """A randomly initialised Llama reward model (sequence classification, `num_labels`
    outputs) of the same size as :func:`tiny_causal_lm`."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         num_labels=num_labels)
    for key, value in overrides.items():
        setattr(config, key, value)
    return LlamaForSequenceClassification(config).eval()
