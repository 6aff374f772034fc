"""The medical plugin's subcommands: ``perception deid IN OUT`` and
``perception synth-ct OUT``.

Named in the package's ``COMMAND_MODULES``: ``perception --help`` imports this
module alone to list the commands, so it imports nothing heavy (no torch, no
pydicom) at module level; each ``run`` imports the work it does.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from perception.cli.base import Command
from perception.registry import COMMANDS
from perception_medical.deid.profile import EDITION

__all__ = ['DeidCommand', 'SynthCtCommand']


@COMMANDS.register_module(name='deid')
class DeidCommand(Command):
    """``perception deid IN OUT [--salt-file F] [--report FILE] [--keep-names] [--quiet]``."""

    name = 'deid'
    help = (f'de-identify DICOM files (PS3.15 {EDITION} Basic Profile with the Retain '
            'Longitudinal Temporal Information with Modified Dates Option)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('input', metavar='IN', help='a DICOM file or a folder')
        parser.add_argument('output', metavar='OUT',
                            help='a new folder for the de-identified copy (same structure)')
        parser.add_argument('--salt-file', metavar='F',
                            help='secret key (>= 16 bytes) of the keyed UID/date hashes: the '
                                 'same key maps the same UIDs the same way across runs; '
                                 'default: a random key for this run only')
        parser.add_argument('--report', metavar='FILE',
                            help='JSON report (default: OUT/deid_report.json)')
        parser.add_argument('--keep-names', action='store_true',
                            help="keep the input's file and folder names (default: keyed "
                                 'hashes, since names often carry patient data); warns')
        # names are hashed by default now; the old switch is accepted
        parser.add_argument('--hash-names', action='store_true', help=argparse.SUPPRESS)
        parser.add_argument('--quiet', action='store_true',
                            help='no progress display (the summary line stays)')

    def run(self, args: argparse.Namespace) -> int:
        import time

        from perception.progress import summary
        from perception_medical.deid.files import DeidError, deidentify, read_key
        started = time.perf_counter()
        try:
            key = read_key(args.salt_file) if args.salt_file else None
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', UserWarning)  # said below instead
                result = deidentify(args.input, args.output, key=key, report=args.report,
                                    keep_names=args.keep_names,
                                    quiet=True if args.quiet else None)
        except DeidError as exc:
            print(f'perception deid: error: {exc}')
            return 2
        count = result['summary']
        if args.keep_names:
            print('WARNING: --keep-names: output file and folder names are the input\'s '
                  'and the report names the input files; they may carry patient data')
        if count['burned_in_annotation']:
            print(f"WARNING: {count['burned_in_annotation']} file(s) have "
                  'BurnedInAnnotation=YES: text in the pixels is NOT removed; see '
                  '"burned_in_annotation" in the report')
        print(f"report: {args.report or Path(args.output) / 'deid_report.json'}")
        if count['failed']:
            print(f"perception deid: error: {count['failed']} file(s) could not be "
                  'de-identified and were not written (status "failed" in the report)')
        if count['written'] == 0:
            print(f'perception deid: error: no DICOM file found in {args.input}')
        summary(f"perception deid: {count['written']} file(s) written to {args.output}, "
                f"{count['skipped']} skipped (not DICOM / DICOMDIR, counted in the report), "
                f"{count['failed']} failed in {time.perf_counter() - started:.1f} s")
        return 1 if count['failed'] or count['written'] == 0 else 0


@COMMANDS.register_module(name='synth-ct')
class SynthCtCommand(Command):
    """``perception synth-ct OUT [--patients N] [--size S] [--slices N] ...``."""

    name = 'synth-ct'
    help = 'write synthetic CT studies as DICOM (with lesions and annotations)'

    def add_arguments(self, parser):
        parser.add_argument('out', help='output folder')
        parser.add_argument('--patients', type=int, default=3)
        parser.add_argument('--series-per-patient', type=int, default=1)
        parser.add_argument('--size', type=int, default=256,
                            help='rows = columns (default 256)')
        parser.add_argument('--slices', type=int, default=48,
                            help='slices per series (default 48)')
        parser.add_argument('--lesions', type=int, default=3,
                            help='lung nodules per patient (default 3)')
        parser.add_argument('--oblique', action='store_true',
                            help='oblique slice orientation')
        parser.add_argument('--seed', type=int, default=0,
                            help='everything follows from it; studies of '
                            'unseen patients: another seed')
        parser.add_argument('--scanners', type=int, metavar='N',
                            help='scan the patients (round-robin) on the first '
                            'N built-in scanners (1-4): Orion CT 128 (120 kV, '
                            '10 HU noise), Aurora 64 (100 kV, 16 HU), LowDose '
                            '16 (80 kV, 50 HU), Orion CT 64 (120 kV, 12 HU)')
        parser.add_argument('--scanner', action='append', metavar='SPEC',
                            help='a scanner MANUFACTURER:MODEL:KVP:NOISE_HU'
                            '[:THICKNESS_MM] (repeat for several; after '
                            '--scanners ones)')
        parser.add_argument('--noise', type=float, metavar='HU',
                            help='the same noise (HU) for every scanner')
        parser.add_argument('--coverage-mm', type=float, default=240.0,
                            help='length covered by each series (default 240)')
        parser.add_argument('--quiet', action='store_true',
                            help='no progress output')
        parser.add_argument('--overwrite', action='store_true',
                            help='replace an existing OUT/dicom')
        parser.add_argument('--organ-masks', action='store_true',
                            help='also write exact organ masks (lungs, liver, '
                            'heart, body) per series as DICOM SEG and '
                            'organs.npz under OUT/organs')
        parser.add_argument('--picture', metavar='PNG',
                            help='also save windowed slices of the first '
                            'series with its lesions boxed')

    def run(self, args):
        from perception.errors import UserError
        from perception.progress import summary
        from perception_medical.synth.phi import PHI_FILE
        from perception_medical.synth.scanners import catalogue, parse_scanner
        from perception_medical.synth.study import write_ct_study
        try:
            scanners = list(catalogue(args.scanners)) if args.scanners else []
            scanners += [parse_scanner(s) for s in args.scanner or []]
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if args.patients < 1:
            raise UserError(f'--patients must be >= 1, got {args.patients}')
        try:
            study = write_ct_study(
                args.out, n_patients=args.patients,
                series_per_patient=args.series_per_patient, size=args.size,
                n_slices=args.slices, lesions_per_patient=args.lesions,
                oblique=args.oblique, seed=args.seed,
                overwrite=args.overwrite, scanners=scanners or None,
                noise_hu=args.noise, coverage_mm=args.coverage_mm,
                quiet=True if args.quiet else None,
                organ_masks=args.organ_masks)
        except FileExistsError as exc:
            raise UserError(str(exc)) from None
        n_lesions = sum(len(s['lesions']) for s in study.series)
        models = sorted({s['scanner']['model'] for s in study.series})
        summary(f'wrote {len(study.series)} series of {args.patients} patients '
                f'({n_lesions} lesion annotations; scanners: '
                f"{', '.join(models)}) to {study.dicom_dir}")
        print(f'annotations: {study.annotations_csv}\n'
              f'slice boxes: {study.slice_boxes_csv}\n'
              f'planted PHI (for de-identification checks): '
              f'{study.root / PHI_FILE}')
        if study.organs:
            print(f'organ masks (DICOM SEG + organs.npz): '
                  f"{study.root / 'organs'}")
        if args.picture:
            from perception_medical.synth.picture import save_study_picture
            print(f'picture: {save_study_picture(study, args.picture)}')
        return 0
