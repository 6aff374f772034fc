"""FROCMetric's size bands (LUNA16's 3-6, 6-10, > 10 mm and >= 6 mm) and
its per-scan records with subgroup fields, on a constructed case computed
by hand."""
from __future__ import annotations

import numpy as np
import pytest

from perception_medical.froc_metric import FROCMetric

ANN = ('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
       's1,0,0,0,4\n'      # L1: 3-6 mm
       's1,40,0,0,8\n'     # L2: 6-10 mm
       's2,0,0,0,12\n')    # L3: > 10 mm
CANDIDATES = {  # (point, score)
    's1': [((0.5, 0, 0), 0.9), ((100, 0, 0), 0.8), ((41, 0, 0), 0.3)],
    's2': [((-50, 0, 0), 0.95), ((1, 1, 0), 0.6)],
}
FIELDS = {'s1': dict(manufacturer='Orion Medical', model='Orion CT 128',
                     patient_sex='F', age_band='60-69'),
          's2': dict(manufacturer='Cygnus Systems', model='LowDose 16',
                     patient_sex='M', age_band='70-79')}


def _evaluate(tmp_path, **kwargs):
    ann = tmp_path / 'a.csv'
    ann.write_text(ANN)
    metric = FROCMetric(ann_file=str(ann), **kwargs)
    metric.dataset_meta = dict(classes=('lesion', ), scan_fields={
        's1': FIELDS['s1'], 's2': dict(manufacturer='stale')})
    samples = []
    for uid, cands in CANDIDATES.items():
        sample = dict(series_uid=uid, pred_candidates=dict(
            points=np.array([p for p, _ in cands]),
            scores=np.array([s for _, s in cands])))
        if uid == 's2':  # a sample's own fields win over the dataset's
            sample['scan_fields'] = FIELDS['s2']
        samples.append(sample)
    metric.process({}, samples)
    return metric, metric.evaluate(len(samples))


def test_size_bands(tmp_path):
    _, out = _evaluate(tmp_path)
    assert (out['froc/lesions'], out['froc/detected'],
            out['froc/false_positives']) == (3, 3, 2)
    for band in ('3-6mm', '6-10mm', '>10mm'):
        assert out[f'froc/lesions_{band}'] == 1
        assert out[f'froc/detected_{band}'] == 1
    # 3-6 mm: L1 (0.9) is a hit, candidates on L2 / L3 are neither hits nor
    # FPs: FPs 0.95, 0.8 -> curve (0, 0) (0.5, 0) (0.5, 1) (1, 1)
    assert out['froc/sens@1_3-6mm'] == 1.0
    assert out['froc/cpm_3-6mm'] == pytest.approx(
        np.mean(np.interp([.125, .25, .5, 1, 2, 4, 8], [0, .5, .5, 1], [0, 0, 1, 1])))
    # > 10 mm: the hit (0.6) comes after both FPs: nothing below 1 FP/scan
    assert out['froc/cpm_>10mm'] == pytest.approx(
        np.mean(np.interp([.125, .25, .5, 1, 2, 4, 8], [0, .5, 1, 1], [0, 0, 0, 1])))
    assert out['froc/lesions_>=6mm'] == 2
    assert 'froc/sens@0.5_3-6mm' not in out  # bands report 1, 2, 4 FPs/scan


def test_per_scan_records_carry_fields_and_counts(tmp_path):
    metric, _ = _evaluate(tmp_path, operating_fp_rate=0.5)
    s1, s2 = metric.per_scan
    assert s1['series_uid'] == 's1' and s1['manufacturer'] == 'Orion Medical'
    assert s2['model'] == 'LowDose 16' and s2['patient_sex'] == 'M'
    # 0.5 FP per scan over 2 scans: one FP allowed -> threshold above 0.8
    assert (s1['lesions'], s1['hits'], s1['false_positives']) == (2, 1, 0)
    assert (s2['lesions'], s2['hits'], s2['false_positives']) == (1, 0, 1)
    assert s1['lesion_scores'] == [0.9, 0.3] and s1['diameters_mm'] == [4.0, 8.0]
    assert s2['fp_scores'] == [0.95] and s1['sensitivity'] == 0.5
    metric, _ = _evaluate(tmp_path, operating_fp_rate=1.0)
    assert [r['hits'] for r in metric.per_scan] == [2, 1]
    assert [r['false_positives'] for r in metric.per_scan] == [1, 1]


def test_bad_merge_option(tmp_path):
    (tmp_path / 'a.csv').write_text(ANN)
    with pytest.raises(ValueError, match="merge must be 'findings' or 'distance'"):
        FROCMetric(ann_file=str(tmp_path / 'a.csv'), merge='nearest')
