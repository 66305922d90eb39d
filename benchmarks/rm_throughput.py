"""Reward-model training throughput: `preflab train-rm` against TRL's RewardTrainer.

TRL is configured to match: the same base and its seeded scalar head (both built by
preflab's ``load_base`` and ``prepare_trainable``, so the initial weights are
identical), the same token ids (preflab's ``build_examples``, handed to TRL as
``chosen_ids``/``rejected_ids`` with ``max_length=None``, so nothing is filtered),
LoRA (r, alpha, no dropout, the head trained) or full fine-tuning, batch size,
learning rate, linear schedule with the same warm-up, AdamW, fp32, no gradient
checkpointing, the model's own dropout kept on both sides, and the same
length-grouped batch order (TRL gets the ``LengthGroupedSampler`` preflab uses,
drawn from the same seeded generator). The difference is how a batch runs: TRL
pads prompt+chosen and prompt+rejected as 2B whole rows; preflab runs each pair's
prompt once and both replies against its KV cache, gradients through the cache,
and reads the reward at each reply's last token only.

Tokens/s counts, for both sides, the tokens of prompt+chosen and prompt+rejected
of every pair (the whole sequences a reward model reads, padding excluded), times
the epochs: the same count for both, so the ratio of tokens/s is the ratio of
training times. Only ``trainer.train()`` is timed on each side (model loading,
tokenization and saving are outside). Each side runs in its own child process,
whose peak resident memory is reported (preflab's up to the end of ``train-rm``,
before the check below). The per-step losses are recorded from each
trainer's loss function at every step.

After training, preflab's saved model is loaded with
``AutoModelForSequenceClassification`` and its rewards compared with preflab's
scorer (``scorer_max_abs_diff``).

Last line: JSON with ``preflab_tokens_per_s``, ``trl_tokens_per_s``, ``speedup``,
``first_loss_diff``, both sides' ``peak_rss_mb`` (of the first model, smollm2 with
LoRA by default) and every model's figures under ``models``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def record_losses(trainer_class: type) -> list[float]:
    """Patch `trainer_class.compute_loss` to append each training step's loss."""
    seen: list[float] = []
    original = trainer_class.compute_loss

    def compute_loss(self: Any, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, model, inputs, *args, **kwargs)
        if model.training:
            loss = out[0] if isinstance(out, tuple) else out
            seen.append(float(loss.detach()))
        return out

    trainer_class.compute_loss = compute_loss
    return seen


def reward_config(name: str, lora: bool, args: argparse.Namespace) -> Any:
    from preflab.train.config import RewardConfig

    return RewardConfig(base=name, lora=lora, lora_dropout=0.0, labels="hard",
                        max_length=args.max_length, batch_size=args.batch_size,
                        epochs=args.epochs, learning_rate=args.lr, seed=args.seed,
                        save_steps=10**9, threads=args.threads)


