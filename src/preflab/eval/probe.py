"""A linear probe on a model's activations that tells chosen from rejected replies.

Features: the mean hidden state over a reply's tokens at each layer (chosen replies
labelled 1, rejected 0). Per layer, a standardised logistic regression is fitted on
the training pairs; the layer is picked by cross-validated accuracy on the training
pairs only, and reported on held-out pairs as accuracy, precision, recall, F1, AUC
and cross-entropy, with the pairwise accuracy (the chosen reply of a pair scored
above its rejected one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preflab.eval.config import ProbeConfig
from preflab.eval.metrics import classification_metrics
from preflab.settings import write_config


def _probe_model(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000,
                                                              random_state=seed))


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray, layers: Sequence[int], folds: int = 3, seed: int = 0
              ) -> dict[str, Any]:
    """Probe every layer of features [N, layers, H]; choose by `folds`-fold CV accuracy
    on the training rows. Rows come in (chosen, rejected) order per pair."""
    from sklearn.model_selection import GroupKFold, cross_val_score

    groups = np.arange(len(y_train)) // 2  # a pair's two replies stay in one fold
    per_layer = {}
    for j, layer in enumerate(layers):
        cv = cross_val_score(_probe_model(seed), x_train[:, j], y_train, groups=groups,
                             cv=GroupKFold(folds), scoring="accuracy")
        clf = _probe_model(seed).fit(x_train[:, j], y_train)
        p = clf.predict_proba(x_test[:, j])[:, 1]
        per_layer[layer] = {"cv_accuracy": float(cv.mean()),
                            **classification_metrics(y_test, p),
                            "pairwise_accuracy": float(np.mean(p[0::2] > p[1::2])
                                                       + 0.5 * np.mean(p[0::2] == p[1::2]))}
    best = max(per_layer, key=lambda k: per_layer[k]["cv_accuracy"])
    return {"selected_layer": best, "heldout": per_layer[best], "layers": per_layer}


def probe(train: str | Path, heldout: str | Path, out: str | Path = "probe",
          config: ProbeConfig | None = None) -> dict[str, Any]:
    """Collect activations of ``config.model`` on the pairs of `train` and `heldout`,
    probe every layer of ``config.layers`` (default: all), write ``summary.json`` and
    ``config.toml``."""
    from preflab.models.causal_lm import fit_max_length, load_policy
    from preflab.models.hidden import check_layers, decoder_layers
    from preflab.train.config import PolicyConfig

    c = config or ProbeConfig()
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_config(c, out)
    lm, tokenizer = load_policy(c.model, PolicyConfig(device=c.device), trainable=False)
    lm.eval()
    layers = check_layers(lm, c.layers or range(1, len(decoder_layers(lm)) + 1))
    length = fit_max_length(lm, c.max_length)
    sides = {name: activations(lm, tokenizer, name, path, sample, layers, length, c)
             for name, path, sample in (("train", train, c.train_sample),
                                        ("heldout", heldout, c.heldout_sample))}
    (x_train, y_train, _), (x_test, y_test, _) = sides["train"], sides["heldout"]
    result = fit_probe(x_train, y_train, x_test, y_test, layers, c.folds, c.seed)
    summary = {"model": c.model, "train_file": str(train), "heldout_file": str(heldout),
               "pairs": {name: side[2] for name, side in sides.items()}, "seed": c.seed,
               **result, "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def activations(lm: Any, tokenizer: Any, name: str, path: str | Path, sample: int | None,
                layers: Sequence[int], length: int, config: ProbeConfig
                ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Mean reply activations [2 * pairs, layers, H] of the pairs of `path` (a seeded
    sample of `sample` of them), chosen then rejected; their labels (1, 0); counts."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs
    from preflab.models.examples import build_policy_examples
    from preflab.models.hidden import mean_reply_hidden

    pairs = sample_pairs(list(iter_pairs(load_pairs(path))), sample, config.seed)
    rows = [q for p in pairs for q in (p, p.swapped())]  # chosen, then rejected
    examples, report = build_policy_examples(
        rows, tokenizer, length, str(path), with_rejected=False,
        lines=None if sample else [i + 1 for i in range(len(pairs)) for _ in (0, 1)])
    features = mean_reply_hidden(lm, examples, layers, tokenizer.pad_token_id,
                                 config.batch_size, desc=f"{name} activations")
    counts = {"pairs": len(pairs), "reply_truncated": report.reply_truncated,
              "context_truncated": report.context_truncated}
    return features, np.tile([1, 0], len(pairs)), counts
