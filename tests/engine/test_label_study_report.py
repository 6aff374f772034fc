"""The label-efficiency table and plot from recorded runs (no training):
mean and sample std over seeds, the two-standard-deviation answer at the
focus fraction, the commands, and a plot that draws both rows."""
from __future__ import annotations

import json

import numpy as np
import pytest

from perception.engine.label_study import append_record, read_record
from perception.engine.label_study_report import summarize, verdict, write_report
from perception.study_domains import StudyDomain
from perception.visualization.label_study_plot import STYLES, plot_label_efficiency

DOMAIN = StudyDomain(name='t', pretrain_config='p.py', scratch_config='s.py',
                     pretrained_config='m.py', fraction_kind='images',
                     fractions=(0.01, 0.1, 1.0), focus=0.1,
                     metrics=(('coco/AP50', 'AP50'), ('coco/AP', 'AP')),
                     data_commands=(('synth-drive', 'd', '--seed', '1'), ))
SETTINGS = dict(domain='t', budget_min=5.0, pretrain_min=20.0,
                cfg_options=[], pretrain_cfg_options=[])


def _records(tmp_path, pre_focus=(0.30, 0.32, 0.31)) -> dict:
    append_record(str(tmp_path), dict(id='pretrain', seconds=1200.0,
                                      iterations=6, commands=['perception '
                                                              'train p']))
    values = {('scratch', 0.1): (0.20, 0.22, 0.21),
              ('pretrained', 0.1): pre_focus,
              ('scratch', 0.01): (0.05, ), ('pretrained', 0.01): (0.09, ),
              ('scratch', 1.0): (0.40, ), ('pretrained', 1.0): (0.41, ),
              ('lora', 0.1): (0.25, )}
    for (row, fraction), seeds in values.items():
        for seed, ap50 in enumerate(seeds):
            append_record(str(tmp_path), dict(
                id=f'{row}_{fraction}_s{seed}', row=row, fraction=fraction,
                seed=seed, metrics={'coco/AP50': ap50, 'coco/AP': ap50 / 2},
                train_s=300.0, test_s=30.0, iterations=120,
                commands=[f'perception train {row}']))
    return read_record(str(tmp_path))


def test_mean_std_over_seeds_and_the_two_std_answer(tmp_path):
    records = _records(tmp_path)
    cells = summarize(DOMAIN, records)
    focus = {c.row: c for c in cells if c.fraction == 0.1}
    assert focus['scratch'].mean('coco/AP50') == pytest.approx(0.21)
    assert focus['scratch'].std('coco/AP50') == pytest.approx(0.01)
    assert [c.row for c in cells][:3] == ['scratch'] * 3  # rows, then labels
    answer = verdict(DOMAIN, cells, 0.1)
    assert answer['difference'] == pytest.approx(0.10)
    assert answer['pooled_std'] == pytest.approx(0.01)
    assert answer['answer'].startswith('yes')
    (tmp_path / 'b').mkdir()
    close = summarize(DOMAIN, _records(tmp_path / 'b', (0.2, 0.25, 0.21)))
    assert verdict(DOMAIN, close, 0.1)['answer'].startswith(
        'no: pretrained is ahead, by less than 2 std')


def test_report_files_hold_the_table_answer_and_commands(tmp_path):
    records = _records(tmp_path)
    report = write_report(str(tmp_path), DOMAIN, records, SETTINGS, 0.1, 13)
    text = (tmp_path / 'label_efficiency.md').read_text()
    assert '| scratch | 10% of images | 3 | 0.2100 ± 0.0100 | 0.1050 ± 0.0050' \
        in text
    assert '| pretrained, LoRA (rank 8) | 10% of images | 1 | 0.2500 |' in text
    assert '11 of 13 runs finished' in text
    assert 'yes: pretrained beats scratch by more than 2 std' in text
    assert 'perception synth-drive d --seed 1' in text
    assert text.index('perception train p') < text.index(
        'perception train scratch')
    data = json.loads((tmp_path / 'label_efficiency.json').read_text())
    assert data['verdict']['answer'] == report['data']['verdict']['answer']
    row = next(r for r in data['rows'] if r['row'] == 'pretrained'
               and r['fraction'] == 0.1)
    assert row['values']['coco/AP50'] == [0.30, 0.32, 0.31]


def test_the_plot_draws_both_rows(tmp_path):
    from PIL import Image
    cells = summarize(DOMAIN, _records(tmp_path))
    out = plot_label_efficiency(cells, 'coco/AP50', 'AP50',
                                str(tmp_path / 'p.png'))
    with Image.open(out) as png:
        rgb = np.asarray(png.convert('RGB')).astype(int)

    def pixels(colour: str) -> int:
        ref = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(rgb - ref).sum(-1) < 30).sum())
    assert pixels(STYLES['pretrained']['color']) > 200
    assert pixels(STYLES['scratch']['color']) > 200
    assert pixels(STYLES['lora']['color']) > 20
