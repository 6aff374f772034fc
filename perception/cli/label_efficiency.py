"""``perception benchmark label-efficiency --domain driving|medical``: does
masked pretraining pay? Pretrain once without labels, fine-tune the
detector at each label fraction from the pretrained encoder and from
scratch (same schedule, same wall-clock budget per run), three seeds at the
focus fraction, plus linear-probe, LoRA and layer-decay-off rows there; a
Markdown + JSON table and a PNG plot. Long-running (about two hours per
domain on 2 CPU cores with the defaults); resumable: run it again on the
same ``--work-dir`` (also in the background with ``nohup``) and it goes on
from the runs recorded in ``runs.jsonl``.

The domains come from the plugins (:mod:`perception.study_domains`)."""
from __future__ import annotations

import argparse
import os

from perception.benchmarks import Benchmark
from perception.registry import BENCHMARKS


def run_in_process(command: list[str], log: str) -> int:
    """Run a ``perception`` command line (as the study builds them) in this
    process, its output appended to ``log``; its exit status."""
    import contextlib
    import sys

    from perception.cli import all_commands
    name, argv = command[3], command[4:]  # python -m perception NAME ...
    with open(log, 'a', encoding='utf-8') as out, \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = all_commands()[name].main(argv)
        sys.stdout.flush()
    return int(status or 0)


@BENCHMARKS.register_module(name='label-efficiency')
class LabelEfficiencyBenchmark(Benchmark):
    name = 'label-efficiency'
    help = ('masked pretraining vs scratch at label fractions, with seeds '
            '(long: ~2 h per domain; resumable)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--domain', required=True,
                            help='a registered study domain (driving, '
                            'medical)')
        parser.add_argument('--fractions', nargs='+', metavar='F',
                            help='driving: shares of the labelled images '
                            '(default 0.01 0.1 1.0); medical: patient counts '
                            '(>= 2) or all (default 2 4 all)')
        parser.add_argument('--seeds', type=int, default=3,
                            help='seeds at the focus fraction (10%% of the '
                            'images; 4 patients); one elsewhere')
        parser.add_argument('--rows', nargs='+', metavar='ROW',
                            help='only these rows (scratch, pretrained, '
                            'linear-probe, lora, no-layer-decay; default '
                            'all)')
        parser.add_argument('--budget-min', type=float, default=5.0,
                            help='wall-clock minutes per fine-tuning run')
        parser.add_argument('--pretrain-min', type=float, default=20.0,
                            help='at most this many wall-clock minutes of '
                            'pretraining; the pretraining config\'s own '
                            'schedule may end it sooner (the bundled ones '
                            'run 6 epochs): pretrain longer with '
                            '--pretrain-cfg-options train_cfg.max_epochs=N '
                            'param_scheduler.1.end=N')
        parser.add_argument('--work-dir', help='the study folder (default '
                            'work_dirs/label_efficiency/<domain>)')
        parser.add_argument('--cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE',
                            help='overrides for every fine-tuning run')
        parser.add_argument('--pretrain-cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE',
                            help='overrides for the pretraining')
        parser.add_argument('--in-process', action='store_true',
                            help='run each train/test in this process '
                            '(quicker to start; the default is one '
                            'subprocess per command)')
        parser.add_argument('--dry-run', action='store_true',
                            help='print the plan and the commands; run '
                            'nothing')
        parser.add_argument('--report-only', action='store_true',
                            help='write the table and plot from the '
                            'recorded runs; train nothing')

    def run(self, args: argparse.Namespace) -> int:
        from perception.engine.label_study import (
            Study,
            StudyError,
            StudySettings,
            parse_fractions,
            plan_runs,
            shown,
        )
        from perception.study_domains import get_study_domain
        domain = get_study_domain(args.domain)
        fractions = (parse_fractions(args.fractions, domain.fraction_kind)
                     if args.fractions else list(domain.fractions))
        if args.seeds < 1 or args.budget_min <= 0 or args.pretrain_min <= 0:
            raise StudyError('--seeds must be >= 1, --budget-min and '
                             '--pretrain-min > 0')
        focus = (domain.focus if domain.focus in fractions
                 else fractions[len(fractions) // 2])
        runs = plan_runs(fractions, args.seeds, focus, args.rows)
        study_dir = args.work_dir or os.path.join(
            'work_dirs', 'label_efficiency', domain.name)
        settings = StudySettings(
            domain=domain.name, budget_min=args.budget_min,
            pretrain_min=args.pretrain_min,
            cfg_options=tuple(args.cfg_options),
            pretrain_cfg_options=tuple(args.pretrain_cfg_options))
        study = Study(domain, study_dir, settings,
                      **({'execute': run_in_process} if args.in_process
                         else {}))
        if args.dry_run:
            return self._print_plan(study, runs, shown)
        if args.report_only:
            from perception.engine.label_study import read_record
            records = read_record(study_dir)
        else:
            records = study.run(runs)
        self._report(study, records, focus, len(runs))
        return 0

    @staticmethod
    def _print_plan(study, runs, shown) -> int:
        settings = study.settings
        minutes = settings.pretrain_min + len(runs) * settings.budget_min
        print(f'{len(runs)} runs of {settings.budget_min:g} min + '
              f'{settings.pretrain_min:g} min pretraining: at least '
              f'{minutes:.0f} min of training, plus data and tests')
        for command in study.data_commands():
            print(shown(command))
        for command in study.pretrain_commands():
            print(shown(command))
        for spec in runs:
            print(f'# {spec.id}')
            for command in study.run_commands(spec):
                print(shown(command))
        return 0

    @staticmethod
    def _report(study, records, focus, planned: int) -> None:
        from dataclasses import asdict

        from perception.engine.label_study_report import write_report
        from perception.visualization.label_study_plot import plot_label_efficiency
        domain = study.domain
        report = write_report(study.dir, domain, records,
                              asdict(study.settings), focus, planned)
        metric, name = domain.metrics[0]
        png = plot_label_efficiency(
            report['cells'], metric, name,
            os.path.join(study.dir, 'label_efficiency.png'),
            fraction_kind=domain.fraction_kind,
            title=f'{domain.name}: {name} vs labels, '
                  f'{study.settings.budget_min:g} min per run')
        print(report['text'])
        print(f"written: {report['markdown']}, {report['json']}, {png}")
