"""Evaluation: reward-model accuracy, calibration and robustness."""
