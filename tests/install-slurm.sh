#!/bin/sh
# Installs what tests/test_slurm.py needs to start a private single-node SLURM (Debian's
# slurmctld, slurmd, slurm-client and munge) when it is missing and this machine can install it
# (root with apt-get). Never fails: without SLURM the test is skipped and says why.
set -u
for tool in slurmctld slurmd sbatch munged; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
done
[ -z "${missing:-}" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: SLURM is not installed and cannot be installed here (needs root and apt-get); its test will be skipped"
    exit 0
fi
echo "install-slurm: installing Debian's slurmctld, slurmd, slurm-client and munge for the SLURM test"
if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
        slurmctld slurmd slurm-client munge >/dev/null; }; then
    echo "install-slurm: installation failed; the SLURM test will be skipped"
fi
exit 0
