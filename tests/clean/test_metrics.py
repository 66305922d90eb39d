from __future__ import annotations

import numpy as np

from preflab.clean.decisions import decisions
from preflab.clean.metrics import detection_metrics


def test_metrics_by_hand() -> None:
    # truth:   F  F  T  T  T  F  F  F
    # action:  keep flip remove flip keep relabel(0.2) relabel(0.9) remove
    truth = np.array([0, 0, 1, 1, 1, 0, 0, 0], dtype=bool)
    action = np.array(["keep", "flip", "remove", "flip", "keep", "relabel", "relabel",
                       "remove"], dtype=object)
    p_new = np.array([np.nan, np.nan, np.nan, np.nan, np.nan, 0.2, 0.9, np.nan])
    table = decisions(list("abcdefgh"), action, np.where(action == "keep", "", "x"), "t", {},
                      p_new=p_new)
    m = detection_metrics(table, truth)
    # flagged (says the label is wrong): b, c, d, f(0.2), h -> 5; true positives c, d -> 2
    assert m["flagged"] == 5 and m["precision"] == 0.4
    assert m["recall"] == round(2 / 3, 4) and m["f1"] == round(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3), 4)
    # kept: a b d e f g (6); wrong after: b (flipped a true label), e (kept a flip),
    # f (relabelled a true label below 0.5) -> 3/6
    assert m["kept"] == 6 and m["residual_noise"] == 0.5 and m["noise_before"] == 0.375


def test_nothing_flagged_gives_no_precision() -> None:
    table = decisions(["a", "b"], np.array(["keep", "keep"], dtype=object),
                      np.array(["", ""], dtype=object), "t", {})
    m = detection_metrics(table, np.array([True, False]))
    assert m["precision"] is None and m["recall"] == 0 and m["residual_noise"] == 0.5
