#!/usr/bin/env bash
# The wall time of one short search (digits, 12 trials, one worker, no ablation) at two commits,
# alternated in one run so that both see the same machine load; prints each run and the ratio.
#   benchmarks/ab_commits.sh OLD_COMMIT NEW_COMMIT [RUNS]   (from the repository root, after
#   `make install`; each commit is checked out in a temporary worktree, the venv is shared)
set -euo pipefail
old=$1 new=$2 runs=${3:-3}
repo=$(pwd)
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/old" >/dev/null 2>&1 || true;
      git -C "$repo" worktree remove --force "$work/new" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/old" "$old"
git worktree add -q --detach "$work/new" "$new"
cat > "$work/s.toml" <<'TOML'
[study]
name = "ab"
n_trials = 12
random_trials = 8
[ablation]
after_search = false
TOML
declare -A total=([old]=0 [new]=0)
for run in $(seq "$runs"); do
    for side in old new; do
        rm -f "$work"/db-"$side".db*
        start=$(date +%s.%N)
        (cd "$work" && env PYTHONPATH="$work/$side" "$repo/.venv/bin/python" -m nin_search \
            optimize s.toml --storage "sqlite:///db-$side.db" --workers 1 --no-progress -q \
            >/dev/null)
        seconds=$(echo "$(date +%s.%N) - $start" | bc)
        total[$side]=$(echo "${total[$side]} + $seconds" | bc)
        echo "run $run $side ($(git rev-parse --short "${!side}")): ${seconds} s, load $(cut -d' ' -f1 /proc/loadavg)"
    done
done
echo "RESULT ab_commits $(echo "scale=3; ${total[old]} / ${total[new]}" | bc)  # old time / new time"
