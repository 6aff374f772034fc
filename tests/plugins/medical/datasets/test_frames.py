"""A slice (and a 2.5D slab) of a synthetic series from the DICOM source,
through perception.data.frames, equals what DicomSliceDataset gives."""
import os

import numpy as np
import pytest
import torch

from perception.data.frames import frame_to_sample, slab_to_sample
from perception.registry import TRANSFORMS
from perception.sources import open_source
from perception_medical.datasets.slices import DicomSliceDataset
from perception_medical.synth import write_ct_study

VAL = [dict(type='Resize', scale=(24, 20)), dict(type='PackInputs')]


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('ct')
    write_ct_study(root, n_patients=1, size=32, n_slices=6, seed=3)
    return root


def _pipeline(results):
    for cfg in VAL:
        results = TRANSFORMS.build(cfg)(results)
    return results


def _series_frames(study):
    (folder, ) = [p for p in (study / 'dicom').rglob('*') if p.is_dir()
                  and any(c.is_file() for c in p.iterdir())]
    with open_source(str(folder)) as source:
        return list(source)


@pytest.mark.parametrize('num_slices', [1, 3])
def test_source_slice_equals_the_dataset_slice(study, tmp_path, num_slices):
    frames = _series_frames(study)
    dataset = DicomSliceDataset(data_root=str(study), num_slices=num_slices,
                                index_file=str(tmp_path / 'idx.json'),
                                pipeline=VAL)
    for k in (0, 3, len(frames) - 1):
        if num_slices == 1:
            sample = frame_to_sample(frames[k])
        else:
            sample = slab_to_sample(frames, offsets=(-1, 0, 1), centre=k)
        got = _pipeline(sample)
        (i, ) = [i for i in range(len(dataset))
                 if dataset.get_data_info(i)['slice_index'] == k]
        expected = dataset[i]
        torch.testing.assert_close(got['inputs'], expected['inputs'])
        meta = got['data_samples'].metainfo
        ref = expected['data_samples'].metainfo
        for key in ('series_uid', 'slice_index', 'img_shape', 'ori_shape',
                    'scale_factor'):
            assert meta[key] == ref[key], key
        assert os.path.samefile(meta['img_path'], ref['img_path'])
        np.testing.assert_allclose(meta['affine'], ref['affine'], atol=1e-4)
        np.testing.assert_allclose(meta['homography_matrix'],
                                   ref['homography_matrix'])
