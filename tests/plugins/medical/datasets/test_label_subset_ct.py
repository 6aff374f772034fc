"""Patient-level label fractions on a generated CT study: LabelSubsetDataset
over LesionDetectionDataset's training split takes whole patients, the same
seed gives the same patients, no patient is in both the labelled subset
and the validation split, and fewer than 2 patients is refused; the
lesion-balanced sampler draws from the subset only."""
from __future__ import annotations

import pytest

from perception.data.subset import LabelSubsetDataset, SubsetError
from perception_medical.datasets.lesions import LesionDetectionDataset
from perception_medical.datasets.sampler import LesionBalancedSampler
from perception_medical.synth import write_ct_study


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    return write_ct_study(tmp_path_factory.mktemp('ct_subset'), n_patients=8,
                          size=32, n_slices=6, lesions_per_patient=1, seed=4,
                          quiet=True)


def _split(study, tmp_path, split):
    return LesionDetectionDataset(
        data_root=str(study.dicom_dir), ann_file=str(study.annotations_csv),
        split=split, val_fraction=0.25, split_seed=0,
        index_file=str(tmp_path / 'index.json'))


def _patients(dataset) -> set[str]:
    return {dataset.get_data_info(i)['patient'] for i in range(len(dataset))}


def test_patient_subsets_are_whole_seeded_and_never_cross_splits(study,
                                                                 tmp_path):
    train, val = _split(study, tmp_path, 'train'), _split(study, tmp_path, 'val')
    assert len(_patients(train)) == 6 and len(_patients(val)) == 2
    subsets = {}
    for seed in (0, 1, 2):
        subset = LabelSubsetDataset(train, num_groups=2, group_key='patient',
                                    seed=seed)
        again = LabelSubsetDataset(_split(study, tmp_path, 'train'),
                                   num_groups=2, group_key='patient',
                                   seed=seed)
        assert _patients(subset) == _patients(again) == set(subset.groups)
        assert not _patients(subset) & _patients(val)  # no patient in two
        assert len(subset) == 2 * 6  # every slice of each chosen patient
        subsets[seed] = frozenset(subset.groups)
    assert len(set(subsets.values())) > 1  # the seed matters
    four = LabelSubsetDataset(train, num_groups=4, group_key='patient')
    assert subsets[0] <= set(four.groups)  # nested with one seed
    with pytest.raises(SubsetError, match='at least 2 groups'):
        LabelSubsetDataset(train, num_groups=1, group_key='patient')


def test_the_lesion_sampler_draws_from_the_subset(study, tmp_path):
    train = _split(study, tmp_path, 'train')
    subset = LabelSubsetDataset(train, num_groups=2, group_key='patient')
    sampler = LesionBalancedSampler(subset, positive_fraction=0.5, seed=0)
    drawn = list(sampler)
    assert len(drawn) == len(subset) and max(drawn) < len(subset)
    assert {subset.get_data_info(i)['patient'] for i in drawn} <= set(
        subset.groups)
