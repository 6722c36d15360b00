"""``maskwatch train``: train the three-state mask classifier and export it to ONNX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ._common import fail, need_extra, user_errors, warn


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("export-classifier")(export_classifier_command)


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
    from ..data.labels import parse_label_map, read_relabels
    from ..registry import cache_dir
    from ..train.data import SourceSpec
    from ..train.loop import TrainConfig
    from ..train.run import run_training

    sources = [SourceSpec.parse("voc", v) for v in voc] + [SourceSpec.parse("folders", f) for f in folders] \
        + [SourceSpec.parse("synth", s) for s in synth]
    if not sources:
        raise fail("give at least one dataset with --voc, --folders or --synth")
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise fail(f"run directory {out} exists and is not empty; use --resume to continue it or --overwrite")
    try:
        mapping = parse_label_map(label_map)
    except ValueError as exc:
        raise fail(str(exc)) from None
    fixes: dict[str, str] = {}
    with user_errors():
        for file in relabel:
            fixes.update(read_relabels(file))
    config = TrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, samples_per_epoch=samples_per_epoch,
                         patience=patience, freeze_backbone_epochs=freeze_backbone_epochs, lowres=lowres, seed=seed, split_seed=split_seed,
                         threads=threads, device=device)
    with user_errors():
        metrics = run_training(sources, out, config, resume=resume, cache=cache or cache_dir().parent / "crops",
                               label_map=mapping, synth_share=synth_share, log=warn,
                               relabels=fixes)
    test = metrics.get("test")
    if test:
        per = test["per_class"]
        typer.echo(f"test: accuracy {test['accuracy']:.4f}, mask-vs-no_mask {test['mask_vs_no_mask_accuracy']:.4f}, "
                   + ", ".join(f"{k} P {v['precision']:.3f} R {v['recall']:.3f}" for k, v in per.items()))
    typer.echo(f"model: {metrics['onnx']} (ONNX vs PyTorch max diff {metrics['onnx_max_abs_diff']:.2e})")
    typer.echo(json.dumps({"run": str(out), "best_epoch": metrics["best_epoch"]}))


def export_classifier_command(
    runs: List[Path] = typer.Argument(..., help="Run directories of `maskwatch train` (same split)."),
    out: Path = typer.Option(..., "--out", help="ONNX file to write."),
    flip: bool = typer.Option(False, help="Average each crop with its mirror image inside the model."),
) -> None:
    """Export finished runs as one ONNX classifier: their probabilities averaged, optionally over mirrored crops.

    Example: maskwatch export-classifier runs/a runs/b --flip --out mask_classifier.onnx
    """
    need_extra("torch", "train")
    from ..train.run import export_runs

    with user_errors():
        result = export_runs(runs, out, flip)
    typer.echo(json.dumps(result))
