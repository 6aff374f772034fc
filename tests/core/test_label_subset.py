"""LabelSubsetDataset: image-level and group-level label subsets (same seed
same subset, nested fractions, never fewer than 2 groups), bad samples
replaced from inside the subset, built from a config through DATASETS."""
from __future__ import annotations

import numpy as np
import pytest

from perception.data import BadSampleError, PerceptionDataset
from perception.data.subset import LabelSubsetDataset, SubsetError, select_images
from perception.registry import DATASETS


class Records(PerceptionDataset):
    """n samples, sample i of group ``i // per_group``; ``bad`` fail to read."""

    def __init__(self, n=40, per_group=5, bad=(), **kwargs):
        self.n, self.per_group, self.bad = n, per_group, set(bad)
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(idx=i, patient=f'p{i // self.per_group:02d}')
                for i in range(self.n)]

    def prepare_data(self, idx):
        if idx in self.bad:
            return self._bad(idx)
        return dict(self.get_data_info(idx))

    def _bad(self, idx):
        try:
            raise BadSampleError(f'sample {idx} is unreadable')
        except BadSampleError as exc:
            self.skip_bad(exc, index=idx, stage='read')
            return None


def test_image_fraction_is_seeded_nested_and_rounds_up():
    a = select_images(1000, 0.1, seed=3)
    assert len(a) == 100 and np.array_equal(a, select_images(1000, 0.1, 3))
    assert not np.array_equal(a, select_images(1000, 0.1, seed=4))
    assert set(select_images(1000, 0.01, 3)) <= set(a)   # nested
    assert len(select_images(50, 0.01, 0)) == 1           # at least one
    assert np.array_equal(select_images(7, 1.0, 0), np.arange(7))
    with pytest.raises(SubsetError, match=r'fraction must be in \(0, 1\]'):
        select_images(10, 0.0)


def test_wrapper_serves_the_chosen_samples():
    data = LabelSubsetDataset(Records(n=200), fraction=0.1, seed=1)
    assert len(data) == 20
    chosen = [data[i]['idx'] for i in range(len(data))]
    assert chosen == sorted(select_images(200, 0.1, 1).tolist())
    assert data.get_data_info(0)['idx'] == chosen[0]


def test_patient_subset_whole_patients_seeded_at_least_two():
    inner = Records(n=40, per_group=5)  # 8 patients of 5 samples
    four = LabelSubsetDataset(inner, num_groups=4, group_key='patient',
                              seed=0)
    again = LabelSubsetDataset(inner, num_groups=4, group_key='patient',
                               seed=0)
    assert four.groups == again.groups and len(four.groups) == 4
    assert len(four) == 20  # every sample of each chosen patient
    served = {four[i]['patient'] for i in range(len(four))}
    assert served == set(four.groups)
    two = LabelSubsetDataset(inner, num_groups=2, group_key='patient', seed=0)
    assert set(two.groups) <= set(four.groups)  # nested
    other = [LabelSubsetDataset(inner, num_groups=4, group_key='patient',
                                seed=s).groups for s in range(1, 6)]
    assert any(g != four.groups for g in other)
    everyone = LabelSubsetDataset(inner, group_key='patient')
    assert len(everyone) == 40 and len(everyone.groups) == 8
    with pytest.raises(SubsetError, match='at least 2 groups'):
        LabelSubsetDataset(inner, num_groups=1, group_key='patient')
    with pytest.raises(SubsetError, match='has 8 groups; ask for at most 8'):
        LabelSubsetDataset(inner, num_groups=9, group_key='patient')
    with pytest.raises(SubsetError, match="no 'site' field"):
        LabelSubsetDataset(inner, num_groups=2, group_key='site')


def test_a_bad_sample_is_replaced_from_inside_the_subset():
    inner = Records(n=100, bad=set(range(0, 100, 3)), on_bad_sample='skip',
                    max_bad_fraction=0.5)
    data = LabelSubsetDataset(inner, fraction=0.2, seed=2)
    allowed = set(data.indices.tolist()) - inner.bad
    got = {data[i]['idx'] for i in range(len(data))}
    assert got <= allowed and got


def test_built_from_a_config_with_the_inner_dataset_as_a_dict():
    DATASETS.register_module(name='_SubsetTestRecords', module=Records,
                             force=True)
    try:
        data = DATASETS.build(dict(
            type='LabelSubsetDataset', fraction=0.5, seed=0,
            dataset=dict(type='_SubsetTestRecords', n=10)))
    finally:
        DATASETS._module_dict.pop('_SubsetTestRecords')
    assert isinstance(data, LabelSubsetDataset) and len(data) == 5
    with pytest.raises(SubsetError, match='not both'):
        LabelSubsetDataset(Records(), fraction=0.5, num_groups=2,
                           group_key='patient')
