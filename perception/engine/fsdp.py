"""Fully sharded data parallel training by config, on CPU (gloo) or GPU.

mmengine's FSDP path (``FlexibleRunner`` with ``FSDPStrategy``) needs a CUDA
device. This wrapper uses torch's FSDP2 (``fully_shard``), which also runs
on CPU with gloo, inside the ordinary Runner: each rank keeps only its
shard of the parameters, gradients and optimizer state, so a model that
does not fit one device trains across several. A config asks for it with::

    model_wrapper_cfg = dict(type='FullyShardedWrapper',
                             shard_modules=['Block'])  # e.g. ViT blocks
    # (perception train adds FullStateDictHook to such a run)

and runs under torchrun with ``--launcher pytorch``. Checkpoints hold the
full (gathered) weights and optimizer state, written by rank 0 only, so
``perception test`` and export load them without FSDP, and ``load_from``
(or a test run's checkpoint) loads full weights into the shards. Resuming
an FSDP run is not supported yet (the run stops with a message).

mmengine's Runner treats the sharded module as a plain model in two places:
``init_weights`` followed by a broadcast of every ``state_dict()`` tensor
(the wrapper initialises and broadcasts the weights itself before
sharding, so that ``state_dict()`` is empty), and ``state_dict()`` when
saving, on rank 0 only (it returns the copy :class:`FullStateDictHook`
gathered on every rank). Otherwise the sharded module's ``state_dict()``
gathers the full state, a collective that every rank must call (rank 0
gets the tensors).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from torch import nn

from perception.errors import UserError
from perception.registry import HOOKS, MODEL_WRAPPERS


class FSDPConfigError(UserError, ValueError):
    """``FullyShardedWrapper`` asked for where it cannot run."""


@MODEL_WRAPPERS.register_module()
class FullyShardedWrapper(nn.Module):
    """Shards ``module`` with FSDP2 and forwards mmengine's steps to it.

    Args:
        module: the model (a ``BaseModel``), already on its device.
        shard_modules: class names whose instances become their own FSDP
            unit (sharded and gathered one at a time, which is what saves
            memory: a transformer's blocks); default: every direct child.
        reshard_after_forward: free gathered parameters after each unit's
            forward (less memory, one more all-gather in backward).
        **ignored: DDP options the launcher fills in (``device_ids``,
            ``broadcast_buffers``, ``find_unused_parameters``).
    """

    def __init__(self, module: nn.Module,
                 shard_modules: Sequence[str] | None = None,
                 reshard_after_forward: bool = True, **ignored: Any) -> None:
        super().__init__()
        if not dist.is_initialized():
            raise FSDPConfigError(
                "model_wrapper_cfg type='FullyShardedWrapper' needs a "
                'distributed run: start with torchrun ... --launcher pytorch')
        from torch.distributed.fsdp import fully_shard
        # Every rank must start from rank 0's weights (a shard is cut from
        # the local full tensor).
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)
        if hasattr(module, 'init_weights'):
            module.init_weights()
        names = set(shard_modules or ())
        units = ([m for m in module.modules() if type(m).__name__ in names]
                 if names else list(module.children()))
        if names and not units:
            found = sorted({type(m).__name__ for m in module.modules()})
            raise FSDPConfigError(
                f'FullyShardedWrapper: no module of the classes '
                f'{sorted(names)} in the model; classes present: '
                f'{", ".join(found[:30])}')
        for unit in units:
            if any(p.requires_grad for p in unit.parameters()):
                fully_shard(unit, reshard_after_forward=reshard_after_forward)
        fully_shard(module, reshard_after_forward=reshard_after_forward)
        self.module = module
        self.sharded_units = len(units)
        #: the full state gathered for the checkpoint being saved
        self.stash: dict | None = None
        self._gathering = self._after_init = False
        sharded_state_dict = module.state_dict

        def state_dict(*args, **kwargs):
            if self._gathering or args or kwargs:  # torch's own helpers
                return sharded_state_dict(*args, **kwargs)
            if self._after_init:  # mmengine's broadcast after init_weights
                self._after_init = False
                return _plain_state_dict({})
            if self.stash is not None:
                return _plain_state_dict(self.stash)
            return _plain_state_dict(self.full_state()[0])

        def init_weights() -> None:
            """Already done before sharding; mmengine's broadcast that
            follows is done too."""
            self._after_init = True

        module.init_weights = init_weights
        module.state_dict = state_dict

    def train_step(self, data, optim_wrapper) -> dict:
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data) -> list:
        return self.module.val_step(data)

    def test_step(self, data) -> list:
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def full_state(self, optimizer: torch.optim.Optimizer | None = None
                   ) -> tuple[dict, dict | None]:
        """The gathered model (and optimizer) state on CPU, as a plain
        model would have it. A collective: every rank must call it."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        self._gathering = True
        try:
            model_state = get_model_state_dict(self.module, options=options)
            optim_state = None if optimizer is None else \
                get_optimizer_state_dict(self.module, optimizer,
                                         options=options)
        finally:
            self._gathering = False
        return model_state, optim_state

    def load_full_state(self, state: dict) -> tuple[list, list]:
        """Load full (unsharded) weights into the shards; every rank calls
        it. Returns the missing and unexpected keys."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )
        self._gathering = True
        try:
            result = set_model_state_dict(
                self.module, state,
                options=StateDictOptions(full_state_dict=True, strict=False))
        finally:
            self._gathering = False
        return list(result.missing_keys), list(result.unexpected_keys)


def _plain_state_dict(state: dict) -> OrderedDict:
    """``state`` as ``nn.Module.state_dict()`` returns it (an OrderedDict
    with ``_metadata``, which mmengine's checkpoint code reads)."""
    out = OrderedDict(state)
    out._metadata = OrderedDict()
    return out


@HOOKS.register_module()
class FullStateDictHook(Hook):
    """Checkpoints of a :class:`FullyShardedWrapper` run hold the full
    weights: the shards are gathered on every rank just before mmengine's
    CheckpointHook saves (it runs on rank 0 only, so it cannot gather), and
    swapped into the checkpoint it writes."""

    priority = 'LOW'  # before CheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        self._state: tuple[dict, dict | None] | None = None
        self._load_from: str | None = None

    @staticmethod
    def _wrapper(runner) -> FullyShardedWrapper | None:
        model = runner.model
        return model if isinstance(model, FullyShardedWrapper) else None

    @staticmethod
    def _checkpoint_hook(runner):
        from mmengine.hooks import CheckpointHook
        return next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)

    def before_run(self, runner) -> None:
        if self._wrapper(runner) is None:
            return
        if runner._resume:
            raise FSDPConfigError(
                'resuming a FullyShardedWrapper run is not supported yet: '
                "its checkpoints hold full weights; start a new run with "
                "load_from=CHECKPOINT (weights only) instead of --resume")
        # mmengine would copy full tensors into the shards: load them here
        self._load_from, runner._load_from = runner._load_from, None

    def _load(self, runner) -> None:
        wrapper, path = self._wrapper(runner), self._load_from
        if wrapper is None or path is None:
            return
        from mmengine.runner.checkpoint import _load_checkpoint
        checkpoint = _load_checkpoint(path, map_location='cpu')
        state = checkpoint.get('state_dict', checkpoint)
        missing, unexpected = wrapper.load_full_state(state)
        runner.logger.info(
            f'Load checkpoint from {path} into the FSDP shards (missing '
            f'keys: {missing or "none"}; unexpected: {unexpected or "none"})')
        self._load_from = None

    def before_train(self, runner) -> None:
        self._load(runner)

    def before_test(self, runner) -> None:
        self._load(runner)

    def before_val(self, runner) -> None:
        self._load(runner)

    def _gather(self, runner) -> None:
        wrapper = self._wrapper(runner)
        if wrapper is not None:
            optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
            self._state = wrapper.full_state(optimizer)
            wrapper.stash = self._state[0]  # what rank 0's save reads

    def _clear(self, runner) -> None:
        wrapper = self._wrapper(runner)
        if wrapper is not None:
            wrapper.stash = None
        self._state = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._clear(runner)
        hook = self._checkpoint_hook(runner)
        if hook is None or hook.by_epoch:
            return
        if hook.every_n_train_iters(runner, hook.interval, hook.save_begin) \
                or (hook.save_last and hook.is_last_train_iter(runner)):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        self._clear(runner)
        hook = self._checkpoint_hook(runner)
        if hook is None or not hook.by_epoch:
            return
        if hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
                hook.save_last and hook.is_last_train_epoch(runner)):
            self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._state is None:
            return
        model_state, optim_state = self._state
        checkpoint['state_dict'] = model_state
        if optim_state is not None and 'optimizer' in checkpoint:
            checkpoint['optimizer'] = optim_state
        checkpoint.setdefault('meta', {})['fsdp'] = dict(
            world_size=dist.get_world_size(), full_state_dict=True)


def add_fsdp_hook(cfg) -> None:
    """Give a run whose ``model_wrapper_cfg`` is :class:`FullyShardedWrapper`
    its :class:`FullStateDictHook` (unless the config lists it), and name
    the wrapper with its scope: mmengine's Runner looks wrapper types up in
    its root registry, which does not search child registries."""
    wrapper = cfg.get('model_wrapper_cfg') or {}
    if wrapper.get('type') not in ('FullyShardedWrapper',
                                   'perception.FullyShardedWrapper',
                                   FullyShardedWrapper):
        return
    cfg.model_wrapper_cfg = dict(wrapper,
                                 type='perception.FullyShardedWrapper')
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') == 'FullStateDictHook'
               for h in hooks):
        hooks.append(dict(type='FullStateDictHook'))
    cfg.custom_hooks = hooks
