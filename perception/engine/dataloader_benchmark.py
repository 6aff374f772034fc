"""``perception benchmark dataloader CONFIG``: does the data keep up?

Times the config's train pipeline and dataloader alone (its own
``num_workers``, unless ``--workers``) and one training step of the
config's model on such a batch (``model.train_step`` with the config's
optimizer wrapper, precision chosen as ``perception train`` chooses it),
and prints how many times faster batches come than the step consumes
them (target >= 3x, so the loader's workers can share the cores with the
step and still keep it fed). Also reports the dtype the pipeline hands the
data preprocessor (uint8 for camera images: decode and augmentation stay
in uint8, normalisation happens in the preprocessor).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from perception.benchmarks import Benchmark, format_table
from perception.registry import BENCHMARKS

#: batches per step the loader should deliver (issue 18)
TARGET_RATIO = 3.0


def _inputs_dtype(batch: dict) -> str:
    inputs = batch.get('inputs') if isinstance(batch, dict) else None
    if isinstance(inputs, (list, tuple)) and inputs:
        inputs = inputs[0]
    return str(getattr(inputs, 'dtype', type(inputs).__name__))


def measure_dataloader(config: str, batches: int = 20, steps: int = 3,
                       workers: int | None = None,
                       cfg_options: list[str] | None = None) -> dict:
    """Seconds per batch of the train dataloader (after its first batch,
    which includes starting the workers) and per training step (median of
    ``steps`` after one warm-up step), and their ratio."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from perception.engine.amp import apply_amp, choose_amp
    from perception.engine.config import load_config
    from perception.plugins import load_plugins
    from perception.registry import MODELS
    load_plugins()
    cfg = load_config(config, list(cfg_options or []))
    # the precision `perception train` would pick (amp='auto' by default)
    choice = choose_amp(cfg.get('amp', 'auto'),
                        dict(cfg.optim_wrapper).get('type'))
    wrapper, problem = apply_amp(dict(cfg.optim_wrapper), choice)
    notes = [problem or choice.message()]
    loader_cfg = dict(cfg.train_dataloader)
    if workers is not None:
        loader_cfg['num_workers'] = workers
        if workers == 0:
            loader_cfg['persistent_workers'] = False
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'perception')):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        start = time.perf_counter()
        batch_iter = iter(loader)
        first = next(batch_iter)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(batches):
            next(batch_iter)
        per_batch = (time.perf_counter() - start) / batches
        del batch_iter, loader  # stop the workers before timing the step
        model = MODELS.build(cfg.model).train()
        optim_wrapper = build_optim_wrapper(model, wrapper)
        step_times = []
        for i in range(steps + 1):
            start = time.perf_counter()
            model.train_step(first, optim_wrapper)
            if i:  # the first step warms up (allocations, kernels)
                step_times.append(time.perf_counter() - start)
    step = statistics.median(step_times)
    return dict(
        config=config, batch_size=int(loader_cfg.get('batch_size', 1)),
        num_workers=int(loader_cfg.get('num_workers', 0)),
        batches_timed=batches, steps_timed=steps,
        loader_startup_s=startup, loader_s_per_batch=per_batch,
        loader_batches_per_s=1.0 / per_batch, step_s=step,
        steps_per_s=1.0 / step, ratio=step / per_batch,
        target_ratio=TARGET_RATIO, meets_target=step / per_batch >= TARGET_RATIO,
        inputs_dtype=_inputs_dtype(first), precision=notes[0],
        torch_threads=torch.get_num_threads())


@BENCHMARKS.register_module(name='dataloader')
class DataloaderBenchmark(Benchmark):
    name = 'dataloader'
    help = ("CONFIG's train pipeline + dataloader alone vs one training step "
            '(batches/s over steps/s; target >= 3x)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('config', help='training config')
        parser.add_argument('--batches', type=int, default=20,
                            help='batches timed after the first')
        parser.add_argument('--steps', type=int, default=3,
                            help='training steps timed after one warm-up')
        parser.add_argument('--workers', type=int,
                            help="override the config's num_workers")
        parser.add_argument('--cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE')
        parser.add_argument('--json', metavar='FILE',
                            help='also write the figures as JSON')

    def run(self, args: argparse.Namespace) -> int:
        result = measure_dataloader(args.config, args.batches, args.steps,
                                    args.workers, args.cfg_options)
        print(f"{args.config}: batch {result['batch_size']}, "
              f"{result['num_workers']} workers, {result['inputs_dtype']} "
              f"inputs; {result['precision']}")
        print(format_table(
            ['what', 'seconds', 'per second'],
            [['dataloader, per batch', result['loader_s_per_batch'],
              result['loader_batches_per_s']],
             ['dataloader, first batch (workers start)',
              result['loader_startup_s'], ''],
             ['training step', result['step_s'], result['steps_per_s']]]))
        print(f"\nratio batches/s over steps/s: {result['ratio']:.2f}x "
              f"(target >= {TARGET_RATIO:.0f}x: "
              f"{'met' if result['meets_target'] else 'NOT met'})")
        if args.json:
            with open(args.json, 'w', encoding='utf-8') as f:
                json.dump(result, f, indent=2)
        return 0
