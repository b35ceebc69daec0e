#!/usr/bin/env sh
# The benchmark runs that take longer than one working session, continued from their committed checkpoints.
#
#   sh benchmarks/long_runs.sh            # start both lanes in the background (logs in runs/logs/)
#   sh benchmarks/long_runs.sh a          # or one lane in the foreground
#
# A new machine has no runs/ directory: a run that must outlive a session lives in benchmarks/runs/ and its
# checkpoint is committed when the session stops (SIGTERM writes one; the same command resumes it exactly,
# and scores it once its last epoch is done). Each lane trains one run at a time on one thread, so the two
# lanes fill the two cores. A finished run is scored again whenever its command is repeated (minutes for
# MNIST, about an hour for PTB at K = 500), so drop its line here once its figures are recorded.
#
# To stop: pkill -TERM -f 'benchmarks/(mnist_burda|ptb_table).py' (SIGTERM makes each run write a checkpoint
# and exit; a K = 500 scoring keeps what it has scored in the run's eval_partial_*.pt every minute), then commit
# benchmarks/runs/ once (each commit of a 45 MB checkpoint counts against the session's submission size).
# Killing a lane's sh alone leaves its python child running.
set -eu
cd "$(dirname "$0")/.."
python -c "import vaekit" 2>/dev/null || { echo "no vaekit here: activate the virtual environment first (. .venv/bin/activate)" >&2; exit 2; }
mkdir -p runs/logs

lane_a() {  # issue 2: IWAE k = 5 as Burda et al. ran it (~11 h on a shared core; 5 MB checkpoint)
    python benchmarks/mnist_burda.py recipes/burda_iwae5_paper.toml --metric mnist_iwae5_burda_paper_test_nll
}

lane_b() {  # issue 3: the 60-epoch PTB VAE (recipes/ptb_vae_long.toml; ~5 min an epoch beside another job; 45 MB
            # checkpoint), scored at K = 500 (about an hour, resumable); then the LM of the same recipe, which the
            # VAE must beat (ptb_long_vae_minus_lm_test_nll; 60 epochs, about 3 hours); then Li et al.'s pretrained
            # encoder on the same recipe (on the 15-epoch recipe it was worth 1.6 nats over free bits alone)
    python benchmarks/ptb_table.py --recipe recipes/ptb_vae_long.toml --variant vae --threads 1 \
        --run-dir benchmarks/runs/ptb_long_vae
    python benchmarks/ptb_table.py --recipe recipes/ptb_vae_long.toml --variant lm --threads 1 \
        --run-dir benchmarks/runs/ptb_long_lm
    python benchmarks/ptb_table.py --recipe recipes/ptb_vae_long.toml --variant vae_pretrained --threads 1 \
        --pretrain-epochs 5 --run-dir benchmarks/runs/ptb_long_vae_pretrained
}

case "${1:-both}" in
    a) lane_a ;;
    b) lane_b ;;
    both)
        for lane in a b; do
            setsid nohup sh "$0" "$lane" > "runs/logs/lane_$lane.log" 2>&1 < /dev/null &
        done
        echo "lanes a and b started: tail -f runs/logs/lane_a.log runs/logs/lane_b.log" ;;
    *) echo "usage: sh benchmarks/long_runs.sh [a|b|both]" >&2; exit 2 ;;
esac
