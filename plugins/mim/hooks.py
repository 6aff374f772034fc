"""``ReconstructionHook``: pictures of what a masked-image model fills in,
written to the work dir and to the visualizer's backends (TensorBoard)."""
from __future__ import annotations

import os

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from perception.registry import HOOKS
from perception.visualization.draw import image_grid, normalized_to_rgb


def to_display(images: torch.Tensor, preprocessor) -> np.ndarray:
    """Normalized (B, C, H, W) -> uint8 (B, H, W, 3) for pictures, undoing
    the preprocessor's mean/std (the core's drawing primitive)."""
    mean = getattr(preprocessor, 'mean', None)
    std = getattr(preprocessor, 'std', None)
    return normalized_to_rgb(
        images, None if mean is None else mean.flatten().tolist(),
        None if std is None else std.flatten().tolist(),
        windowed=bool(getattr(preprocessor, 'windows', None)))


def reconstruction_grid(model, images: torch.Tensor, seed: int = 0,
                        gap: int = 2) -> np.ndarray:
    """One row per image: original | masked | reconstruction |
    reconstruction pasted into the visible patches.

    Returns:
        uint8 (rows * (H + gap), 4 * (W + gap), 3).
    """
    out = model.reconstruct(images, seed=seed)
    pre = model.data_preprocessor
    mask = out['mask'].cpu()                           # 1 = hidden
    recon = out['reconstruction'].cpu()
    visible = images.detach().float().cpu()
    pasted = visible * (1 - mask) + recon * mask
    original = to_display(visible, pre)
    hidden = mask.permute(0, 2, 3, 1).numpy().astype(bool)[..., 0]
    masked = original.copy()
    # hidden patches in slate blue: tells them from black air on CT
    masked[hidden] = (70, 80, 130)
    panels = [original, masked, to_display(recon, pre),
              to_display(pasted, pre)]
    return image_grid([[panel[row] for panel in panels]
                       for row in range(len(original))], gap)


@HOOKS.register_module()
class ReconstructionHook(Hook):
    """Every ``interval`` training iterations (and after the last), write
    ``work_dir/reconstructions/iter_<n>.png`` and add it to the runner's
    visualizer (TensorBoard when configured).

    The images are the first ``num_images`` of the validation set (the
    training batch when there is none), fixed for the run, with fixed masks,
    so pictures from different iterations compare.

    Args:
        interval: iterations between pictures.
        num_images: rows in the grid.
        seed: mask seed.
        out_dir: folder under the work dir.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 500, num_images: int = 4,
                 seed: int = 0, out_dir: str = 'reconstructions') -> None:
        self.interval = interval
        self.num_images = num_images
        self.seed = seed
        self.out_dir = out_dir
        self._images: torch.Tensor | None = None
        self.written: list[str] = []

    def _fixed_images(self, runner, model, data_batch) -> torch.Tensor:
        if self._images is None:
            batch = None
            loader = getattr(runner, '_val_dataloader', None)
            if loader is not None:
                try:
                    loader = runner.val_dataloader
                    batch = next(iter(loader))
                except Exception:  # no usable val set: use the train batch
                    batch = None
            batch = batch or data_batch
            data = model.data_preprocessor(batch, False)
            self._images = data['inputs'][:self.num_images].detach()
        return self._images

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not (self.every_n_train_iters(runner, self.interval)
                or self.is_last_train_iter(runner)):
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        images = self._fixed_images(runner, model, data_batch)
        was_training = model.training
        model.eval()
        try:
            grid = reconstruction_grid(model, images.to(
                next(model.parameters()).device), self.seed)
        finally:
            model.train(was_training)
        if not is_main_process():
            return  # every rank computes (sharded models), rank 0 writes
        folder = os.path.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f'iter_{runner.iter + 1:06d}.png')
        from PIL import Image
        Image.fromarray(grid).save(path)
        self.written.append(path)
        runner.visualizer.add_image('reconstruction', grid,
                                    step=runner.iter + 1)
        runner.logger.info(f'reconstructions written to {path}')
