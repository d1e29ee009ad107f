"""``ginn bgs``: the brain-genotype-scores workflow, one subcommand per stage.

Stages import lazily so that ``ginn bgs associate`` never pays for importing torch.
"""

from __future__ import annotations

import click

from ..cli import LazyGroup

# subcommand -> "module:attribute", in workflow order
STAGES: dict[str, str] = {
    "simulate": "ginn.bgs.synth:simulate_command",
    "prepare": "ginn.bgs.images:prepare_command",
    "train": "ginn.bgs.train:train_command",
    "score": "ginn.bgs.score:score_command",
    "agreement": "ginn.bgs.agreement:agreement_command",
    "saliency": "ginn.bgs.saliency:saliency_command",
    "idp": "ginn.bgs.idp:idp_command",
    "associate": "ginn.bgs.associate:associate_command",
    "results": "ginn.bgs.report:results_command",
}


@click.group("bgs", cls=LazyGroup, lazy_commands=STAGES)
def bgs_group() -> None:
    """Brain-genotype scores: a 3D CNN predicts SNP genotypes from T1 MRI; saliency; cognition tests.

    Stages: simulate -> prepare -> train -> score -> saliency; agreement (across seeds); idp (baseline);
    associate (calibrated on negative-control heads); results.
    """
