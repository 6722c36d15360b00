"""``maskwatch train-classifier`` (alias ``train``) and ``maskwatch train-detector``: train, then export to ONNX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ._common import fail, need_extra, output_errors, user_errors, warn, writable_dir


def info(line: str) -> None:
    typer.echo(line, err=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("train-classifier")(train_command)
    app.command("train-detector")(train_detector_command)
    app.command("export-classifier")(export_classifier_command)


def _label_map(text: Optional[str]) -> dict[str, str]:
    from ..data.labels import parse_label_map

    try:
        return parse_label_map(text)
    except ValueError as exc:
        raise fail(str(exc)) from None


def train_command(
    out: Path = typer.Option(..., "--out", help="Run directory (config, checkpoints, plots, metrics, ONNX)."),
    voc: List[str] = typer.Option([], "--voc", help="Pascal VOC scene dataset, PATH[:WEIGHT]; repeatable."),
    folders: List[str] = typer.Option([], "--folders", help="Folder-per-class dataset, PATH[:WEIGHT]; repeatable."),
    synth: List[str] = typer.Option([], "--synth", help="Output of `maskwatch synth` (train split only), PATH[:WEIGHT]."),
    arch: str = typer.Option("centerface", help="centerface (face-pretrained transfer learning) or scratch."),
    epochs: int = typer.Option(12, min=1),
    batch_size: int = typer.Option(64, min=2),
    lr: float = typer.Option(2e-3),
    samples_per_epoch: int = typer.Option(6000, min=1, help="Class-balanced draws per epoch."),
    patience: int = typer.Option(4, min=1, help="Early stop after this many epochs without a gain in class-balanced val loss."),
    freeze_backbone_epochs: int = typer.Option(1, min=0, help="Epochs with the pretrained backbone frozen."),
    lowres: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of training crops shrunk to 20-56 px and "
                                 "scaled back (small, blurry faces in scenes)."),
    seed: int = typer.Option(0, help="Seed for splits, sampling and augmentation."),
    split_seed: Optional[int] = typer.Option(None, help="Seed of the train/val/test split alone (default: --seed); "
                                             "runs that differ only in --seed then share their held-out faces."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Allow an existing, non-empty --out."),
    synth_share: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of synth source photos whose masked "
                                      "versions train; those photos are then never unmasked examples."),
    label_map: Optional[str] = typer.Option(None, help="Extra class names, e.g. 'face=no_mask,masked=mask'."),
    relabel: List[Path] = typer.Option([], "--relabel", help="Label corrections, PATH,LABEL per line (LABEL: mask, "
                                       "no_mask, incorrect or drop); repeatable. See relabels/face-mask-folders.csv."),
    cache: Optional[Path] = typer.Option(None, help="Where face crops are cached (default: user cache)."),
) -> None:
    """Train the classifier on VOC scenes and folder-per-class sets (mixed with weights).

    Splits are made per image by SEED (60/15/25 train/val/test, near-duplicates kept together) and
    written to OUT/split_manifest.jsonl; test numbers are on the held-out real faces only.
    """
    need_extra("torch", "train")
    from ..service import train as service
    from ..train.config import TrainConfig

    config = service.ClassifierTrainConfig(
        out=out, sources=[service.Source.parse(kind, v) for kind, values in
                          (("voc", voc), ("folders", folders), ("synth", synth)) for v in values],
        settings=TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                             samples_per_epoch=samples_per_epoch, patience=patience,
                             freeze_backbone_epochs=freeze_backbone_epochs, lowres=lowres, seed=seed,
                             split_seed=split_seed, threads=threads, device=device),
        resume=resume, overwrite=overwrite,
        synth_share=synth_share, label_map=_label_map(label_map), relabel=relabel, cache=cache)
    with user_errors():
        service.check_classifier_config(config)
    writable_dir(out, "the training run")  # before the data loads and the crops are cut
    writable_dir(config.crop_cache(), "the crop cache")
    with user_errors(), output_errors(out, "the training run"):
        result = service.train_classifier(config, log=info, warn=warn)
    test = result.test
    if test:
        per = test["per_class"]
        typer.echo(f"test: accuracy {test['accuracy']:.4f}, mask-vs-no_mask {test['mask_vs_no_mask_accuracy']:.4f}, "
                   + ", ".join(f"{k} P {v['precision']:.3f} R {v['recall']:.3f}" for k, v in per.items()))
    typer.echo(f"model: {result.onnx} (ONNX vs PyTorch max diff {result.onnx_max_abs_diff:.2e})")
    typer.echo(json.dumps({"run": str(out), "best_epoch": result.best_epoch}))


def export_classifier_command(
    runs: List[Path] = typer.Argument(..., help="Run directories of `maskwatch train` (same split)."),
    out: Path = typer.Option(..., "--out", help="ONNX file to write."),
    flip: bool = typer.Option(False, help="Average each crop with its mirror image inside the model."),
) -> None:
    """Export finished runs as one ONNX classifier: their probabilities averaged, optionally over mirrored crops.

    Example: maskwatch export-classifier runs/a runs/b --flip --out mask_classifier.onnx
    """
    need_extra("torch", "train")
    from ..service.train import export_classifier

    with user_errors():
        result = export_classifier(runs, out, flip)
    typer.echo(json.dumps(result))


def train_detector_command(
    out: Path = typer.Option(..., "--out", help="Run directory (config, checkpoints, curves, metrics, ONNX)."),
    voc: List[str] = typer.Option([], "--voc", help="Pascal VOC scenes, PATH[:WEIGHT]; repeatable."),
    yolo: List[str] = typer.Option([], "--yolo", help="YOLO scenes, PATH[:WEIGHT]; repeatable."),
    coco: List[str] = typer.Option([], "--coco", help="COCO .json (or folder with one), PATH[:WEIGHT]; repeatable."),
    synth: List[str] = typer.Option([], "--synth", help="`maskwatch synth` output made from scenes, PATH[:WEIGHT]: "
                                    "trains only; scenes made from val / test photos are dropped."),
    epochs: int = typer.Option(30, min=1),
    batch_size: int = typer.Option(8, min=1),
    crop: int = typer.Option(320, min=64, help="Side of the square training crops (a multiple of 32)."),
    samples_per_epoch: int = typer.Option(400, min=1, help="Training crops per epoch."),
    lr: float = typer.Option(5e-4, help="Learning rate of the pretrained layers (the new state head: 4x)."),
    frozen: int = typer.Option(16, min=0, help="Leading backbone convolutions kept fixed (of 63)."),
    patience: int = typer.Option(6, min=1, help="Early stop after this many epochs without a gain in val 3-class mAP."),
    distill: bool = typer.Option(True, help="Distil the stock CenterFace's heatmap and landmarks on every crop."),
    seed: int = typer.Option(0, help="Seed for sampling and augmentation (the split seed is always the project's, 0)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch."),
    workers: int = typer.Option(1, min=0, help="Data loader processes (augmentation and the teacher run there)."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Allow an existing, non-empty --out."),
    teacher_model: Optional[str] = typer.Option(None, help="Stock CenterFace ONNX (default: from the registry)."),
    init_from: Optional[Path] = typer.Option(None, help="Start from the weights of an earlier run's best.pt "
                                             "(a second stage, e.g. at a lower --lr), not from the stock model."),
    label_map: Optional[str] = typer.Option(None, help="Extra class names, e.g. 'face=no_mask,masked=mask'."),
) -> None:
    """Fine-tune CenterFace on scenes with a mask-state head and export it to ONNX (detect --detector centerface-mask --detector-model OUT/centerface_mask.onnx).

    The project's seeded split (60/15/25 per image, seed 0) decides train and val scenes; the test
    scenes are never read. Example:
    maskwatch train-detector --voc data/kaggle-face-mask --synth synth-scenes --out runs/det
    """
    need_extra("torch", "train")
    from ..service import train as service
    from ..train.config import DetectorTrainConfig

    config = service.DetectorTrainConfig(
        out=out, datasets=[service.Source.parse(kind, v) for kind, values in
                           (("voc", voc), ("yolo", yolo), ("coco", coco)) for v in values],
        synth=[service.Source.parse("synth", v) for v in synth],
        settings=DetectorTrainConfig(epochs=epochs, batch_size=batch_size, crop=crop,
                                     samples_per_epoch=samples_per_epoch, lr=lr, state_lr=lr * 4, frozen=frozen,
                                     patience=patience, distill=distill, seed=seed, threads=threads,
                                     workers=workers, device=device),
        resume=resume, overwrite=overwrite,
        teacher_model=teacher_model, init_from=init_from, label_map=_label_map(label_map))
    with user_errors():
        service.check_detector_config(config)
        result = service.train_detector(config, log=info, warn=warn)
    val = result.val
    typer.echo(f"val (best epoch {result.best_epoch}): 3-class mAP@0.5 {val['map50_3class']:.4f}, "
               f"2-class {val['map50_2class']:.4f}, face AP {val['face_ap50']:.4f}")
    typer.echo(f"model: {result.onnx} (ONNX vs PyTorch max diff {result.onnx_max_abs_diff:.2e})")
