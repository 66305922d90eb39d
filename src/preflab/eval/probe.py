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

from preflab.eval.metrics import classification_metrics


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


def probe(model: str, train: str | Path, heldout: str | Path, out: str | Path = "probe",
          layers: Sequence[int] | None = None, train_limit: int | None = None,
          heldout_limit: int | None = None, max_length: int = 512, batch_size: int = 8,
          seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Collect activations of `model` on the pairs of `train` and `heldout`, probe every
    layer (default: all), write ``summary.json``."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs
    from preflab.models.causal_lm import fit_max_length, load_policy
    from preflab.models.examples import build_policy_examples
    from preflab.models.hidden import check_layers, decoder_layers, mean_reply_hidden
    from preflab.train.recipe import PolicyConfig

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lm, tokenizer = load_policy(model, PolicyConfig(device=device), trainable=False)
    lm.eval()
    layers = check_layers(lm, layers or range(1, len(decoder_layers(lm)) + 1))
    length = fit_max_length(lm, max_length)
    features, labels, counts = [], [], {}
    for name, path, limit in (("train", train, train_limit), ("heldout", heldout,
                                                               heldout_limit)):
        pairs = sample_pairs(list(iter_pairs(load_pairs(path))), limit, seed)
        rows = [q for p in pairs for q in (p, p.swapped())]  # chosen, then rejected
        examples, report = build_policy_examples(
            rows, tokenizer, length, str(path), with_rejected=False,
            lines=None if limit else [i + 1 for i in range(len(pairs)) for _ in (0, 1)])
        features.append(mean_reply_hidden(lm, examples, layers, tokenizer.pad_token_id,
                                          batch_size, desc=f"{name} activations"))
        labels.append(np.tile([1, 0], len(pairs)))
        counts[name] = {"pairs": len(pairs), "reply_truncated": report.reply_truncated,
                        "context_truncated": report.context_truncated}
    result = fit_probe(features[0], labels[0], features[1], labels[1], layers, seed=seed)
    summary = {"model": model, "train_file": str(train), "heldout_file": str(heldout),
               "pairs": counts, "seed": seed, **result,
               "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
