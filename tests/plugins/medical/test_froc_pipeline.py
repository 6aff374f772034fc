"""FROC maps slice boxes back through the test pipeline's geometry (issue 12,
item 2): a pipeline that resizes and crops gives the same hits and CPM as
one that leaves the slices alone, and the old direct mapping (current-image
boxes straight through the affine) would have been wrong."""
import numpy as np
import pytest

pytest.importorskip('pydicom')

from perception.data.boxes import transform_boxes  # noqa: E402
from perception.data.geometry import record_geometry  # noqa: E402
from perception.data.transforms import PackInputs, Resize  # noqa: E402
from perception.structures import make_instances  # noqa: E402
from perception_medical.annotations import read_annotations  # noqa: E402
from perception_medical.datasets import LesionDetectionDataset  # noqa: E402
from perception_medical.evaluation import slice_boxes_to_detections  # noqa: E402
from perception_medical.froc_metric import FROCMetric  # noqa: E402
from perception_medical.synth import write_ct_study  # noqa: E402

# source slices are 64x64: resize to 48 wide x 56 high, then crop 40x44 at
# (left 4, top 5). Every source point moves by >= 4 px (~24 mm at 5.9 mm
# pixels) on the current image, more than any lesion's radius (<= 15 mm).
RESIZE = (48, 56)
CROP = dict(left=4, top=5, width=40, height=44)


class Crop:
    """A fixed crop that records its geometry like the core's transforms."""

    def __init__(self, left, top, width, height):
        self.left, self.top, self.width, self.height = left, top, width, height

    def __call__(self, results: dict) -> dict:
        x, y, w, h = self.left, self.top, self.width, self.height
        matrix = np.array([[1.0, 0, -x], [0, 1, -y], [0, 0, 1]])
        results['img'] = results['img'][y:y + h, x:x + w]
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = transform_boxes(results['gt_bboxes'],
                                                   matrix)
        record_geometry(results, matrix, (h, w))
        return results


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    return write_ct_study(tmp_path_factory.mktemp('froc_study'),
                          n_patients=2, size=64, n_slices=24,
                          lesions_per_patient=3, noise_hu=5.0, seed=3)


def _dataset(study, tmp_path, pipeline):
    return LesionDetectionDataset(
        data_root=str(study.dicom_dir), ann_file=str(study.annotations_csv),
        split='all', min_size_mm=0.0,
        index_file=str(tmp_path / 'index' / 'index.json'),
        pipeline=pipeline + [PackInputs()])


def _source_predictions(dataset, rng):
    """Per slice: jittered ground-truth boxes and two false positives, in
    source pixels, with scores (the same for every pipeline)."""
    preds = []
    for i in range(len(dataset)):
        gt = dataset[i]['data_samples'].gt_instances.bboxes.numpy()
        boxes = gt + rng.uniform(-0.3, 0.3, gt.shape)
        fps = rng.uniform(16, 40, (2, 2))
        boxes = np.concatenate([boxes, np.c_[fps, fps + rng.uniform(
            2, 5, (2, 2))]]).astype(np.float32)
        scores = np.r_[rng.uniform(0.3, 1.0, len(gt)),
                       rng.uniform(0.0, 0.9, 2)].astype(np.float32)
        preds.append((boxes, scores, len(gt)))
    return preds


def _run(dataset, preds, metric):
    """FROC of ``preds`` (source pixels) predicted on each sample's current
    image: mapped forward through the homography the pipeline recorded."""
    samples = []
    for i, (boxes, scores, _) in enumerate(preds):
        sample = dataset[i]['data_samples']
        current = transform_boxes(
            boxes, sample.metainfo.get('homography_matrix', np.eye(3)))
        sample.pred_instances = make_instances(
            current, np.zeros(len(current), np.int64), scores=scores)
        samples.append(sample)
    metric.process({}, [s.to_dict() for s in samples])
    return metric.evaluate(len(samples)), samples


def test_froc_same_hits_and_cpm_with_resize_and_crop(study, tmp_path):
    plain = _dataset(study, tmp_path, [])
    resized = _dataset(study, tmp_path, [Resize(RESIZE), Crop(**CROP)])
    assert len(plain) == len(resized) > 0
    preds = _source_predictions(plain, np.random.default_rng(0))

    # the pipeline did to the ground truth what its homography says
    for i in range(0, len(plain), 7):
        sample = resized[i]['data_samples']
        assert tuple(sample.img_shape) == (CROP['height'], CROP['width'])
        np.testing.assert_allclose(
            sample.gt_instances.bboxes.numpy(),
            transform_boxes(plain[i]['data_samples'].gt_instances.bboxes,
                            sample.homography_matrix), atol=1e-3)

    ann = str(study.annotations_csv)
    base, _ = _run(plain, preds, FROCMetric(ann_file=ann))
    out, samples = _run(resized, preds, FROCMetric(ann_file=ann))
    assert base['froc/lesions'] > 0 and base['froc/detected'] > 0
    assert 0.0 < base['froc/cpm'] < 1.0  # neither trivially 0 nor 1
    for key in ('froc/detected', 'froc/false_positives', 'froc/scans',
                'froc/lesions'):
        assert out[key] == base[key], key
    for key, value in base.items():
        assert out[key] == pytest.approx(value, abs=1e-9), key

    # the predictions lie on the current image (not outside the crop)
    for s in samples:
        b = s.pred_instances.bboxes.numpy()
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= CROP['width']).all() \
            and (b[:, 3] <= CROP['height']).all()

    # the old mapping (current-image boxes straight through the affine)
    # puts every lesion box further from its true position than the radius
    # of any lesion of its series
    lesions = read_annotations(ann)
    moved = []
    for s, (_, _, n_gt) in zip(samples, preds):
        if not n_gt:
            continue
        current = s.pred_instances.bboxes.numpy()[:n_gt]
        scores = s.pred_instances.scores.numpy()[:n_gt]
        old = slice_boxes_to_detections(s.series_uid, s.slice_index,
                                        s.affine, current, scores)
        new = slice_boxes_to_detections(s.series_uid, s.slice_index,
                                        s.affine, current, scores,
                                        s.homography_matrix)
        for (_, old_c, _, _), (_, new_c, _, _) in zip(old, new):
            # (conservative: the largest radius of the series' lesions)
            radius = max(d / 2 for _, d in lesions[s.series_uid])
            moved.append(np.linalg.norm(old_c - new_c) - radius)
    assert moved and min(moved) > 0
    old_metric = FROCMetric(ann_file=ann)
    for s in samples:  # what FROCMetric did before: no homography
        del s.homography_matrix
    old_metric.process({}, [s.to_dict() for s in samples])
    old_out = old_metric.evaluate(len(samples))
    assert old_out['froc/detected'] < base['froc/detected']
    assert old_out['froc/cpm'] < base['froc/cpm']


def test_slice_boxes_to_detections_undoes_the_homography():
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 0.7], [0, 0.7, 0], [2.5, 0, 0]]
    source = np.array([[10.0, 20.0, 18.0, 26.0]])
    h = np.array([[2.0, 0, -6], [0, 1.5, -3], [0, 0, 1]])  # resize + crop
    direct = slice_boxes_to_detections('s', 3, affine, source, [0.5])
    mapped = slice_boxes_to_detections('s', 3, affine,
                                       transform_boxes(source, h), [0.5], h)
    np.testing.assert_allclose(mapped[0][1], direct[0][1], atol=1e-5)
    assert mapped[0][3] == pytest.approx(direct[0][3])
    assert direct[0][3] == pytest.approx(8 * 0.7 / 2)
