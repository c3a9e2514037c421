"""Recover a trainable FP32 YOLOv8 checkpoint from a dequantised INT8 ONNX export.

Teams often keep only deployment exports. An onnxruntime dynamic-INT8 export of an Ultralytics
YOLOv8 stores every convolution as `ConvInteger` with uint8 weights named after the PyTorch
state-dict entry (`model.N...conv.weight_quantized` + `_scale` + `_zero_point`) and an fp32 bias
with BatchNorm already folded in. Dequantising `(q - zero_point) * scale` gives back the fused
weights; each BatchNorm is then set so that it leaves the fused convolution unchanged.

Identity BatchNorm is exact in eval mode but wrong in train mode (batch statistics would undo
the folding), so `calibrate_batchnorm` measures each convolution's output statistics on real
training images and sets running mean/var plus affine weight/bias so that the eval function is
unchanged while train-mode normalisation becomes (almost) a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streetwatch.detector.errors import ModelError
from streetwatch.detector.offline import prepare_offline


def _dequantised_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"{onnx_path}: not a readable ONNX file ({exc})") from exc
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if name.endswith(".weight_quantized"):
            stem = name[: -len("_quantized")]
            scale = arrays[stem + "_scale"].astype(np.float32)
            zero = arrays[stem + "_zero_point"].astype(np.float32)
            weights[stem] = (value.astype(np.float32) - zero) * scale
        elif name.endswith(".weight") and value.dtype == np.float32 and value.ndim == 4:
            weights[name] = value  # an fp32 (not quantised) convolution
        elif name.endswith(".bias") and name.startswith("model."):
            weights[name] = value.astype(np.float32)
    if not any(k.endswith(".weight") for k in weights):
        raise ModelError(f"{onnx_path}: no convolution weights found; expected an Ultralytics YOLO ONNX export")
    return weights


def export_class_names(onnx_path: Path) -> dict[int, str]:
    """The class names an Ultralytics export records in its metadata ({} when absent)."""
    import ast

    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    try:
        return {int(k): str(v) for k, v in ast.literal_eval(meta.get("names", "{}")).items()}
    except (ValueError, SyntaxError):
        return {}


def retarget_classes(model, source_names: dict[int, str], target_names: list[str]):
    """Give `model` the classes `target_names`, keeping the export's rows for classes it knew.

    Context classes (person, car, bus...) then start as good as the export's detector instead
    of from zero, which matters when the new dataset holds few of them; new classes
    (garbage, street_vendor) start from Ultralytics' usual prior bias. Only the last class
    convolution of each level is replaced, so the class branch keeps the export's width (80 for
    a COCO YOLOv8n); train it with `training.train.KeepModelTrainer`, which does not rebuild it.
    """
    import math

    import torch
    from torch import nn

    head = model.model[-1]
    by_name = {v: k for k, v in source_names.items()}
    nc = len(target_names)
    # an end-to-end head (YOLO26) has a second, one-to-one class branch: it is retargeted the same way
    branches = [(level, branch) for cv3 in (head.cv3, getattr(head, "one2one_cv3", None)) if cv3 is not None
                for level, branch in enumerate(cv3)]
    with torch.no_grad():
        for level, branch in branches:
            old = branch[-1]
            new = nn.Conv2d(old.in_channels, nc, 1).to(old.weight.dtype)
            prior = math.log(5 / nc / (640 / float(head.stride[level])) ** 2)  # Detect.bias_init
            new.weight.normal_(0, 0.01)
            new.bias.fill_(prior)
            for row, name in enumerate(target_names):
                if name in by_name:
                    new.weight[row].copy_(old.weight[by_name[name]])
                    new.bias[row].copy_(old.bias[by_name[name]])
            branch[-1] = new
    head.nc, head.no = nc, nc + head.reg_max * 4
    model.nc = nc
    model.yaml["nc"] = nc
    model.names = dict(enumerate(target_names))
    return model.eval()


def recover_from_onnx(onnx_path: Path, arch: str = "yolov8n.yaml", nc: int = 80):
    """Build `arch` and load the export's weights into it. Returns an Ultralytics DetectionModel."""
    prepare_offline()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    weights = _dequantised_weights(Path(onnx_path))
    model = DetectionModel(arch, nc=nc, verbose=False)
    state = model.state_dict()
    loaded = 0
    with torch.no_grad():
        for key, value in weights.items():
            if key.endswith(".conv.weight"):  # Conv + BatchNorm block: BN folded into the export
                prefix = key[: -len(".conv.weight")]
                bias = weights.get(prefix + ".conv.bias")
                if key not in state or state[key].shape != value.shape or bias is None:
                    continue
                state[key].copy_(torch.from_numpy(value))
                eps = model.get_submodule(prefix + ".bn").eps
                state[prefix + ".bn.weight"].fill_(1.0)
                state[prefix + ".bn.bias"].copy_(torch.from_numpy(bias))
                state[prefix + ".bn.running_mean"].zero_()
                state[prefix + ".bn.running_var"].fill_(1.0 - eps)  # sqrt(var + eps) == 1
                loaded += 1
            elif key.endswith(".weight") and key in state and state[key].shape == value.shape:
                state[key].copy_(torch.from_numpy(value))  # plain head convolution with its own bias
                bias_key = key[: -len(".weight")] + ".bias"
                if bias_key in weights and bias_key in state:
                    state[bias_key].copy_(torch.from_numpy(weights[bias_key]))
                loaded += 1
    convs = sum(1 for k in state if k.endswith(".weight") and state[k].ndim == 4) - 1  # minus the fixed DFL conv
    if loaded < convs:
        raise ModelError(f"{onnx_path}: only {loaded}/{convs} convolutions match {arch}; is it the same architecture?")
    model.load_state_dict(state)
    return model.eval()


