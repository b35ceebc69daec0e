"""How much of MNIST's labels M1's code can carry: the error floor of M1+M2 (Kingma et al. 2014).

    python benchmarks/m1_features.py                       # the M1 that benchmarks/mnist_ssl.py stacks M2 on
    python benchmarks/m1_features.py --m1 benchmarks/runs/burda_iwae5_paper --tag iwae5   # another VAE as M1

M2 of "M1+M2" sees an image only through M1's posterior q(z1|x). A classifier trained on M1's posterior means with
*all* 50,000 training labels bounds what any semi-supervised M2 on those features can reach with 100 or 3000 of
them; if that bound sits near the paper's M1+M2 figures (3.33% at 100 labels, 2.18% at 3000), the gap is in M1, not
in M2's training. Classifiers: multinomial logistic regression and one softplus hidden layer of 500 units (M2's
own classifier width), Adam 1e-3, batch 100, 30 epochs, on the posterior means of the fixed binarisation of the
training images; scored on the test set. Both on M1's active dimensions (what --active-only passes to M2) and on
all of them. Figures: ``mnist_m1_features_{linear,mlp}[_all]_error_pct``, ``mnist_m1_active_units``; with
``--tag T`` (another M1) ``mnist_m1_T_...``, so one M1's figures never overwrite another's; with ``--features-from
intensities`` (M1 encodes the grey levels of the images, as ``data.features_from`` lets M1+M2 do)
``mnist_m1[_T]_grey_...``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit.config import CHOICES  # noqa: E402
from vaekit.runs import load_data, load_model  # noqa: E402
from vaekit.semi_supervised import ACTIVE_REFERENCE_IMAGES, LatentFeatures, feature_inputs  # noqa: E402

SCRIPT = "m1_features"
EPOCHS, BATCH, HIDDEN, LR = 30, 100, 500, 1e-3


def classifier_error(z_train, y_train, z_test, y_test, hidden: int, seed: int = 0) -> float:
    """Test error (%) of a classifier trained with every training label on features ``z``."""
    torch.manual_seed(seed)
    dim = z_train.shape[1]
    net = torch.nn.Linear(dim, 10) if hidden == 0 else torch.nn.Sequential(
        torch.nn.Linear(dim, hidden), torch.nn.Softplus(), torch.nn.Linear(hidden, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(z_train)).split(BATCH):
            loss = torch.nn.functional.cross_entropy(net(z_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return (net(z_test).argmax(1) != y_test).double().mean().item() * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m1", default="benchmarks/runs/ssl/m1_e500", help="the M1 run (a Gaussian VAE on MNIST)")
    parser.add_argument("--tag", default="", help="names the figures of an M1 other than the default one "
                        "(mnist_m1_<tag>_...); required with --m1")
    parser.add_argument("--features-from", choices=CHOICES["data.features_from"], default="binarized",
                        help="what M1 encodes: the fixed binarisation of the images, or their grey levels "
                             "(figures mnist_m1[_<tag>]_grey_...)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.m1 != parser.get_default("m1") and not args.tag:
        parser.error("--m1 names another M1: give it a --tag too, so its figures do not overwrite the default M1's "
                     "(e.g. --tag iwae5)")
    grey = args.features_from == "intensities"
    stem = "mnist_m1" + (f"_{args.tag}" if args.tag else "") + ("_grey" if grey else "")
    torch.set_num_threads(args.threads)
    m1 = str(ROOT / args.m1) if not Path(args.m1).is_absolute() else args.m1
    config, _, _ = load_model(m1)
    data = load_data(config.data)
    # the images as M1+M2 would hand them to this M1 (data.features_from)
    view = replace(config, data=replace(config.data, features=m1, features_from=args.features_from))
    x_train, x_test = feature_inputs(view, data, "train"), feature_inputs(view, data, "test")
    y_train, y_test = data.train_labels.long(), data.test_labels.long()
    command = ("python benchmarks/m1_features.py" + (f" --m1 {args.m1} --tag {args.tag}" if args.tag else "")
               + (" --features-from intensities" if grey else ""))
    epochs_done = sum(1 for _ in open(Path(m1) / "metrics.jsonl"))
    for active_only in (True, False):
        features = LatentFeatures(m1, x_train[:ACTIVE_REFERENCE_IMAGES] if active_only else None)
        z_train, z_test = features.mean(x_train), features.mean(x_test)
        if active_only:
            record(SCRIPT, f"{stem}_active_units", features.dim, "units", command,
                   f"{args.m1} ({epochs_done} epochs): latent dimensions of {features.model.latent_dim} whose "
                   f"posterior mean varies with variance > 0.01 over the first {ACTIVE_REFERENCE_IMAGES} training images")
        for name, hidden in (("linear", 0), ("mlp", HIDDEN)):
            error = classifier_error(z_train, y_train, z_test, y_test, hidden)
            what = "logistic regression" if hidden == 0 else f"softplus MLP of {hidden} hidden units"
            record(SCRIPT, f"{stem}_features_{name}{'' if active_only else '_all'}_error_pct", error, "%", command,
                   f"{what} on M1's posterior means ({features.dim} {'active ' if active_only else ''}dimensions) "
                   f"of the {'grey-level' if grey else 'binarised'} images, "
                   f"trained with all {len(y_train)} training labels ({EPOCHS} epochs, Adam {LR}, batch {BATCH}); "
                   f"test error over {len(y_test)} images; paper M1+M2: 3.33% (100 labels), 2.18% (3000 labels)")


if __name__ == "__main__":
    main()
