#!/usr/bin/env bash
# Fetch AlphaFold's released model parameters (the 2022-12-06 release: model_1..5, their _ptm and multimer_v3
# variants) and unpack them into DIR/params, the layout `predict --params-dir DIR/params` reads.
# Run with --help for the options.
set -euo pipefail
DL_SCRIPT="download_params.sh"
# shellcheck source=download_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/download_common.sh"

PARAMS_URL="https://storage.googleapis.com/alphafold/alphafold_params_2022-12-06.tar"
PARAMS_SIZE="5.3 GB"         # AlphaFold's README: ~5.3 GB download, ~5.3 GB unpacked
PARAMS_SHA256=""             # no published checksum: give --sha256 to check one; the digest is always recorded

usage() {
  cat <<EOF
usage: scripts/download_params.sh [options] DIR

Download AlphaFold's released parameters and unpack them into DIR/params (params_model_1.npz ...
params_model_5_ptm.npz, the multimer weights and LICENSE), then: predict --params-dir DIR/params.

  file                              size      from
  $(basename "$PARAMS_URL")   $PARAMS_SIZE    $PARAMS_URL

options:
  --sha256 HEX      expected sha256 of the .tar: a mismatch removes the download and fails (exit 1)
  --base-url URL    fetch the .tar from URL/$(basename "$PARAMS_URL") instead (a mirror, or file:///dir);
                    also \$MSF_DOWNLOAD_BASE_URL
  --url URL         fetch the .tar from exactly this URL
  --keep-archive    keep DIR/downloads/$(basename "$PARAMS_URL") after unpacking
  --force           unpack again even when DIR/params is already complete
  --dry-run         list what would be downloaded, with sizes, and exit
  -h, --help        this text

Resumable: the .tar is fetched into DIR/downloads/<name>.part (curl -C -, or wget -c), so running the same command
again after an interruption continues where it stopped. Atomic: the parameters are unpacked into DIR/.params.partial
and renamed to DIR/params only when complete; DIR/params/download_record.txt records the URL, size and sha256 of
what was unpacked. Errors are one line on stderr, exit status 1 (2 for bad arguments).
EOF
}

dir="" want="$PARAMS_SHA256" url="" keep=0 force=0 dry=0
DL_BASE_URL="${MSF_DOWNLOAD_BASE_URL:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --sha256) [ $# -ge 2 ] || { echo "$DL_SCRIPT: error: --sha256 needs a value" >&2; exit 2; }; want="$2"; shift 2 ;;
    --base-url) [ $# -ge 2 ] || { echo "$DL_SCRIPT: error: --base-url needs a value" >&2; exit 2; }
                DL_BASE_URL="$2"; shift 2 ;;
    --url) [ $# -ge 2 ] || { echo "$DL_SCRIPT: error: --url needs a value" >&2; exit 2; }; url="$2"; shift 2 ;;
    --keep-archive) keep=1; shift ;;
    --force) force=1; shift ;;
    --dry-run) dry=1; shift ;;
    -*) echo "$DL_SCRIPT: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "$DL_SCRIPT: error: one DIR only (got '$dir' and '$1')" >&2; exit 2; }
       dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "$DL_SCRIPT: error: no DIR given (usage: scripts/download_params.sh [options] DIR)" >&2; exit 2; }
want="$(echo "$want" | tr 'A-F' 'a-f')"
if [ -n "$want" ] && ! [[ "$want" =~ ^[0-9a-f]{64}$ ]]; then
  echo "$DL_SCRIPT: error: --sha256 must be 64 hex digits, got '$want'" >&2
  exit 2
fi
[ -n "$url" ] || url="$(dl_url "$PARAMS_URL")"
name="$(basename "$url")"
archive="$dir/downloads/$name"
final="$dir/params"

if [ "$dry" = 1 ]; then
  echo "would download (dry run, nothing written):"
  printf '  %-34s %9s  %s -> %s\n' "$name" "$PARAMS_SIZE" "$url" "$final/"
  echo "checksum: ${want:-none expected (recorded in $final/download_record.txt)}"
  exit 0
fi

if [ "$force" = 0 ] && [ -f "$final/download_record.txt" ]; then
  dl_say "$final is complete ($final/download_record.txt); nothing to do (--force to unpack again)"
  exit 0
fi
command -v tar > /dev/null || dl_die "tar is not installed"
dl_fetch "$url" "$archive" "$want"

tmp="$(dl_partial_dir "$final")"
dl_say "unpacking $name into $final"
if ! tar --extract --file="$archive" --directory="$tmp" 2> "$tmp/.tar_errors"; then
  why="$(head -n 1 "$tmp/.tar_errors")"
  rm -rf "$tmp"
  dl_die "$archive is not a readable tar archive (${why:-tar failed}); remove it and run again"
fi
rm -f "$tmp/.tar_errors"
if ! compgen -G "$tmp/params_*.npz" > /dev/null; then
  rm -rf "$tmp"
  dl_die "$archive holds no params_*.npz (not AlphaFold's parameter archive?)"
fi
dl_record "$tmp" "$url" "$archive"
dl_publish "$tmp" "$final"
[ "$keep" = 1 ] || { rm -f "$archive"; rmdir "$dir/downloads" 2> /dev/null || true; }
dl_say "done: $(find "$final" -maxdepth 1 -name 'params_*.npz' | wc -l) parameter files in $final"