def calibrate_batchnorm(model, images: Sequence[Path], imgsz: int = 320, batch: int = 16) -> int:
    """Set each BatchNorm from its convolution's output statistics on `images`; eval output unchanged.

    Returns the number of BatchNorm layers calibrated.
    """
    import cv2
    import torch

    pairs = [(m.conv, m.bn) for m in model.modules() if hasattr(m, "conv") and hasattr(m, "bn")]
    sums: dict[int, list] = {}

    def hook(idx):
        def record(_module, _inp, out):
            flat = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
            acc = sums.setdefault(idx, [0, 0.0, 0.0])
            acc[0] += flat.shape[1]
            acc[1] = acc[1] + flat.sum(1)
            acc[2] = acc[2] + (flat * flat).sum(1)

        return record

    handles = [conv.register_forward_hook(hook(i)) for i, (conv, _bn) in enumerate(pairs)]
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch):
                tensors = []
                for path in images[start : start + batch]:
                    img = cv2.imread(str(path))
                    if img is None:
                        continue
                    img = cv2.resize(img, (imgsz, imgsz))[:, :, ::-1]
                    tensors.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255)
                if tensors:
                    model(torch.stack(tensors))
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        for i, (_conv, bn) in enumerate(pairs):
            if i not in sums:
                continue
            n, s, sq = sums[i]
            mean = (s / n).float()
            var = (sq / n - (s / n) ** 2).clamp(min=1e-6).float()
            # eval before: (x - 0) / sqrt(1) * w + b with w == 1; keep y = w_old*(x-m_old)/sd_old + b_old
            old_scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            old_shift = bn.bias - bn.running_mean * old_scale
            new_sd = torch.sqrt(var + bn.eps)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(old_scale * new_sd)
            bn.bias.copy_(old_shift + mean * old_scale)
    return len(sums)


def save_checkpoint(model, path: Path) -> Path:
    """Write `model` as an Ultralytics checkpoint that `YOLO(path)` loads and fine-tunes."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "epoch": -1, "date": None, "version": None}, path)
    return path


def init_checkpoint_from_onnx(
    onnx_path: Path,
    out_path: Path,
    calibration_images: Sequence[Path],
    class_names: list[str] | None = None,
    imgsz: int = 320,
) -> Path:
    """Recover, retarget to `class_names`, calibrate on the training images, save."""
    model = recover_from_onnx(onnx_path)
    if class_names:
        model = retarget_classes(model, export_class_names(onnx_path) or {}, class_names)
    if calibration_images:
        calibrate_batchnorm(model, calibration_images, imgsz=imgsz)
    return save_checkpoint(model, out_path)
