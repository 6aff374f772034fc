"""detections.json is assembled from on-disk spools: valid COCO-style JSON
with every record, no spool left behind, and no record held in memory."""
from __future__ import annotations

import json

import numpy as np
import torch
from mmengine.structures import InstanceData

from perception.deploy.writers import DetectionsJson
from perception.sources import Frame
from perception.structures import DataSample


def _sample(n: int) -> DataSample:
    sample = DataSample(metainfo=dict(ori_shape=(20, 30)))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[1.0, 2.0, 5.0, 8.0]] * n),
        labels=torch.zeros(n, dtype=torch.long),
        scores=torch.full((n,), 0.5))
    return sample


def test_records_spool_to_disk_and_write_assembles_them(tmp_path):
    path = tmp_path / 'detections.json'
    writer = DetectionsJson(str(path), ['car'], dict(source='x'))
    image = np.zeros((20, 30, 3), np.uint8)
    for i in range(5):
        writer.add(Frame(image, 1000 * i, i, 'cam0', {'clock': 'index'}),
                   _sample(i % 3))
    assert not any(isinstance(v, list) and len(v) >= 5
                   for v in vars(writer).values())  # nothing kept per frame
    writer.write([dict(kind='eos')], dict(frames=5))
    writer.close()
    data = json.loads(path.read_text())
    assert [im['frame_index'] for im in data['images']] == list(range(5))
    assert len(data['annotations']) == 0 + 1 + 2 + 0 + 1
    assert [a['id'] for a in data['annotations']] == list(range(4))
    assert data['annotations'][0]['bbox'] == [1.0, 2.0, 4.0, 6.0]
    assert data['events'] == [dict(kind='eos')] and data['summary'] == {'frames': 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['detections.json']
