#!/usr/bin/env python3
"""Train the demo signal model and export it to ONNX for the `sklearn` inference adapter.

Writes three files into models/ (they are committed; rerun this script to regenerate them):

  signal_model.onnx            StandardScaler + multinomial LogisticRegression, exported with
                               skl2onnx (zipmap off): outputs `label` int64[N] and
                               `probabilities` float[N, 3] (columns in `classes` order)
  signal_model.json            the sidecar the adapter reads: input order, names, threshold
  signal_model.reference.json  ~50 inputs with scikit-learn's own outputs, for tests and for
                               validating that onnxruntime reproduces the model

The training data is synthetic and deterministic (fixed seed): feature vectors
[returns, momentum, volatility, rsi, vwap_gap] with vwap_gap = price / vwap - 1, labelled
{-1, 0, 1} by a noisy rule (trend-following on momentum/returns/vwap_gap, mean-reverting on
RSI). It is a stand-in that exercises the pipeline, not a trading model.

Usage (Python 3.11):
    pip install scikit-learn skl2onnx onnx numpy   # onnxruntime optional: cross-checks the export
    python3 scripts/train_model.py [--out models]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import sklearn
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 20251024
MODEL_VERSION = "1.0.0"
FEATURES = ["returns", "momentum", "volatility", "rsi", "vwap_gap"]
CLASSES = [-1, 0, 1]
THRESHOLD = 0.6
INPUT_NAME = "features"
# onnxruntime-node 1.30 reads these; newer opsets/IR versions would need a newer runtime.
TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}
IR_VERSION = 8


def synthesize(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors on the scales the pipeline produces, and labels from a noisy rule."""
    returns = rng.normal(0.0, 0.004, n)
    momentum = rng.normal(0.0, 0.01, n)
    volatility = rng.lognormal(np.log(0.15), 0.5, n)
    rsi = np.clip(rng.normal(50.0, 15.0, n), 0.0, 100.0)
    vwap_gap = rng.normal(0.0, 0.003, n)
    x = np.column_stack([returns, momentum, volatility, rsi, vwap_gap])
    # float32 is what the adapter feeds the model; train on exactly those values.
    x = x.astype(np.float32).astype(np.float64)

    trend = x[:, 1] / 0.01 + 0.5 * x[:, 0] / 0.004 + 0.5 * x[:, 4] / 0.003
    reversion = -(x[:, 3] - 50.0) / 20.0
    noise = rng.normal(0.0, 0.4, n) * (1.0 + x[:, 2])  # noisier when volatile
    z = trend + 0.6 * reversion + noise
    y = np.where(z > 1.0, 1, np.where(z < -1.0, -1, 0)).astype(np.int64)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "models"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(SEED)
    x_train, y_train = synthesize(rng, 4000)
    x_test, y_test = synthesize(rng, 1000)

    model = Pipeline([
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(C=1.0, max_iter=1000)),
    ])
    model.fit(x_train, y_train)
    assert list(model.classes_) == CLASSES, model.classes_
    train_acc = float(model.score(x_train, y_train))
    test_acc = float(model.score(x_test, y_test))

    onx = convert_sklearn(
        model,
        name="mdp_signal_model",
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURES)]))],
        options={id(model.named_steps["clf"]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.ir_version = IR_VERSION
    onx.doc_string = f"mdp signal model {MODEL_VERSION}: inputs {FEATURES}, classes {CLASSES}"
    onnx.checker.check_model(onx)
    outputs = [o.name for o in onx.graph.output]
    assert outputs == ["label", "probabilities"], outputs
    model_bytes = onx.SerializeToString()
    (out / "signal_model.onnx").write_bytes(model_bytes)

    sidecar = {
        "version": MODEL_VERSION,
        "description": "Demo model trained on synthetic data by scripts/train_model.py; not a trading model.",
        "input_name": INPUT_NAME,
        "inputs": [
            {"name": "returns", "feature": "returns"},
            {"name": "momentum", "feature": "momentum"},
            {"name": "volatility", "feature": "volatility"},
            {"name": "rsi", "feature": "rsi"},
            {"name": "vwap_gap", "derive": "ratio_minus_one", "of": ["price", "vwap"],
             "doc": "price / vwap - 1"},
        ],
        "outputs": {"label": "label", "probabilities": "probabilities"},
        "classes": CLASSES,
        "signal_names": {"1": "ml_up", "-1": "ml_down"},
        "threshold": THRESHOLD,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "training": {
            "script": "scripts/train_model.py",
            "seed": SEED,
            "estimator": "StandardScaler + LogisticRegression(C=1.0)",
            "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "train_accuracy": round(train_acc, 4),
            "holdout_accuracy": round(test_acc, 4),
        },
    }
    (out / "signal_model.json").write_text(json.dumps(sidecar, indent=2) + "\n")

    # Reference rows: a fresh draw, plus a few clear-cut ups and downs so both signals are covered.
    x_ref, _ = synthesize(rng, 44)
    extremes = np.array([
        [0.008, 0.03, 0.1, 25.0, 0.006],
        [0.006, 0.02, 0.2, 35.0, 0.004],
        [0.004, 0.015, 0.5, 45.0, 0.002],
        [-0.008, -0.03, 0.1, 75.0, -0.006],
        [-0.006, -0.02, 0.2, 65.0, -0.004],
        [-0.004, -0.015, 0.5, 55.0, -0.002],
    ]).astype(np.float32).astype(np.float64)
    x_ref = np.vstack([x_ref, extremes])
    ref_labels = model.predict(x_ref)
    ref_probs = model.predict_proba(x_ref)
    reference = {
        "model_version": MODEL_VERSION,
        "inputs_order": FEATURES,
        "note": "inputs are float32-exact; labels/probabilities are scikit-learn's (float64) outputs",
        "inputs": [[float(v) for v in row] for row in x_ref],
        "labels": [int(v) for v in ref_labels],
        "probabilities": [[round(float(p), 9) for p in row] for row in ref_probs],
    }
    (out / "signal_model.reference.json").write_text(json.dumps(reference) + "\n")

    cross_check = "skipped (onnxruntime not installed)"
    try:
        import onnxruntime as ort  # optional
    except ImportError:
        ort = None
    if ort is not None:
        sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        labels, probs = sess.run(None, {INPUT_NAME: x_ref.astype(np.float32)})
        assert (labels == ref_labels).all(), "onnxruntime labels differ from scikit-learn"
        diff = float(np.abs(probs - ref_probs).max())
        assert diff < 1e-5, f"onnxruntime probabilities differ by {diff}"
        cross_check = f"onnxruntime {ort.__version__}: labels equal, max |dp| = {diff:.2e}"

    counts = {c: int((y_train == c).sum()) for c in CLASSES}
    print(f"wrote {out}/signal_model.onnx ({len(model_bytes)} bytes), signal_model.json, signal_model.reference.json")
    print(f"class counts (train) {counts}; accuracy train {train_acc:.4f}, holdout {test_acc:.4f}")
    print(f"reference rows {len(x_ref)}: labels {dict(zip(*np.unique(ref_labels, return_counts=True)))}")
    print(f"cross-check: {cross_check}")


if __name__ == "__main__":
    main()
