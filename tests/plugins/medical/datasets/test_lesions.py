"""LesionDetectionDataset: world annotations -> per-slice boxes through the
series geometry (oblique too), ignore regions, patient-level split."""
import numpy as np
import pydicom
import pytest

from perception.registry import DATASETS
from perception_medical.datasets.lesions import LesionDetectionDataset, lesion_sections
from perception_medical.synth import write_ct_study


@pytest.fixture(scope='module')
def oblique_study(tmp_path_factory):
    root = tmp_path_factory.mktemp('oblique')
    study = write_ct_study(root, n_patients=2, size=96, n_slices=48,
                           coverage_mm=240, fov_mm=320, oblique=True,
                           lesions_per_patient=3, seed=12)
    return root, study, str(root / 'index.json')


def test_sections_by_hand():
    affine = np.diag([2.0, 1.0, 1.0, 1.0])  # z spacing 2 mm, axis-aligned
    affine[:3, :3] = [[0, 0, 1], [0, 1, 0], [2, 0, 0]]  # (z,y,x) -> (x,y,z)
    # LPS (20, 10, 10) -> index z=5, y=10, x=20; radius 5 mm
    sections = lesion_sections(affine, (20, 64, 64), np.array([20, 10, 10.]),
                               10.0)
    assert [k for k, _, _ in sections] == [3, 4, 5, 6, 7]
    k, box, size = sections[2]
    np.testing.assert_allclose(box, [15.5, 5.5, 25.5, 15.5])
    assert size == pytest.approx(10.0)
    rs = np.sqrt(21.0)  # d = 2 mm
    np.testing.assert_allclose(sections[1][1], [20.5 - rs, 10.5 - rs,
                                                20.5 + rs, 10.5 + rs],
                               rtol=1e-6)
    assert sections[0][2] == pytest.approx(6.0)  # d = 4 mm: radius 3


def test_world_coordinates_land_on_lesion_voxels(oblique_study, tmp_path):
    root, study, index = oblique_study
    ds = LesionDetectionDataset(data_root=str(root), split='all',
                                index_file=index)
    checked = 0
    for entry in study.series:
        for les in entry['lesions']:
            if les['diameter_mm'] < 10:
                continue
            # the slice with the widest box of this lesion
            best = None
            for i in range(len(ds)):
                info = ds.get_data_info(i)
                if info['series_uid'] != entry['series_uid']:
                    continue
                for box in info['gt_bboxes']:
                    centre = ((box[:2] + box[2:]) / 2 - 0.5)
                    zyx = np.r_[info['slice_index'], centre[::-1]]
                    lps = np.array(info['affine'], float) @ np.r_[zyx, 1]
                    off = np.linalg.norm(lps[:3] - les['center_lps'])
                    width = box[2] - box[0]
                    if off < les['diameter_mm'] / 2 and (
                            best is None or width > best[1]):
                        best = (i, width, box)
            assert best is not None
            i, _, box = best
            # the box centre voxel, read with pydicom, holds the lesion
            ds_file = pydicom.dcmread(ds.get_data_info(i)['img_path'])
            hu = ds_file.pixel_array * float(ds_file.RescaleSlope) + \
                float(ds_file.RescaleIntercept)
            cx, cy = ((box[:2] + box[2:]) / 2).astype(int)
            assert abs(hu[cy, cx] - les['hu']) < 50
            checked += 1
    assert checked >= 3


def test_box_csv_agrees_with_world_annotations(oblique_study, tmp_path):
    root, _, index = oblique_study
    kw = dict(data_root=str(root), split='all', min_size_mm=0.0,
              index_file=index)
    from_world = LesionDetectionDataset(**kw)
    from_boxes = LesionDetectionDataset(ann_file=None,
                                        box_file='slice_boxes.csv', **kw)
    assert len(from_world) == len(from_boxes) > 0
    n_boxes = 0
    for i in range(len(from_world)):
        a, b = from_world.get_data_info(i), from_boxes.get_data_info(i)
        order_a = np.lexsort(a['gt_bboxes'].T[::-1])
        order_b = np.lexsort(b['gt_bboxes'].T[::-1])
        np.testing.assert_allclose(a['gt_bboxes'][order_a],
                                   b['gt_bboxes'][order_b], atol=2e-3)
        n_boxes += len(a['gt_bboxes'])
    assert n_boxes > 0


def test_tiny_sections_are_ignore_regions(oblique_study, tmp_path):
    root, study, index = oblique_study
    ds = LesionDetectionDataset(data_root=str(root), split='all',
                                min_size_mm=6.0, filter_empty=True,
                                index_file=index)
    flags, sizes = [], []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        spacing = np.linalg.norm(np.array(info['affine'])[:3, 2])
        for box, flag in zip(info['gt_bboxes'], info['gt_ignore_flags']):
            sizes.append((box[2] - box[0]) * spacing)
            flags.append(bool(flag))
    flags, sizes = np.array(flags), np.array(sizes)
    assert flags.any() and (~flags).any()
    # clipped boxes at the image border aside, ignored = smaller than 6 mm
    assert (sizes[flags] < 6.0 + 1e-3).all()
    assert (sizes[~flags] >= 6.0 - 1e-3).all()
    out = DATASETS.build(dict(type='LesionDetectionDataset',
                              data_root=str(root), split='all',
                              filter_empty=True, min_size_mm=6.0,
                              index_file=index,
                              pipeline=[dict(type='PackInputs')]))[0]
    inst = out['data_samples'].gt_instances
    assert inst.bboxes.dtype.is_floating_point and inst.ignore_flags.dtype \
        == __import__('torch').bool
    meta = out['data_samples'].metainfo
    assert {'series_uid', 'slice_index', 'affine', 'img_path'} <= set(meta)


def test_patient_level_split(tmp_path):
    write_ct_study(tmp_path, n_patients=5, series_per_patient=2, size=16,
                   n_slices=3, lesions_per_patient=1, seed=8)
    kw = dict(data_root=str(tmp_path), val_fraction=0.4,
              index_file=str(tmp_path / 'i.json'))
    train = LesionDetectionDataset(split='train', **kw)
    val = LesionDetectionDataset(split='val', **kw)
    every = LesionDetectionDataset(split='all', **kw)
    patients = {s: {d.get_data_info(i)['patient'] for i in range(len(d))}
                for s, d in (('train', train), ('val', val), ('all', every))}
    assert not patients['train'] & patients['val']
    assert patients['train'] | patients['val'] == patients['all']
    assert len(patients['val']) == 2 and len(patients['all']) == 5
    assert len(train) + len(val) == len(every) == 30
    # both series of a patient go to the same side
    series_of = {}
    for d, side in ((train, 'train'), (val, 'val')):
        for i in range(len(d)):
            info = d.get_data_info(i)
            series_of.setdefault(info['patient'], set()).add(
                (side, info['series_uid']))
    assert all(len(v) == 2 and len({s for s, _ in v}) == 1
               for v in series_of.values())


def test_unmatched_annotations_are_counted(tmp_path):
    write_ct_study(tmp_path, n_patients=1, size=16, n_slices=3, seed=1)
    with open(tmp_path / 'annotations.csv', 'a') as f:
        f.write('9.9.9,0,0,0,6\n')
    ds = LesionDetectionDataset(data_root=str(tmp_path), split='all',
                                index_file=str(tmp_path / 'i.json'))
    assert len(ds.unmatched) == 1 and '9.9.9' in ds.unmatched[0]
