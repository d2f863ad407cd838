# Shared by download_params.sh and download_databases.sh (sourced, not run). Fetching is resumable (curl -C - or
# wget -c into NAME.part), checked (sha256 when one is expected, always recorded) and atomic (a file gets its final
# name, a directory its final name, only when complete). Errors are one line on stderr: "<script>: error: ...".

DL_SCRIPT="${DL_SCRIPT:-$(basename "$0")}"

dl_die() {
  echo "${DL_SCRIPT}: error: $*" >&2
  exit 1
}

dl_say() {
  echo "${DL_SCRIPT}: $*"
}

# the URL of FILE under the --base-url directory (or $MSF_DOWNLOAD_BASE_URL), else DEFAULT
dl_url() {
  local default="$1" base="${DL_BASE_URL:-}"
  if [ -n "$base" ]; then
    echo "${base%/}/$(basename "$default")"
  else
    echo "$default"
  fi
}

dl_sha256() {
  sha256sum "$1" | cut -d' ' -f1
}

dl_bytes() {
  stat -c %s "$1"
}

# dl_fetch URL DEST [SHA256]: DEST complete and checked, or exit with one line. A partial DEST.part of an earlier
# run is continued; a checksum mismatch removes DEST.part (a corrupt part would never verify) and leaves no DEST.
dl_fetch() {
  local url="$1" dest="$2" want="${3:-}" part="$2.part" log rc got
  if [ -f "$dest" ]; then
    dl_say "$(basename "$dest"): already downloaded ($dest)"
    if [ -n "$want" ] && [ "$(dl_sha256 "$dest")" != "$want" ]; then
      dl_die "sha256 mismatch for $dest: expected $want (remove it and run again)"
    fi
  else
    mkdir -p "$(dirname "$dest")"
    if [ -f "$part" ]; then
      dl_say "$(basename "$dest"): resuming at $(dl_bytes "$part") bytes from $url"
    else
      dl_say "$(basename "$dest"): downloading $url"
    fi
    log="$(mktemp)"
    rc=0
    if command -v curl > /dev/null; then
      if [ -t 2 ]; then
        curl --fail --location --retry 5 --retry-delay 10 --continue-at - --progress-bar --output "$part" "$url" \
          || rc=$?
      else
        curl --fail --location --retry 5 --retry-delay 10 --continue-at - --silent --show-error \
          --output "$part" "$url" 2> "$log" || rc=$?
      fi
    elif command -v wget > /dev/null; then
      wget --continue --tries=5 --quiet --output-document="$part" "$url" 2> "$log" || rc=$?
    else
      rm -f "$log"
      dl_die "neither curl nor wget is installed (apt-get install curl)"
    fi
    if [ "$rc" -ne 0 ]; then
      local why
      why="$(tr '\n' ' ' < "$log" | sed 's/ *$//')"
      rm -f "$log"
      dl_die "download of $url failed (exit $rc${why:+: $why}); run again to resume from $part"
    fi
    rm -f "$log"
    if [ -n "$want" ]; then
      got="$(dl_sha256 "$part")"
      if [ "$got" != "$want" ]; then
        rm -f "$part"
        dl_die "sha256 mismatch for $(basename "$dest") from $url: expected $want, got $got (partial file removed)"
      fi
    fi
    mv -f "$part" "$dest"
  fi
}

# dl_record DIR URL FILE: append what was downloaded (url, bytes, sha256, date) to DIR/download_record.txt
dl_record() {
  local dir="$1" url="$2" file="$3"
  {
    echo "url: $url"
    echo "file: $(basename "$file")"
    echo "bytes: $(dl_bytes "$file")"
    echo "sha256: $(dl_sha256 "$file")"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
  } >> "$dir/download_record.txt"
}

# dl_publish TMPDIR FINALDIR: rename the completed TMPDIR to FINALDIR (replacing an old FINALDIR)
dl_publish() {
  local tmp="$1" final="$2" old
  if [ -e "$final" ]; then
    old="$(dirname "$final")/.$(basename "$final").old-$$"
    mv "$final" "$old"
    mv "$tmp" "$final"
    rm -rf "$old"
  else
    mv "$tmp" "$final"
  fi
}

# the temporary directory a set is assembled in before dl_publish, beside its final place (stale ones removed)
dl_partial_dir() {
  local final="$1" tmp
  tmp="$(dirname "$final")/.$(basename "$final").partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "$tmp"
}
