"""Real-ESRNet / Real-ESRGAN: SR trained on LR images synthesized on the device inside the step.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021 (arXiv:2107.10833), §3 and §4.1, and the released ``RealESRNetModel`` /
``RealESRGANModel.feed_data``: the data loader gives HR crops only (``crop_pad_size`` 400);
each training batch is turned into (LR, HR) pairs on the training device by
:func:`i2i.data.degradations.degrade` (fp32, no gradients: :meth:`Recipe.prepare_batch`),
then cropped to ``gt_size`` (256) at one random position for the whole batch, and passed
through the training-pair pool::

    hr (B, 3, 400, 400) ─ USM ─ degrade ─ lr (B, 3, 100, 100)
                        └─ paired random crop ─ (hr, hr_usm) 256², lr 64²
                        └─ pool (queue_size 180): once full, shuffle and swap B pairs in/out

The pool decorrelates a batch (Real-ESRGAN's ``_dequeue_and_enqueue``): without it the B
pairs of a batch share their resize, noise type and crop. Its contents, the degradation
generator's state and the fill pointer are saved with each checkpoint (``train_state``),
so a resumed run synthesizes exactly the batches an uninterrupted one would.

Targets (``train_realesrgan_x4plus.yml``): the pixel and content losses compare with the
USM-sharpened HR (``l1_gt_usm``, ``percep_gt_usm``), the discriminator sees the plain HR
(``gan_gt_usm: false``). RealESRNet: ``gt_usm: true`` sharpens the HR for the L1 target and
the degradation source alike.

Evaluation degrades each validation HR image with a generator seeded from ``eval_seed`` and
the image's index: a fixed, process-independent degraded validation set, scored against
the plain HR (PSNR/SSIM of the model and of bicubic on the same LR).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..data.degradations import DegradationConfig, degrade, usm_sharpen
from ..errors import ConfigError
from ..registry import RECIPES
from .base import Batch, Logs
from .super_resolution import SuperResolution

__all__ = ["RealESRGAN", "TrainingPairPool", "SMALL_GT_SIZE"]

log = logging.getLogger(__name__)
SMALL_GT_SIZE = 128
"""Below this HR crop side, ``realesr`` warns (Real-ESRGAN issue #793: collapse with a small gt_size)."""


class TrainingPairPool:
    """Real-ESRGAN's training-pair pool: a FIFO of ``size`` pairs, shuffled once full.

    While filling, a batch passes through unchanged and is stored; once full, the pool is
    permuted (a permutation from ``generator``), its first B entries are returned and replaced
    by the incoming batch. ``size`` must be a multiple of the batch size.
    """

    def __init__(self, size: int):
        self.size = size
        self.items: dict[str, Tensor] = {}
        self.ptr = 0

    def __call__(self, batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        if self.size == 0:
            return batch
        b = next(iter(batch.values())).shape[0]
        if self.size % b:
            raise ConfigError(f"queue_size {self.size} must be a multiple of the batch size {b}", "recipe.queue_size")
        if not self.items:
            self.items = {k: v.new_zeros((self.size, *v.shape[1:])) for k, v in batch.items()}
        if self.ptr < self.size:
            for k, v in batch.items():
                self.items[k][self.ptr:self.ptr + b] = v
            self.ptr += b
            return batch
        idx = torch.randperm(self.size, generator=generator)
        out = {}
        for k, v in batch.items():
            pool = self.items[k][idx.to(v.device, non_blocking=True)]
            out[k] = pool[:b].clone()
            pool[:b] = v
            self.items[k] = pool
        return out

    def state(self) -> dict[str, Any]:
        return {"ptr": self.ptr, **{f"pool_{k}": v for k, v in self.items.items()}}

    def load(self, state: dict[str, Any]) -> None:
        self.ptr = int(state.get("ptr", 0))
        self.items = {k[len("pool_"):]: v for k, v in state.items() if k.startswith("pool_")}


@RECIPES.register("realesr")
class RealESRGAN(SuperResolution):
    """Real-ESRNet (pixel loss only) or Real-ESRGAN (pixel + perceptual + GAN) on device-synthesized LR.

    Args:
        losses: as :class:`~i2i.recipes.super_resolution.SuperResolution` (``pixel``,
            ``content``, ``adversarial``).
        scale: upscaling factor (the degradation's ``scale`` follows it).
        degradation: :class:`~i2i.data.degradations.DegradationConfig` keys (Real-ESRGAN's
            names); omitted keys keep the paper's values.
        gt_size: HR side of the training pairs after the paired random crop (256).
        queue_size: pairs in the training-pair pool (180; 0 disables it).
        gt_usm: USM-sharpen the HR before degrading it (Real-ESRGAN §4.1).
        l1_gt_usm, percep_gt_usm, gan_gt_usm: which target each loss compares with (the
            sharpened HR or the plain one); defaults as ``train_realesrgan_x4plus.yml``.
        seed: seed of the degradation generator (one stream per process: seed + rank).
        eval_seed: seed of the fixed degraded validation set.
        eval_tile, eval_tile_overlap: as the ``sr`` recipe.
    """

    def __init__(self, losses: dict[str, nn.Module], scale: int = 4, degradation: dict[str, Any] | None = None,
                 gt_size: int = 256, queue_size: int = 180, gt_usm: bool = True, l1_gt_usm: bool = True,
                 percep_gt_usm: bool = True, gan_gt_usm: bool = False, seed: int = 0, eval_seed: int = 0,
                 eval_tile: int | None = None, eval_tile_overlap: int = 32):
        super().__init__(losses, scale=scale, eval_tile=eval_tile, eval_tile_overlap=eval_tile_overlap)
        deg = dict(degradation or {})
        if "scale" in deg and deg["scale"] != scale:
            raise ConfigError(f"degradation.scale {deg['scale']} differs from the recipe's scale {scale}; omit it",
                              "degradation.scale")
        deg["scale"] = scale
        self.degradation = DegradationConfig.from_dict(deg, "degradation")
        if gt_size < 1 or gt_size % scale:
            raise ConfigError(f"must be a positive multiple of scale {scale}, got {gt_size}", "gt_size")
        if queue_size < 0:
            raise ConfigError(f"must be >= 0, got {queue_size}", "queue_size")
        if gt_size < SMALL_GT_SIZE:
            log.warning("recipe.gt_size %d is below %d: Real-ESRGAN fine-tunes on small crops are known to collapse "
                        "(Real-ESRGAN issue #793; the paper trains on 256); raise recipe.gt_size and data.patch_size "
                        "if the outputs turn flat or blotchy", gt_size, SMALL_GT_SIZE)
        self.gt_size, self.gt_usm = gt_size, gt_usm
        self.l1_gt_usm, self.percep_gt_usm, self.gan_gt_usm = l1_gt_usm, percep_gt_usm, gan_gt_usm
        self.seed, self.eval_seed = int(seed), int(eval_seed)
        self.pool = TrainingPairPool(queue_size)
        self._generator: torch.Generator | None = None

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        # the data loader gives HR crops (its bicubic LR is replaced): its scale must still agree
        super().setup(models, train_dataset)
        # RRDBNet ×2 / ×1 pixel-unshuffle their input: H and W must be multiples of 2 / 4 (export meta)
        self._multiple = int(getattr(models["generator"], "unshuffle", 1))
        crop = getattr(train_dataset, "patch_size", None)
        if crop is not None and crop < self.gt_size:
            raise ConfigError(f"HR crops of {crop} are smaller than recipe.gt_size {self.gt_size}", "data.patch_size")

    @property
    def generator(self) -> torch.Generator:
        """The degradation's CPU generator: seed + process rank."""
        if self._generator is None:
            rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
            self._generator = torch.Generator().manual_seed(self.seed + rank)
        return self._generator

    # --- device-side synthesis (BasicSR's feed_data) ---------------------------------
    def prepare_batch(self, batch: Batch) -> Batch:
        """HR crops (B, 3, P, P) -> {"lr": (B, 3, g/s, g/s), "hr", "hr_usm": (B, 3, g, g)} with g = gt_size."""
        hr = batch["hr"].float()
        s, g = self.scale, self.gt_size
        hr_usm = usm_sharpen(hr) if self.gt_usm else hr
        lr = self.synthesize(batch, hr_usm)
        # paired random crop, one position for the batch (the peer's paired_random_crop)
        lh, lw = lr.shape[-2:]
        p = g // s
        if lh < p or lw < p:
            raise ConfigError(f"HR crops of {tuple(hr.shape[-2:])} give LR {lh}×{lw}, smaller than gt_size/scale = {p}",
                              "recipe.gt_size")
        top = int(torch.randint(lh - p + 1, (), generator=self.generator))
        left = int(torch.randint(lw - p + 1, (), generator=self.generator))
        pair = {"lr": lr[..., top:top + p, left:left + p],
                "hr": hr[..., top * s:top * s + g, left * s:left * s + g]}
        if self.gt_usm:
            pair["hr_usm"] = hr_usm[..., top * s:top * s + g, left * s:left * s + g]
        pair = self.pool({k: v.contiguous() for k, v in pair.items()}, self.generator)
        pair.setdefault("hr_usm", pair["hr"])
        return {**{k: v for k, v in batch.items() if k not in pair and k not in ("index", "paired")}, **pair}

    def synthesize(self, batch: Batch, hr_usm: Tensor) -> Tensor:
        """The batch's LR: degrade(hr_usm) for HR photos; a real pair's own LR (``paired`` True,
        data type ``sr_realworld``) is kept. Only the photos draw from the degradation stream."""
        paired = batch.get("paired")
        if paired is None or not bool(paired.any()):
            return degrade(hr_usm, self.generator, self.degradation)
        paired = paired.to(hr_usm.device).bool().view(-1)
        lr = batch["lr"].float().clone()
        if not bool(paired.all()):
            lr[~paired] = degrade(hr_usm[~paired], self.generator, self.degradation)
        return lr

    def train_state(self) -> dict[str, Any]:
        return {"degradation_rng": self.generator.get_state(), **self.pool.state()}

    def load_train_state(self, state: dict[str, Any]) -> None:
        if "degradation_rng" in state:
            self.generator.set_state(state["degradation_rng"])
            self.pool.load(state)

    # --- the losses, with Real-ESRGAN's choice of targets ------------------------------
    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        real = batch["hr_usm"] if self.gan_gt_usm else batch["hr"]
        return self.losses["adversarial"].discriminator_terms(D, real, out["fake"].detach())

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, Tensor]) -> tuple[Tensor, Logs]:
        fake = out["fake"]
        usm = batch.get("hr_usm", batch["hr"])
        terms: dict[str, Tensor] = {}
        if "pixel" in self.losses:
            terms["g/pixel"] = self.losses["pixel"](fake, usm if self.l1_gt_usm else batch["hr"])
        if "content" in self.losses:
            terms["g/content"] = self.losses["content"](fake, usm if self.percep_gt_usm else batch["hr"])
        if "adversarial" in self.losses and D is not None:
            adv = self.losses["adversarial"]
            real_logits = None
            if adv.needs_real_logits:
                real_logits = D(usm if self.gan_gt_usm else batch["hr"]).detach()
            terms["g/adv"] = adv.g_loss(D(fake), real_logits)
        total = sum((t.float() for t in terms.values()), fake.new_zeros((), dtype=torch.float32))
        logs: Logs = {k: v.detach() for k, v in terms.items()}
        logs["g/total"] = total.detach()
        return total, logs

    # --- evaluation on a fixed degraded validation set ---------------------------------
    def degraded(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """Validation batches with ``lr`` replaced by degrade(hr), seeded by eval_seed and each image's index."""
        for batch in batches:
            hr = batch["hr"].float()
            index = batch.get("index")
            paired = batch.get("paired")
            lrs = []
            for i in range(hr.shape[0]):
                if paired is not None and bool(paired[i]):  # a real pair: its own LR
                    lrs.append(batch["lr"][i:i + 1].float())
                    continue
                k = int(index[i]) if index is not None else i
                gen = torch.Generator().manual_seed(self.eval_seed * 1_000_003 + k)
                lrs.append(degrade(hr[i:i + 1], gen, self.degradation))
            yield {**batch, "lr": torch.cat(lrs)}

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        return super().evaluate(G, self.degraded(batches), accelerator)

    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> Tensor:
        return super().samples(G, next(iter(self.degraded([batch]))))

    def export_meta(self) -> dict[str, Any]:
        meta = super().export_meta()
        meta["degradation"] = "realesrgan"
        meta["multiple"] = getattr(self, "_multiple", 1)  # pad the LR to this multiple before the generator
        return meta