def run_preflab(name: str, lora: bool, data: str, out: str, args: argparse.Namespace
                ) -> dict[str, Any]:
    """`preflab train-rm` on the sampled pairs, then the saved model checked against
    the scorer."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from preflab.data.messages import as_messages
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.engine.reward import reward_input
    from preflab.eval.reward_model import score_pairs
    from preflab.models.offline import load_tokenizer
    from preflab.train.reward_model import PairwiseRewardTrainer, train_rm

    losses = record_losses(PairwiseRewardTrainer)
    config = reward_config(name, lora, args)
    summary = train_rm(data, out, config, resume=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the check
    stage = summary["stages"][0]
    pairs = list(iter_pairs(load_pairs(data)))[:args.check_pairs]
    table = score_pairs(out, pairs, threads=args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = load_tokenizer(out)
    plain = []
    with torch.no_grad():
        for p in pairs:
            for context, reply in ((p.prompt, p.chosen), (p.rejected_context, p.rejected)):
                ids = reward_input(tokenizer, False, as_messages(context), reply,
                                   args.max_length).ids
                plain.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    engine = [v for c, r in zip(table["r_chosen"], table["r_rejected"], strict=True)
              for v in (c, r)]
    return {"seconds": stage["seconds"], "losses": losses, "peak_rss_mb": peak,
            "share_prefix": stage["share_prefix"],
            "scorer_max_abs_diff": max(abs(a - b) for a, b in zip(plain, engine, strict=True))}


def run_trl(name: str, lora: bool, data: str, out: str, args: argparse.Namespace
            ) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import RewardConfig, RewardTrainer

    from preflab.data.read import iter_pairs, load_pairs
    from preflab.models.reward_base import load_base, prepare_trainable
    from preflab.models.runtime import Runtime
    from preflab.train.rm_data import build_examples

    Runtime(threads=args.threads).apply_threads()
    config = reward_config(name, lora, args)
    model, tokenizer, encoder = load_base(config)  # as train-rm: same seeded head
    examples, _ = build_examples(list(iter_pairs(load_pairs(data))), tokenizer, encoder,
                                 config.max_length, labels="hard", source=data)
    model = prepare_trainable(model, config)  # same LoRA initialisation
    dataset = Dataset.from_dict({"chosen_ids": [e.chosen_ids for e in examples],
                                 "rejected_ids": [e.rejected_ids for e in examples]})
    lengths = [max(len(e.chosen_ids), len(e.rejected_ids)) for e in examples]

    class SameOrderRewardTrainer(RewardTrainer):
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return LengthGroupedSampler(self.args.train_batch_size
                                        * self.args.gradient_accumulation_steps,
                                        lengths=lengths)

    losses = record_losses(SameOrderRewardTrainer)
    targs = RewardConfig(
        output_dir=out, num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr(encoder),
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        lr_scheduler_type="linear", logging_steps=5, save_strategy="no", seed=config.seed,
        data_seed=config.seed, report_to="none", use_cpu=not torch.cuda.is_available(),
        bf16=False, fp16=False, gradient_checkpointing=False, disable_dropout=False,
        max_length=None, dataloader_num_workers=0, disable_tqdm=False)
    trainer = SameOrderRewardTrainer(model=model, args=targs, train_dataset=dataset,
                                     processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - started, "losses": losses}


def bench_model(name: str, lora: bool, data: str, args: argparse.Namespace
                ) -> dict[str, Any]:
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.models.offline import load_tokenizer
    from preflab.train.rm_data import build_examples

    tokenizer = load_tokenizer(name)
    examples, report = build_examples(list(iter_pairs(load_pairs(data))), tokenizer, False,
                                      args.max_length, labels="hard", source=data)
    tokens = int(sum(len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
                 * args.epochs)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.order.split(","):
            fn = run_preflab if side == "preflab" else run_trl
            result, peak = in_child(fn, name, lora, data, str(Path(tmp) / side), args)
            # preflab's side reports its peak before the scorer check loads a 2nd model
            runs[side] = {**result, "peak_rss_mb": round(result.get("peak_rss_mb", peak))}
    p, t = runs["preflab"], runs["trl"]
    n = min(len(p["losses"]), len(t["losses"]))
    result = {
        "model": name, "lora": lora, "pairs": report.n_pairs, "tokens": tokens,
        "mean_tokens": report.mean_tokens, "max_length": args.max_length,
        "context_truncated": report.context_truncated,
        "reply_truncated": report.reply_truncated, "share_prefix": p["share_prefix"],
        "preflab_seconds": round(p["seconds"], 2), "trl_seconds": round(t["seconds"], 2),
        "preflab_tokens_per_s": round(tokens / p["seconds"], 1),
        "trl_tokens_per_s": round(tokens / t["seconds"], 1),
        "speedup": round(t["seconds"] / p["seconds"], 3),
        "preflab_peak_rss_mb": p["peak_rss_mb"], "trl_peak_rss_mb": t["peak_rss_mb"],
        "first_loss_preflab": p["losses"][0], "first_loss_trl": t["losses"][0],
        "first_loss_diff": abs(p["losses"][0] - t["losses"][0]),
        "max_loss_diff": max(abs(a - b) for a, b in zip(p["losses"][:n], t["losses"][:n],
                                                        strict=True)),
        "steps": [len(p["losses"]), len(t["losses"])],
        "scorer_max_abs_diff": p["scorer_max_abs_diff"]}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="pairs file (JSONL, HH...)")
    parser.add_argument("--pairs", type=int, default=64, help="seeded sample")
    parser.add_argument("--models", default="smollm2-135m-instruct:lora,tiny-gpt2:full",
                        help="MODEL:lora|full, comma-separated; the first one is headlined")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=None,
                        help="default: train-rm's (2e-4 LoRA, 1e-5 full decoder)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--order", default="trl,preflab", help="which runs first")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-pairs", type=int, default=8,
                        help="pairs scored to compare the saved model with the scorer")
    args = parser.parse_args()

    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs
    from preflab.data.write import write_pairs

    pairs = sample_pairs(list(iter_pairs(load_pairs(args.data))), args.pairs, args.seed)
    models = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "pairs.jsonl")
        write_pairs(pairs, data)
        for item in args.models.split(","):
            name, _, mode = item.partition(":")
            models.append(bench_model(name, mode == "lora", data, args))
    head = models[0]
    print(json.dumps({"data": args.data, "pairs": len(pairs), "batch_size": args.batch_size,
                      "max_length": args.max_length, "model": head["model"],
                      "lora": head["lora"], **{k: head[k] for k in (
                          "preflab_tokens_per_s", "trl_tokens_per_s", "speedup",
                          "first_loss_diff", "max_loss_diff", "preflab_peak_rss_mb",
                          "trl_peak_rss_mb", "scorer_max_abs_diff")},
                      "models": models}))


if __name__ == "__main__":
    main()
