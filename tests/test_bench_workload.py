"""The whole-workload and training-command benchmarks and the GPU check script run end to end at tiny sizes,
so they cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_train_command  # noqa: E402
import bench_workload  # noqa: E402
import torch  # noqa: E402
from authors_loop import AuthorsNetwork, authors_seconds_per_network_epoch  # noqa: E402


def test_workload_benchmark_smoke_run(tmp_path, capsys):
    summary = bench_workload.main(["--scale", "0.01", "--max-epochs", "2", "--threads", "1",
                                   "--outdir", str(tmp_path / "run")])
    stages = {row["stage"]: row for row in summary["stages"]}
    params = summary["params"]
    # 2 members per dataset: observed + 2 Perm I datasets in one batched run, all scored
    assert params["members"] == 2 and params["permutations"] == 2
    assert stages["train_interaction y observed"]["networks"] == 2
    assert stages["train_interaction y perm-1-2"]["networks"] == 4
    assert stages["score y perm-1-2"]["networks"] == 4
    for name in ("train_interaction y perm-1-2", "score y perm-1-2", "train_main y"):
        assert stages[name]["flops"] > 0 and stages[name]["seconds"] > 0 and stages[name]["peak_mib"] > 0
    assert 1 <= stages["train_interaction y perm-1-2"]["network_epochs"] <= 4 * 2   # --max-epochs 2
    assert (tmp_path / "run" / "test" / "y.results.tsv").is_file()
    assert summary["extrapolated_seconds"] > summary["total_seconds"]
    assert summary["authors_ratio"] > 0 and summary["loop_ratio"] > 0 and summary["naive_ratio"] > 0
    assert "pair-coalition evaluations/s" in capsys.readouterr().out


def test_train_command_benchmark_smoke_run(capsys):
    per_epoch = bench_train_command.main(["--scale", "0.01", "--repeats", "1", "--members", "2", "--threads", "1"])
    assert len(per_epoch) == 1 and per_epoch[0] > 0
    out = capsys.readouterr().out
    assert "ms per network-epoch" in out and "start-up alone" in out and "the authors' loop" in out


def test_authors_loop_keeps_their_network():
    """The timing replica of the authors' loop: each gene value reads only its own SNPs (their masked
    linear layer), a 10-100-1 predictor follows, and the L1 terms are the weights' norms."""
    sizes = [3, 2, 4]
    model = AuthorsNetwork(sizes, torch.Generator().manual_seed(0))
    x = torch.randn(5, sum(sizes))
    changed = x.clone()
    changed[:, 3:5] += 1.0                                             # gene 2's SNPs only
    genes = lambda v: torch.mm(v, model.gene_w * model.mask) + model.gene_b  # noqa: E731
    assert torch.equal(genes(x)[:, [0, 2]], genes(changed)[:, [0, 2]])
    assert not torch.equal(genes(x)[:, 1], genes(changed)[:, 1])
    assert model.hidden_w.shape == (3, 100) and model.out_w.shape == (100, 1)
    prediction, gene_l1, predictor_l1 = model(x)
    assert prediction.shape == (5, 1)
    assert torch.isclose(gene_l1, model.gene_w.abs().sum())
    assert torch.isclose(predictor_l1, model.hidden_w.abs().sum() + model.out_w.abs().sum())
    assert authors_seconds_per_network_epoch(200, 100, sizes, epochs=1) > 0


def test_gpu_check_dry_run(capsys):
    """benchmarks/gpu_check.py, which a session with a lent GPU runs, at tiny sizes on the CPU."""
    import gpu_check

    results = gpu_check.main(["--dry-run"])
    assert results["device"] == "cpu"
    assert results["workload"]["stages"][-1]["stage"] == "report report"
    step = results["large_step"]
    assert step["seconds_per_epoch"] > 0 and step["network_samples_per_s"] > 0 and step["gflops"] > 0
    assert "UK Biobank-sized training" in capsys.readouterr().out
