"""Brain-genotype scores: a multi-task 3D CNN predicts SNP genotypes from T1 MRI.

The class probabilities on held-out subjects are the brain-genotype scores; gradient saliency localises
them, and nested OLS tests whether they explain cognition beyond confounders. Regional imaging-derived
phenotypes (IDPs) with classical classifiers are the baseline. Each stage is a ``ginn bgs`` subcommand.
"""
