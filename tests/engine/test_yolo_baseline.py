"""The YOLO baseline's bridges (no Ultralytics needed): the labels it
writes are exactly the boxes our detector trains on, and predictions are
scored by the config's own evaluator."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from perception.cli import main
from perception.engine.config import load_config
from perception.engine.yolo_baseline import data_infos, evaluate, write_yolo_dataset, yolo_lines
from perception.errors import UserError

pytest.importorskip('perception_driving', reason='the KITTI reader lives in '
                    'the driving plugin')
CONFIG = str(Path(__file__).resolve().parents[2] / 'configs/detection/'
             'tal_convnext-atto_fpn-lite_750it-60min_synth-drives.py')


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    """The study config, its training and test splits pointed at two small
    generated drives."""
    root = tmp_path_factory.mktemp('drives')
    for name, seed in (('train', 3), ('test', 4)):
        assert main(['synth-drive', str(root / name), '--seed', str(seed),
                     '--frames', '3', '--size', '320', '180', '--cameras',
                     '1', '--formats', 'kitti', '--quiet']) == 0
    cfg = load_config(CONFIG)
    for loader, name in ((cfg.train_dataloader, 'train'),
                         (cfg.test_dataloader, 'test')):
        kitti = root / name / 'kitti'
        loader.dataset.datasets = [dict(
            loader.dataset.datasets[0], data_root=str(kitti / 'training'),
            class_map=str(kitti / 'class_map.yaml'))]
    return cfg


def _boxes(lines: list[str], width: int, height: int):
    rows = np.array([[float(v) for v in line.split()] for line in lines])
    cx, cy, w, h = (rows[:, 1] * width, rows[:, 2] * height,
                    rows[:, 3] * width, rows[:, 4] * height)
    return rows[:, 0].astype(int), np.stack(
        [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def test_labels_are_the_boxes_our_detector_trains_on(cfg, tmp_path):
    counts = write_yolo_dataset(cfg, tmp_path)
    infos = list(data_infos(cfg.train_dataloader.dataset.to_dict()))
    assert counts['train']['images'] == len(infos) == 3
    labels = sorted((tmp_path / 'train' / 'labels').glob('*.txt'))
    images = sorted((tmp_path / 'train' / 'images').iterdir())
    assert [p.stem for p in labels] == [p.stem for p in images]
    ignored = 0
    for info, path in zip(infos, labels):
        keep = ~info['gt_ignore_flags'] & (info['gt_labels'] >= 0)
        ignored += int((~keep).sum())
        lines = path.read_text().splitlines()
        assert lines == yolo_lines(info) and len(lines) == keep.sum()
        got_labels, got_boxes = _boxes(lines, 320, 180)
        np.testing.assert_array_equal(got_labels, info['gt_labels'][keep])
        np.testing.assert_allclose(got_boxes, info['gt_bboxes'][keep],
                                   atol=1e-3)
    assert ignored > 0, 'the drive should carry ignore regions to leave out'
    assert counts['train']['boxes'] == sum(
        len(p.read_text().splitlines()) for p in labels)
    yaml = (tmp_path / 'data.yaml').read_text()
    assert "2: 'car'" in yaml and "8: 'traffic light'" in yaml


def test_predictions_are_scored_by_the_configs_evaluator(cfg):
    infos = {i['img_path']: i for i in
             data_infos(cfg.test_dataloader.dataset.to_dict())}

    def oracle(path):
        info = infos[path]
        keep = ~info['gt_ignore_flags'] & (info['gt_labels'] >= 0)
        return (info['gt_bboxes'][keep], np.ones(keep.sum()),
                info['gt_labels'][keep])

    def elsewhere(path):  # every box moved off the image: found nothing
        boxes, scores, labels = oracle(path)
        return boxes + np.array([1000.0, 0, 1000.0, 0]), scores, labels

    assert evaluate(cfg, oracle)['coco/AP'] == pytest.approx(1.0)
    assert evaluate(cfg, elsewhere)['coco/AP50'] == pytest.approx(0.0)


def test_without_ultralytics_the_error_says_how_to_install_it(
        cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'ultralytics', None)
    from perception.engine.yolo_baseline import _ultralytics
    with pytest.raises(UserError, match='pip install ultralytics'):
        _ultralytics()
    # the command stops before it reads or writes any data
    assert main(['benchmark', 'yolo-baseline', CONFIG, '--work-dir',
                 str(tmp_path / 'run')]) != 0
    assert 'pip install ultralytics' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()
