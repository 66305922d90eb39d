"""DPO training throughput: `preflab dpo` against TRL's DPOTrainer configured to match.

Same model, pairs, token ids, batch size, learning rate and schedule, precision
(fp32 for both: TRL's configs default to bf16 mixed precision, which on a CPU
without bf16 instructions runs many times slower), LoRA configuration (r, alpha,
every linear layer, no dropout, same seed, wrapped before the timer on both
sides), no gradient checkpointing, data in file order, and the reference
log-probs precomputed by both (TRL: ``precompute_ref_log_probs=True``). TRL gets
our token ids through its ``_prepare_dataset``, so both read exactly the same
tokens (contexts longer than --max-length lose their oldest tokens first, for
both). Tokenization, model loading and one warm-up forward/backward are outside
the timed part; reference precomputation and training are inside it. Tokens/s
counts prompt+chosen and prompt+rejected of every pair, the same count for both.

Per model: tokens/s of both, speedup, the loss of the first step of each and the
largest per-step loss difference. Each side runs in its own child process, whose
peak resident memory is reported (``preflab_peak_rss_mb``, ``trl_peak_rss_mb``).
The defaults (64 pairs, batch 4, max length 512) fit this 24 GB, 2-core machine
and are the figures the docs quote: TRL's side at batch 8 and 4096 tokens was
killed for memory at 24 GB resident. Last line: JSON with ``preflab_tokens_per_s``,
``trl_tokens_per_s``, ``speedup``, ``first_loss_diff``, both peak memories (of the
first model, smollm2 with LoRA by default) and every model's figures under
``models``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child
from preflab.data.read import iter_pairs, load_pairs
from preflab.data.sample import sample_pairs
from preflab.models.causal_lm import fit_max_length, load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.logps import collate_policy, reference_logps
from preflab.train.dpo import PreflabDPOTrainer
from preflab.train.recipe import PolicyConfig, training_args

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def losses(history: list[dict[str, Any]]) -> list[float]:
    return [float(h["loss"]) for h in history if "loss" in h]


def warm_up(model: Any, tokenizer: Any) -> None:
    """One small forward and backward before the timer (allocator, kernels)."""
    ids = torch.tensor([tokenizer("warm up " * 16)["input_ids"]])
    model(input_ids=ids.to(next(model.parameters()).device)).logits.sum().backward()
    model.zero_grad(set_to_none=True)


def run_preflab(config: PolicyConfig, examples: list[Any], pad_id: int, out: Path
                ) -> tuple[float, list[float]]:
    model, tokenizer = load_policy(config.policy, config)
    warm_up(model, tokenizer)
    started = time.perf_counter()
    for e, (c, r) in zip(examples, reference_logps(model, examples, pad_id, config.batch_size,
                                                   config.share_prefix), strict=True):
        e.ref_chosen, e.ref_rejected = c, r
    trainer = PreflabDPOTrainer(model=model, args=training_args(out, config, "dpo"),
                                train_dataset=examples,
                                data_collator=lambda b: collate_policy(b, pad_id),
                                config=config, order="sequential")
    trainer.args.save_strategy = "no"
    trainer.train()
    seconds = time.perf_counter() - started
    return seconds, losses(trainer.state.log_history)


def run_trl(config: PolicyConfig, examples: list[Any], tokenizer: Any, out: Path
            ) -> tuple[float, list[float]]:
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from torch.utils.data import SequentialSampler
    from trl import DPOConfig, DPOTrainer

    from preflab.models.offline import load_causal_lm

    data = Dataset.from_dict({"prompt_ids": [e.prefix for e in examples],
                              "chosen_ids": [e.chosen_ids for e in examples],
                              "rejected_ids": [e.rejected_ids for e in examples]})

    class SameInputDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, *args: Any) -> Any:
            return dataset  # already our token ids

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return SequentialSampler(train_dataset if train_dataset is not None
                                     else self.train_dataset)

    model = load_causal_lm(config.policy, dtype=torch.float32)
    if config.lora:  # wrapped before the timer, as preflab's load_policy does
        from peft import get_peft_model

        torch.manual_seed(config.seed)
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=config.lora_r, lora_alpha=config.lora_alpha,
            lora_dropout=0.0, target_modules="all-linear"))
    warm_up(model, tokenizer)
    args = DPOConfig(
        output_dir=str(out), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size, learning_rate=config.lr("dpo"),
        warmup_steps=config.warmup_ratio, lr_scheduler_type="linear", logging_steps=1,
        save_strategy="no", seed=config.seed, data_seed=config.seed, report_to="none",
        use_cpu=not torch.cuda.is_available(), beta=config.beta, loss_type=["sigmoid"],
        max_length=None, precompute_ref_log_probs=True, gradient_checkpointing=False,
        disable_dropout=True, dataloader_num_workers=0, disable_tqdm=False,
        bf16=False, fp16=False)  # TRL defaults to bf16; both run fp32 here
    started = time.perf_counter()
    trainer = SameInputDPOTrainer(model=model, args=args, train_dataset=data,
                                  processing_class=tokenizer)
    trainer.train()
    seconds = time.perf_counter() - started
    return seconds, losses(trainer.state.log_history)


def bench_model(name: str, lora: bool, pairs: list[Any], args: argparse.Namespace
                ) -> dict[str, Any]:
    config = PolicyConfig(policy=name, lora=lora, max_length=args.max_length,
                          batch_size=args.batch_size, epochs=args.epochs,
                          learning_rate=args.lr, seed=args.seed, threads=None)
    model, tokenizer = load_policy(name, config, trainable=False)
    config = replace(config, max_length=fit_max_length(model, config.max_length))
    del model
    # Both read these ids (TRL with max_length=None), truncated or not.
    examples, report = build_policy_examples(pairs, tokenizer, config.max_length, args.data)
    tokens = sum(e.tokens for e in examples) * args.epochs
    result: dict[str, Any] = {"model": name, "lora": lora, "pairs": len(examples),
                              "tokens": tokens, "mean_prompt_tokens": report.mean_prefix,
                              "mean_reply_tokens": report.mean_reply,
                              "max_length": config.max_length,
                              "context_truncated": report.context_truncated,
                              "reply_truncated": report.reply_truncated}
    with tempfile.TemporaryDirectory() as tmp:
        runs, peaks = {}, {}
        for side in args.order.split(","):
            if side == "preflab":
                runs[side], peaks[side] = in_child(run_preflab, config, examples,
                                                   tokenizer.pad_token_id, Path(tmp) / side)
            else:
                runs[side], peaks[side] = in_child(run_trl, config, examples, tokenizer,
                                                   Path(tmp) / side)
    (p_s, p_loss), (t_s, t_loss) = runs["preflab"], runs["trl"]
    result.update({
        "preflab_seconds": round(p_s, 2), "trl_seconds": round(t_s, 2),
        "preflab_tokens_per_s": round(tokens / p_s, 1), "trl_tokens_per_s": round(tokens / t_s, 1),
        "speedup": round(t_s / p_s, 3),
        "preflab_peak_rss_mb": round(peaks["preflab"]), "trl_peak_rss_mb": round(peaks["trl"]),
        "first_loss_preflab": p_loss[0], "first_loss_trl": t_loss[0],
        "first_loss_diff": abs(p_loss[0] - t_loss[0]),
        "max_loss_diff": max(abs(a - b) for a, b in zip(p_loss, t_loss, strict=True)),
        "losses_preflab": p_loss, "losses_trl": t_loss})
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("losses")}),
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=64, help="seeded sample")
    parser.add_argument("--models", default="smollm2-135m-instruct:lora,tiny-gpt2:full",
                        help="MODEL:lora|full, comma-separated; the first one is headlined")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--order", default="trl,preflab", help="which runs first")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    pairs = [p for p in iter_pairs(load_pairs(args.data)) if p.rejected_prompt is None]
    pairs = sample_pairs(pairs, args.pairs, args.seed)
    models = []
    for item in args.models.split(","):
        name, _, mode = item.partition(":")
        models.append(bench_model(name, mode == "lora", pairs, args))
    head = models[0]
    print(json.dumps({"data": args.data, "pairs": len(pairs), "batch_size": args.batch_size,
                      "model": head["model"], "lora": head["lora"],
                      "preflab_tokens_per_s": head["preflab_tokens_per_s"],
                      "trl_tokens_per_s": head["trl_tokens_per_s"], "speedup": head["speedup"],
                      "first_loss_diff": head["first_loss_diff"],
                      "max_length": head["max_length"],
                      "preflab_peak_rss_mb": head["preflab_peak_rss_mb"],
                      "trl_peak_rss_mb": head["trl_peak_rss_mb"],
                      "max_loss_diff": head["max_loss_diff"], "models": models}))


if __name__ == "__main__":
    main()
