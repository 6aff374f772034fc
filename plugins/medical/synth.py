"""``perception_medical.synth``: synthetic CT studies (the implementation
lives in :mod:`perception_medical.synth_ct`)."""
from perception_medical.synth_ct import planted_phi, write_ct_study

__all__ = ['write_ct_study', 'planted_phi']
